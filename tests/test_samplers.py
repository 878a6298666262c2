"""Every sampler against the exact law of its own discretization on Gaussian data (diffviz.theory)."""
import math
import warnings

import numpy as np
import pytest
import torch

from diffviz import VE, VP, Interpolant, sample, schedules, theory
from diffviz.samplers import SAMPLERS, ode_euler, ode_heun
from diffviz.targets import Gaussian, TwoModeMixture

EIG = torch.tensor([0.25, 1.0, 4.0], dtype=torch.float64)
MEAN_EIG = torch.tensor([0.5, -1.0, 0.0], dtype=torch.float64)


def _rotation(d, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    return q


def _problem():
    """Data N(Q mu, Q diag(EIG) Q^T): a full covariance whose eigenbasis is known."""
    q = _rotation(3)
    return q, Gaussian(q @ MEAN_EIG, q @ torch.diag(EIG) @ q.T)


OPTIONS = {"ddim": [{"eta": 0.0}, {"eta": 1.0}], "pc": [{"snr": 0.16, "n_corrector": 1}]}
CASES = [
    (VP(), "uniform", 8),
    (VP(), "karras", 20),
    (VE(sigma_T=5.0), "log_snr", 10),
    (VP(T=0.5), "quadratic", 6),
]


def _cases():
    for method in SAMPLERS:
        for opts in OPTIONS.get(method, [{}]):
            for proc, grid_name, n in CASES:
                if grid_name == "log_snr" and float(proc.sigma(proc.t_min)) == 0:
                    continue
                yield pytest.param(method, opts, proc, grid_name, n,
                                   id=f"{method}{opts or ''}-{type(proc).__name__}-{grid_name}-{n}")


@pytest.mark.parametrize("method, opts, proc, grid_name, n_steps", list(_cases()))
def test_sampler_matches_exact_discretized_law(method, opts, proc, grid_name, n_steps):
    n = 100_000
    q, target = _problem()
    grid = schedules.make_grid(grid_name, proc, n_steps)
    gen = torch.Generator().manual_seed(7)
    x_init = proc.prior(3).sample(n, generator=gen, dtype=torch.float64)
    x = sample(lambda x, t: target.score(x, t, proc), proc, x_init, grid, method, generator=gen, **opts)
    y = x @ q  # coordinates in the eigenbasis of the data covariance
    prior_var = proc.prior_std() ** 2
    m_th, v_th = theory.sampler_moments(proc, grid, EIG, mean=MEAN_EIG, method=method,
                                        init=(torch.zeros(3, dtype=torch.float64), torch.full((3,), prior_var)),
                                        **opts)
    m_th, v_th = torch.as_tensor(m_th), torch.as_tensor(v_th)
    # 5 standard errors: mean SE = sqrt(v/n), sample-variance SE = v sqrt(2/n) (Gaussian output).
    assert torch.all((y.mean(0) - m_th).abs() < 5 * torch.sqrt(v_th / n)), (y.mean(0), m_th)
    assert torch.all((y.var(0) - v_th).abs() < 5 * v_th * math.sqrt(2 / n)), (y.var(0), v_th)
    corr = torch.corrcoef(y.T)
    off = corr[~torch.eye(3, dtype=torch.bool)]
    assert off.abs().max() < 5 / math.sqrt(n)


def test_the_law_test_can_fail():
    """On these grids the discretized variance is far from the data's, so matching it is a real check."""
    proc = VP()
    grid = schedules.uniform(proc, 8)
    _, v_th = theory.sampler_moments(proc, grid, EIG, mean=MEAN_EIG, method="ode-euler",
                                     init=(torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)))
    assert torch.any((torch.as_tensor(v_th) - EIG).abs() > 20 * EIG * math.sqrt(2 / 100_000))


