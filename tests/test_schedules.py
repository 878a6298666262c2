import math

import pytest
import torch

from diffviz import VE, VP, Interpolant
from diffviz import schedules as S

PROCS = [VP(), VE(sigma_T=7.0), VE(), VP(T=0.4)]
NAMES = ["uniform", "quadratic", "log_snr", "karras", "cosine", "tangent"]


@pytest.mark.parametrize("p", PROCS, ids=repr)
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [1, 2, 7, 100])
def test_grid_shape_ends_and_order(p, name, n):
    if name == "log_snr" and float(p.sigma(p.t_min)) == 0:
        pytest.skip("log-SNR grid needs sigma(t_min) > 0")
    g = S.make_grid(name, p, n)
    assert g.dtype == torch.float64 and g.shape == (n + 1,)
    assert g[0].item() == p.T and g[-1].item() == p.t_min
    assert bool((g[1:] < g[:-1]).all())


def test_formulas_in_sigma_space():
    p, n = VE(sigma_T=80.0, sigma_min=0.002), 10
    sig_hi, sig_lo = 80.0, 0.002
    u = torch.arange(n + 1, dtype=torch.float64) / n
    karras = (sig_hi ** (1 / 7) + u * (sig_lo ** (1 / 7) - sig_hi ** (1 / 7))) ** 7
    torch.testing.assert_close(p.sigma(S.karras(p, n)), karras, rtol=1e-10, atol=1e-12)
    logs = torch.exp(math.log(sig_hi) + u * (math.log(sig_lo) - math.log(sig_hi)))
    torch.testing.assert_close(p.sigma(S.log_snr(p, n)), logs, rtol=1e-10, atol=1e-12)
    lam = 2.5
    ang = math.atan(sig_hi / math.sqrt(lam)) + u * (math.atan(sig_lo / math.sqrt(lam)) - math.atan(sig_hi / math.sqrt(lam)))
    torch.testing.assert_close(p.sigma(S.tangent(p, n, lam=lam)), math.sqrt(lam) * torch.tan(ang), rtol=1e-10, atol=1e-12)
    # The uniform and quadratic grids are in t
    torch.testing.assert_close(S.uniform(p, n), p.T * (1 - u), rtol=0, atol=1e-15)
    torch.testing.assert_close(S.quadratic(p, n), p.T * (1 - u) ** 2, rtol=0, atol=1e-15)


def test_tangent_with_equal_eigenvalues_reduces_to_single():
    p = VP()
    single = S.tangent(p, 12, lam=0.3)
    multi = S.tangent(p, 12, lam=[0.3, 0.3, 0.3])
    torch.testing.assert_close(multi, single, rtol=0, atol=2e-4)


def test_tangent_multi_spends_steps_between_the_eigenvalues():
    # With eigenvalues far apart, the grid must resolve both sigma ~ sqrt(0.01) and sigma ~ sqrt(100).
    p = VE(sigma_T=80.0, sigma_min=0.002)
    sig = p.sigma(S.tangent(p, 40, lam=[0.01, 100.0]))
    assert ((sig > 0.05) & (sig < 0.5)).sum() >= 3
    assert ((sig > 5) & (sig < 50)).sum() >= 3


def test_dilated_needs_interpolant():
    g = S.dilated(Interpolant("ve", "dilated", d=1000), 10)
    assert g.shape == (11,)
    with pytest.raises(ValueError, match="Interpolant"):
        S.dilated(VP(), 10)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: S.uniform(VP(), 0), "n_steps"),
        (lambda: S.uniform(VP(), 2.5), "n_steps"),
        (lambda: S.uniform(VP(), 10, t_min=2.0), "t_min"),
        (lambda: S.karras(VP(), 10, rho=0), "rho"),
        (lambda: S.tangent(VP(), 10, lam=-1.0), "lam"),
        (lambda: S.make_grid("linear", VP(), 10), "schedule"),
        (lambda: S.check_grid([0.5, 0.7]), "decreasing"),
        (lambda: S.check_grid([1.0]), "at least 2"),
        (lambda: S.check_grid([2.0, 0.5], VP()), r"\[0, T=1\]"),
    ],
)
def test_bad_input(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize("name", NAMES + ["dilated"])
def test_t_max_beyond_the_horizon_is_refused(name):
    p = Interpolant("vp", "dilated", d=100) if name == "dilated" else VP()
    with pytest.raises(ValueError, match=r"t_max must lie in \(0, T\] = \(0, 1\].*got 5.0"):
        S.make_grid(name, p, 10, t_max=5)
    assert S.make_grid(name, p, 10, t_max=p.T)[0].item() == p.T  # the horizon itself is fine


def test_grid_of_a_bad_process_or_a_number_is_explained():
    with pytest.raises(TypeError, match="process must be a diffviz process.*got str 'VP'"):
        S.uniform("VP", 10)
    with pytest.raises(TypeError, match="process must be a diffviz process"):
        S.check_grid([1.0, 0.5], "VP")
    with pytest.raises(ValueError, match=r"got shape \(\); for the uniform N-step grid use schedules.uniform"):
        S.check_grid(10.0)
    with pytest.raises(ValueError, match="n_steps must be an integer >= 1, got -3"):
        S.uniform(VP(), -3)
