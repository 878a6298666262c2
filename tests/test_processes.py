import math

import pytest
import torch

from diffviz import VE, VP, Interpolant, SubVP
from diffviz.processes import expand_as

PROCESSES = [
    VP(),
    VP(beta_min=0.5, beta_max=5.0, T=2.0),
    SubVP(),
    VE(),
    VE(sigma_T=7.0),
    VE(sigma_min=0.002, sigma_max=80.0),
    Interpolant("vp", "none", d=100),
    Interpolant("ve", "none", d=100),
    Interpolant("vp", "dilated", d=10_000),
    Interpolant("ve", "dilated", d=10_000),
]


def _times(p):
    # Interior points, away from the kinks of the dilated schedules at t = 1/2.
    return torch.tensor([0.05, 0.21, 0.37, 0.63, 0.81, 0.97], dtype=torch.float64) * p.T


def _ddt(y, t):
    """dy/dt elementwise by autograd; a y that does not depend on t (e.g. VE's m = 1) has derivative 0."""
    if not y.requires_grad:
        return torch.zeros_like(t.detach())
    (g,) = torch.autograd.grad(y.sum(), t, retain_graph=True)
    return g


@pytest.mark.parametrize("p", PROCESSES, ids=repr)
def test_sde_coefficients_match_marginal_by_autograd(p):
    """f = d log m/dt and g^2 = d(s^2)/dt - 2 f s^2, checked by float64 autograd."""
    t = _times(p).requires_grad_(True)
    log_m = torch.log(p.mean_scale(t))
    s2 = p.std(t) ** 2
    dlogm, ds2 = _ddt(log_m, t), _ddt(s2, t)
    t = t.detach()
    torch.testing.assert_close(p.f(t), dlogm, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(p.g2(t), ds2 - 2 * dlogm * s2.detach(), rtol=1e-9, atol=1e-12)
    assert bool((p.g2(t) > 0).all())


@pytest.mark.parametrize("p", PROCESSES, ids=repr)
def test_sigma_inverse(p):
    t = _times(p)
    torch.testing.assert_close(p.t_of_sigma(p.sigma(t)), t, rtol=1e-9, atol=1e-11)


def test_vp_closed_forms():
    p = VP()
    t = 0.4
    B = 0.1 * t + 0.5 * 19.9 * t ** 2
    assert float(p.mean_scale(t)) == pytest.approx(math.exp(-B / 2), rel=1e-14)
    assert float(p.std(t)) ** 2 == pytest.approx(1 - math.exp(-B), rel=1e-14)
    assert float(p.drift(torch.ones(1, 1), t)) == pytest.approx(-0.5 * (0.1 + 19.9 * t), rel=1e-6)


def test_ve_horizon_by_sigma_T():
    p = VE(sigma_T=7.0)
    assert p.sigma_T == pytest.approx(7.0, rel=1e-12)
    assert float(p.std(p.T)) == pytest.approx(7.0, rel=1e-12)
    assert p.prior_std() == pytest.approx(7.0)
    # above sigma_max the geometric schedule continues
    assert VE(sigma_T=80.0).T > 1.0


def test_interpolant_ends_and_dilation():
    d = 10_000
    vp = Interpolant("vp", "dilated", d=d)
    eps = 3 / math.sqrt(d)
    assert float(vp.tau(0.5)) == pytest.approx(eps)
    assert float(vp.tau(1.0)) == pytest.approx(1.0)
    ve = Interpolant("ve", "dilated", d=d)
    assert float(ve.tau(0.5)) == pytest.approx(1 - eps)
    assert ve.prior_std() == pytest.approx(math.sqrt(d))
    # data at t = 0, noise at t = 1 in diffusion time
    assert float(ve.mean_scale(0.0)) == 1.0 and float(ve.std(0.0)) == 0.0
    assert float(ve.mean_scale(1.0)) == 0.0 and float(ve.std(1.0)) == pytest.approx(math.sqrt(d))


@pytest.mark.parametrize("shape", [(500, 3), (500, 1, 4, 4)])
def test_marginal_moments_any_batch_shape(shape, gen):
    p = VP()
    x0 = torch.full(shape, 2.0, dtype=torch.float64)
    t = torch.full((shape[0],), 0.3, dtype=torch.float64)
    xt, z = p.marginal(x0, t, generator=gen)
    assert xt.shape == shape and z.shape == shape
    torch.testing.assert_close(xt, float(p.mean_scale(0.3)) * x0 + float(p.std(0.3)) * z)
    n = z.numel()  # z ~ N(0, 1): mean within 5 standard errors
    assert abs(z.mean().item()) < 5 / math.sqrt(n)
    assert p.drift(x0, t).shape == shape


def test_expand_as_rejects_mismatched_times():
    with pytest.raises(ValueError, match="t must be a scalar or have shape"):
        expand_as(torch.zeros(3), torch.zeros(4, 2))


def test_prior_is_isotropic_gaussian(gen):
    prior = VE(sigma_T=2.0).prior(5)
    x = prior.sample(20000, generator=gen)
    assert x.shape == (20000, 5)
    # std of the sample variance is var * sqrt(2/n): allow 5 of them
    assert abs(x.var().item() - 4.0) < 5 * 4.0 * math.sqrt(2 / x.numel())


@pytest.mark.parametrize(
    "build, name",
    [
        (lambda: VP(T=0.0), "T"),
        (lambda: VP(T=-1.0), "T"),
        (lambda: VP(T=float("nan")), "T"),
        (lambda: VP(beta_min=-0.1), "beta_min"),
        (lambda: VP(beta_max=0.01), "beta_max"),
        (lambda: VE(sigma_T=0.005), "sigma_T"),
        (lambda: VE(sigma_T=0.01), "sigma_T"),
        (lambda: VE(sigma_min=0.0), "sigma_min"),
        (lambda: VE(T=1.0, sigma_T=3.0), "sigma_T"),
        (lambda: Interpolant("vq"), "kind"),
        (lambda: Interpolant("vp", "stretched"), "dilation"),
        (lambda: Interpolant("vp", "dilated", d=4), "d"),
        (lambda: Interpolant("vp", d=0), "d"),
    ],
)
def test_bad_input_names_parameter(build, name):
    with pytest.raises(ValueError, match=name):
        build()


@pytest.mark.parametrize("p", PROCESSES, ids=repr)
@pytest.mark.parametrize("method", ["mean_scale", "std", "f", "g2"])
@pytest.mark.parametrize("t", [math.nan, math.inf, -math.inf, -1.0, -1e-6,
                               torch.tensor([0.5, math.nan]), torch.tensor([0.2, -0.1])], ids=repr)
def test_bad_times_are_refused(p, method, t):
    with pytest.raises(ValueError, match=r"t must be a finite time in \[0, .*got"):
        getattr(p, method)(t)


@pytest.mark.parametrize("t", ["0.5", None, True])
def test_times_of_the_wrong_type_are_refused(t):
    with pytest.raises(TypeError, match="t must be a real number or a torch.Tensor"):
        VP().mean_scale(t)


def test_time_range_ends():
    # the ends themselves and float32 rounding of them are fine; VP/VE formulas continue past T, an interpolant's do not
    for p in PROCESSES:
        p.std(0.0), p.std(p.T), p.std(torch.tensor([0.0, p.T], dtype=torch.float32))
    assert torch.isclose(VP().mean_scale(3.0), torch.exp(-0.5 * VP().B(3.0)))
    assert torch.isclose(VE().std(2.0), torch.tensor(0.01 * 5000.0 ** 2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"in \[0, 1\] for Interpolant"):
        Interpolant().mean_scale(1.01)
    with pytest.raises(ValueError, match="got nan"):
        VP().marginal(torch.zeros(3, 2), math.nan)


def test_marginal_accepts_an_int_seed():
    x0 = torch.zeros(5, 2)
    a, _ = VP().marginal(x0, 0.5, generator=42)
    b, _ = VP().marginal(x0, 0.5, generator=torch.Generator().manual_seed(42))
    assert torch.equal(a, b)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        VP().marginal(x0, 0.5, generator="42")