@pytest.mark.parametrize("stepper, order", [(ode_euler, 1), (ode_heun, 2)])
def test_pf_ode_pathwise_convergence_order(stepper, order):
    """The PF-ODE is deterministic: the error against a fine Heun solution shrinks like N^-order."""
    proc = VE(sigma_T=3.0)
    _, target = _problem()
    score = lambda x, t: target.score(x, t, proc)  # noqa: E731
    x_init = proc.prior(3).sample(2000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ref = ode_heun(score, proc, x_init, schedules.uniform(proc, 4000))
    ns = [20, 40, 80, 160]
    errs = [(stepper(score, proc, x_init, schedules.uniform(proc, n)) - ref).pow(2).mean().sqrt().item() for n in ns]
    slope = -np.polyfit(np.log(ns), np.log(errs), 1)[0]
    assert abs(slope - order) < 0.25, (errs, slope)


def test_em_weak_order_one_via_exact_law():
    proc = VP()
    errs = []
    ns = [25, 50, 100, 200]
    for n in ns:
        grid = schedules.uniform(proc, n)
        _, v = theory.sampler_moments(proc, grid, EIG, mean=MEAN_EIG, method="em", init="exact")
        _, v_cont = theory.continuous_moments(proc, proc.T, proc.t_min, EIG, MEAN_EIG, init="exact", eta=1.0)
        errs.append((torch.as_tensor(v) - v_cont).abs().max().item())
    rates = [math.log2(errs[i] / errs[i + 1]) for i in range(len(ns) - 1)]
    assert all(abs(r - 1) < 0.3 for r in rates), rates


def test_images_and_float32_and_trajectory():
    proc = VP()
    target = Gaussian(torch.zeros(16, dtype=torch.float64), 0.5)
    gen = torch.Generator().manual_seed(0)
    x_init = torch.randn(64, 1, 4, 4, generator=gen)
    score = lambda x, t: target.score(x.reshape(x.shape[0], -1), t, proc).reshape(x.shape)  # noqa: E731
    x, traj = sample(score, proc, x_init, 30, "heun", trajectory=True, max_points=7)
    assert x.shape == (64, 1, 4, 4) and x.dtype == torch.float32
    assert traj.xs.shape == (7, 64, 1, 4, 4) and traj.ts.shape == (7,)
    assert traj.ts[0].item() == proc.T and traj.ts[-1].item() == pytest.approx(proc.t_min)
    torch.testing.assert_close(traj.xs[-1], x)


def test_trajectory_memory_cap_keeps_first_particles():
    proc = VE(sigma_T=2.0)
    target = Gaussian(torch.zeros(1000, dtype=torch.float64), 1.0)
    x_init = proc.prior(1000).sample(50, generator=torch.Generator().manual_seed(0))
    with pytest.warns(UserWarning, match="storing the first"):
        _, traj = sample(lambda x, t: target.score(x, t, proc), proc, x_init, 20, "ode-euler",
                         trajectory=True, max_points=11, max_elements=11 * 1000 * 5)
    assert traj.xs.shape == (11, 5, 1000)


def test_divergence_is_reported_with_step_and_time():
    proc = VP()
    calls = {"n": 0}

    def exploding(x, t):
        calls["n"] += 1
        return x * (1e300 if calls["n"] >= 3 else 0.0) * 1e300

    with pytest.raises(FloatingPointError, match=r"step 3 of 10 \(t = "):
        sample(exploding, proc, torch.ones(4, 2, dtype=torch.float64), 10, "ode-euler")


def test_generator_reproducible_and_devices_follow_input():
    proc = VP()
    target = Gaussian(torch.zeros(2, dtype=torch.float64), 1.0)
    score = lambda x, t: target.score(x, t, proc)  # noqa: E731
    x_init = torch.randn(100, 2, generator=torch.Generator().manual_seed(3))
    a = sample(score, proc, x_init, 10, "em", generator=torch.Generator().manual_seed(5))
    b = sample(score, proc, x_init, 10, "em", generator=torch.Generator().manual_seed(5))
    c = sample(score, proc, x_init, 10, "em", generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.device == x_init.device
    assert not torch.equal(x_init, torch.zeros_like(x_init))  # the input was not modified in place
    torch.testing.assert_close(x_init, torch.randn(100, 2, generator=torch.Generator().manual_seed(3)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_in_float64():
    proc = VP()
    target = Gaussian(torch.zeros(3, dtype=torch.float64), 2.0)
    x_init = torch.randn(256, 3, dtype=torch.float64)
    cpu = sample(lambda x, t: target.score(x, t, proc), proc, x_init, 20, "heun")
    gpu = sample(lambda x, t: target.score(x, t, proc), proc, x_init.cuda(), 20, "heun")
    assert gpu.is_cuda
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-10, atol=1e-10)


def _gm_features(kind, dilation, d, n_steps, n=400, p=0.8, s2=0.25):
    from diffviz import interpolant_ode

    target = TwoModeMixture(d, p, s2)
    interp = Interpolant(kind, dilation, d=d)
    x0 = interp.prior(d).sample(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = interpolant_ode(lambda x, tau: target.posterior_interpolant(x, tau, interp), interp, x0, n_steps)
    return target.mode_weight(x), target.within_mode_var(x)


def test_interpolant_ode_dilated_ve_recovers_both_features_uniform_does_not():
    """Aranguri GM (p = 0.8, sigma^2 = 0.25), d = 2000, 100 Euler steps, 400 samples."""
    n, p, s2 = 400, 0.8, 0.25
    p_hat, s2_hat = _gm_features("ve", "dilated", 2000, 100)
    assert abs(p_hat - p) < 5 * math.sqrt(p * (1 - p) / n)
    # Euler's O(1/N) bias in the last window is ~0.02 at N = 100; the sampling error of s2_hat is ~1e-3.
    assert abs(s2_hat - s2) < 0.035
    _, s2_uniform = _gm_features("ve", "none", 2000, 100)
    assert s2 - s2_uniform > 0.1  # uniform VE resolves sigma^2 only in the last 1/sqrt(d): it misses it


def test_interpolant_ode_dilated_steps_do_not_grow_with_d():
    """Theta_d(1): with the dilated schedule the features at fixed N hardly move from d = 500 to d = 8000."""
    small, large = _gm_features("ve", "dilated", 500, 50), _gm_features("ve", "dilated", 8000, 50)
    assert abs(small[1] - large[1]) < 0.01
    # ... whereas uniform VE degrades with d at the same N.
    assert _gm_features("ve", "none", 500, 50)[1] - _gm_features("ve", "none", 8000, 50)[1] > 0.05


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(method="rk4"), "method"),
        (dict(grid=0), "n_steps"),
        (dict(grid=[0.5, 0.9]), "decreasing"),
        (dict(method="ddim", eta=2.0), "eta"),
        (dict(method="em", eta=0.5), "options"),
        (dict(method="pc", snr=-1.0), "snr"),
        (dict(x_init=torch.zeros(5)), "x_init"),
        (dict(x_init=torch.zeros(5, 2, dtype=torch.int64)), "x_init"),
        (dict(score=lambda x, t: x[:, :1]), "shaped like x"),
        (dict(grid=10.0), r"got the float 10.0; pass grid=10"),
        (dict(grid=2.5), r"pass an int N >= 1"),
        (dict(grid=-3), r"grid \(an int N: n_steps of the uniform grid\) must be an integer >= 1, got -3"),
        (dict(grid=torch.tensor(0.5)), r"uniform N-step grid"),
        (dict(x_init=torch.zeros(5, 2, dtype=torch.int64)), "dtype torch.int64"),
    ],
)
def test_bad_input(kwargs, match):
    proc = VP()
    args = dict(score=lambda x, t: -x, process=proc, x_init=torch.zeros(5, 2), grid=5, method="em")
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        sample(**args)


def test_singular_start_of_interpolant_is_explained():
    interp = Interpolant("vp", "none", d=10)
    with pytest.raises(ValueError, match="interpolant_ode"):
        sample(lambda x, t: -x, interp, torch.zeros(4, 10), 5, "ode-euler")


# --- issue 12: finite runaway, overflow at extreme sigma_T, score output checked at every evaluation ----------------
def _unit_gaussian_score(proc, d=2):
    target = Gaussian(torch.zeros(d, dtype=torch.float64), 1.0)
    return lambda x, t: target.score(x, t, proc)


def test_finite_runaway_warns_once_with_step_and_time():
    """VE sigma_T = 1000, 2 EM steps on N(0, 1) data: std ~1e5, finite; it used to come back as a normal result."""
    from diffviz.checks import DivergenceWarning

    proc = VE(sigma_T=1000.0)
    x_init = proc.prior(2).sample(1000, generator=torch.Generator().manual_seed(1))
    with pytest.warns(DivergenceWarning, match=r"euler_maruyama: the samples ran away at step 2 of 2 \(t = 0\)") as rec:
        out = sample(_unit_gaussian_score(proc), proc, x_init, 2, "em", generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out).all() and out.std() > 20 * 1000.0
    assert len([w for w in rec if issubclass(w.category, DivergenceWarning)]) == 1


@pytest.mark.parametrize("method", list(SAMPLERS))
def test_huge_finite_score_warns_for_every_sampler(method):
    from diffviz.checks import DivergenceWarning

    proc = VP()
    with pytest.warns(DivergenceWarning, match=r"at step 1 of 10 \(t = 0\.9001\): max\|x\| = ") as rec:
        sample(lambda x, t: torch.full_like(x, 1e30), proc, torch.randn(8, 3, dtype=torch.float64), 10, method,
               generator=torch.Generator().manual_seed(0))
    assert len([w for w in rec if issubclass(w.category, DivergenceWarning)]) == 1  # once per run


def _student_t_score(proc, df):
    from diffviz.targets import StudentT

    target = StudentT(1, df)
    return lambda x, t: target.score(x, t, proc)


@pytest.mark.parametrize("method", list(SAMPLERS))
def test_no_runaway_false_alarm_on_legitimate_runs(method):
    """Correct runs stay quiet: VE sigma_T = 80 and 1000 with enough steps, VP, Student-t nu = 1.5 data from the
    prior and from the data-laden start, small sigma_T (start near the data). The VP heavy-tailed run ends 30-50x
    wider than its start: the m(t)/m(t_0) factor of runaway_scale is what keeps it quiet."""
    from diffviz.checks import DivergenceWarning
    from diffviz.samplers import RUNAWAY_FACTOR

    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    runs = [(VE(sigma_T=80.0), 100, "gauss"), (VE(sigma_T=1000.0), 100, "gauss"), (VP(), 50, "gauss"),
            (VP(), 100, "t-prior"), (VE(sigma_T=2.0), 20, "t-prior"), (VE(sigma_T=2.0), 20, "t-data"),
            (VE(sigma_T=80.0), 50, "t-data")]
    grew = 0.0
    for proc, n_steps, kind in runs:
        if kind == "gauss":
            score, x_init = _unit_gaussian_score(proc), proc.prior(2).sample(1000, generator=gen())
        else:
            score = _student_t_score(proc, 1.5)
            x_init = proc.prior(1).sample(2000, generator=gen(), dtype=torch.float64)
            if kind == "t-data":  # x_T = x_0 + sigma_T z: the data's heavy tails are in the start
                from diffviz.targets import StudentT
                x_init, _ = proc.marginal(StudentT(1, 1.5).sample(2000, generator=gen(), dtype=torch.float64),
                                          proc.T, generator=gen())
        with warnings.catch_warnings():
            warnings.simplefilter("error", DivergenceWarning)
            out = sample(score, proc, x_init, n_steps, method, generator=gen())
        if kind == "t-prior" and isinstance(proc, VP):
            grew = float(out.abs().max() / x_init.abs().max())
    assert grew > RUNAWAY_FACTOR  # the bound without the m factor would have tripped


def test_overflow_at_extreme_sigma_T_names_step_and_time():
    proc = VE(sigma_T=1e30)
    x_init = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))  # float32 data
    for method in SAMPLERS:  # the coefficients (~1e60) overflow float32: it used to be torch's bare RuntimeError
        with pytest.raises(FloatingPointError, match=r"diverged: .* at step 1 of 10 \(t = 8\.65106 to 7\.78595\)"):
            sample(_unit_gaussian_score(proc), proc, x_init, 10, method, generator=torch.Generator())
    from diffviz.checks import DivergenceWarning

    with pytest.raises(FloatingPointError, match=r"at step 2 of 10 .*max\|x\| = inf \(overflow\)"):
        with pytest.warns(DivergenceWarning, match="step 1 of 10"):  # 3e38 is still finite after step 1
            sample(lambda x, t: torch.full_like(x, 3e38), VP(), x_init, 10, "ode-euler")


def test_non_finite_start_is_named():
    x_init = torch.zeros(4, 2)
    x_init[1, 1] = float("nan")
    with pytest.raises(FloatingPointError, match=r"x_init holds NaN/inf .* step 0"):
        sample(lambda x, t: -x, VP(), x_init, 5, "em")


def _turncoat(bad):
    """A score like x at its first call, then `bad(x)`: what used to be broadcast silently after the first check."""
    calls = {"n": 0}

    def score(x, t):
        calls["n"] += 1
        return -x if calls["n"] == 1 else bad(x)
    return score


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("method", list(SAMPLERS))
def test_score_output_is_checked_at_every_evaluation(method, fused):
    if fused and method not in ("em", "ode-euler"):
        pytest.skip("fused=True runs em and ode-euler")
    proc, x_init = VP(), torch.randn(6, 3, dtype=torch.float64)
    step = "step 1" if method in ("heun", "pc") else "step 2"  # their second evaluation is in step 1
    with pytest.raises(ValueError, match=rf"score\(x, t\) at {step} of 4 \(t = .*shaped like x \(6, 3\).*"
                                         r"got shape \(6, 1\)"):
        sample(_turncoat(lambda x: -x[:, :1]), proc, x_init, 4, method, generator=torch.Generator(), fused=fused)
    with pytest.raises(ValueError, match=r"torch.float64 on cpu\), got shape \(6, 3\), torch.float32"):
        sample(_turncoat(lambda x: -x.float()), proc, x_init, 4, method, generator=torch.Generator(), fused=fused)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(score=None), "score must be a callable score"),
        (dict(score=VP()), "score must be a callable score"),
        (dict(process="VP"), "process must be a diffviz process.*got str 'VP'"),
        (dict(process="VP", grid=torch.tensor([1.0, 0.5])), "process must be a diffviz process"),
        (dict(generator="42"), r"generator must be a torch.Generator, an int seed or None.*manual_seed\(42\)"),
        (dict(generator=4.2), "generator must be a torch.Generator"),
    ],
)
def test_wrong_types_raise_type_error(kwargs, match):
    args = dict(score=lambda x, t: -x, process=VP(), x_init=torch.zeros(5, 2), grid=5, method="em")
    args.update(kwargs)
    with pytest.raises(TypeError, match=match):
        sample(**args)


@pytest.mark.parametrize("method, opts", [("em", {}), ("ddim", {"eta": 1.0}), ("pc", {}), ("ode-euler", {})])
@pytest.mark.parametrize("batch_size", [None, 3])
def test_int_seed_is_a_generator_on_the_input_device(method, opts, batch_size):
    proc = VP()
    target = Gaussian(torch.zeros(2, dtype=torch.float64), 1.0)
    score = lambda x, t: target.score(x, t, proc)  # noqa: E731
    x_init = torch.randn(7, 2, generator=torch.Generator().manual_seed(3))
    a = sample(score, proc, x_init, 6, method, generator=42, batch_size=batch_size, **opts)
    b = sample(score, proc, x_init, 6, method, generator=torch.Generator().manual_seed(42), batch_size=batch_size,
               **opts)
    assert torch.equal(a, b)
    grid = schedules.uniform(proc, 6)
    c = SAMPLERS[method](score, proc, x_init, grid, generator=42, **opts)
    d = SAMPLERS[method](score, proc, x_init, grid, generator=torch.Generator().manual_seed(42), **opts)
    assert torch.equal(c, d)
    if batch_size is None:
        assert torch.equal(a, c)
