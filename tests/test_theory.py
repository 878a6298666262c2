"""diffviz.theory against independent references: Monte Carlo, brute-force particle simulations written here
from the step rules, numerical ODE integration, quadrature, and hand-written scalar formulas."""
import math
import zlib

import numpy as np
import pytest
import torch
from scipy.integrate import quad, solve_ivp
from scipy.stats import multivariate_normal

from diffviz import VE, VP, Interpolant, SubVP, schedules, theory

F64 = torch.float64
LAM = np.array([0.05, 1.0, 4.0])
MU = np.array([0.5, -1.0, 2.0])


def _t(x):
    return torch.tensor(x, dtype=F64)


def _rotation(d, seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return q


def _spd(d, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((d, d))
    return a @ a.T + 0.5 * np.eye(d)


def _kl_1d(m0, v0, m1, v1):
    return 0.5 * (v0 / v1 - 1 - math.log(v0 / v1) + (m1 - m0) ** 2 / v1)


# ---------------------------------------------------------------------------------------------
# Gaussian KL
# ---------------------------------------------------------------------------------------------
def test_kl_gaussian_simple_cases():
    a, cov = np.array([0.3, -1.0, 2.0]), _spd(3, 1)
    assert theory.kl_gaussian(a, cov, a, cov) == pytest.approx(0.0, abs=1e-12)
    assert theory.kl_gaussian(a, 2.0, a, [2.0, 2.0, 2.0]) == pytest.approx(0.0, abs=1e-14)
    assert theory.kl_gaussian([0.7], [2.5], [-0.2], [0.9]) == pytest.approx(_kl_1d(0.7, 2.5, -0.2, 0.9), rel=1e-13)
    # scalar, diagonal and full representations of the same covariance agree
    diag = np.array([0.5, 2.0, 3.0])
    k_diag = theory.kl_gaussian(a, diag, np.zeros(3), 1.5)
    assert theory.kl_gaussian(a, np.diag(diag), np.zeros(3), 1.5 * np.eye(3)) == pytest.approx(k_diag, rel=1e-12)
    assert k_diag == pytest.approx(sum(_kl_1d(a[i], diag[i], 0.0, 1.5) for i in range(3)), rel=1e-13)
    # rotating both Gaussians leaves the KL unchanged: full-matrix path against the diagonal path
    q = _rotation(3, 5)
    diag1, b = np.array([1.2, 0.3, 4.0]), np.array([1.0, 0.0, -0.5])
    full = theory.kl_gaussian(q @ a, q @ np.diag(diag) @ q.T, q @ b, q @ np.diag(diag1) @ q.T)
    assert full == pytest.approx(theory.kl_gaussian(a, diag, b, diag1), rel=1e-10)


def test_kl_gaussian_diag_elementwise():
    out = theory.kl_gaussian_diag(_t([0.0, 1.0]), _t([1.0, 2.0]), _t([0.5, 1.0]), _t([1.0, 0.5]))
    torch.testing.assert_close(out, _t([_kl_1d(0, 1, 0.5, 1), _kl_1d(1, 2, 1, 0.5)]), rtol=1e-13, atol=0)
    # accurate for nearly equal variances (½ x² with x = 1e-6), where the naive formula cancels
    assert float(theory.kl_gaussian_diag(0.0, 1 + 1e-6, 0.0, 1.0)) == pytest.approx(0.25e-12, rel=1e-5)
    assert math.isinf(float(theory.kl_gaussian_diag(0.0, 0.0, 0.0, 1.0)))


def test_kl_gaussian_against_monte_carlo():
    d, n = 3, 100_000
    rng = np.random.default_rng(11)
    a, b = np.array([0.2, -0.4, 1.0]), np.array([0.0, 0.5, 0.3])
    ca, cb = _spd(d, 2), _spd(d, 3)
    x = rng.multivariate_normal(a, ca, size=n)
    log_ratio = multivariate_normal(a, ca).logpdf(x) - multivariate_normal(b, cb).logpdf(x)
    est, se = log_ratio.mean(), log_ratio.std() / math.sqrt(n)
    exact = theory.kl_gaussian(a, ca, b, cb)
    assert abs(est - exact) < 5 * se, (est, exact, se)
    assert exact > 20 * se  # not a vacuous comparison


def test_gaussian_eigenbasis_roundtrip():
    q = _rotation(3, 1)
    lam, mu_eig, u = theory.gaussian_eigenbasis(q @ MU, q @ np.diag(LAM) @ q.T)
    torch.testing.assert_close((u * lam) @ u.T, _t(q @ np.diag(LAM) @ q.T), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(u @ mu_eig, _t(q @ MU), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# endpoint KL(p_T || prior)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("T", [0.2, 0.5, 1.0])
def test_endpoint_kl_vp_equals_kl_of_marginal(T):
    p = VP(T=T)
    q = _rotation(3, 2)
    m, s = float(p.mean_scale(T)), float(p.std(T))
    cov_t = m ** 2 * q @ np.diag(LAM) @ q.T + s ** 2 * np.eye(3)
    ref = theory.kl_gaussian(m * q @ MU, cov_t, np.zeros(3), np.eye(3))
    assert theory.endpoint_kl_vp(LAM, MU, T) == pytest.approx(ref, rel=1e-10)
    assert theory.endpoint_kl(p, LAM, MU) == pytest.approx(ref, rel=1e-10)
    assert theory.endpoint_kl(VP(), LAM, MU, T=T) == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("sigma_T", [2.0, 7.0, 80.0])
def test_endpoint_kl_ve_equals_kl_of_marginal(sigma_T):
    q = _rotation(3, 3)
    cov_t = q @ np.diag(LAM) @ q.T + sigma_T ** 2 * np.eye(3)  # x_T = x_0 + sigma_T z
    ref = theory.kl_gaussian(q @ MU, cov_t, np.zeros(3), sigma_T ** 2)
    assert theory.endpoint_kl_ve(LAM, sigma_T, MU) == pytest.approx(ref, rel=1e-10)
    assert theory.endpoint_kl(VE(sigma_T=sigma_T), LAM, MU) == pytest.approx(ref, rel=1e-10)


def test_endpoint_kl_subvp_generic():
    p = SubVP()
    m, s = float(p.mean_scale(p.T)), float(p.std(p.T))
    ref = theory.kl_gaussian(m * MU, m ** 2 * LAM + s ** 2, np.zeros(3), 1.0)
    assert theory.endpoint_kl(p, LAM, MU) == pytest.approx(ref, rel=1e-10)


def test_endpoint_kl_leading_orders():
    p = VP()
    # with a mean: KL ~ ½ e^{-B} |mu|^2; centred: KL ~ ¼ e^{-2B} sum (lam - 1)^2
    for mean in (MU, None):
        ratios = [theory.endpoint_kl_vp(LAM, mean, T) / theory.endpoint_kl_vp_leading(LAM, mean, T)
                  for T in (1.0, 1.5, 2.0)]
        assert abs(ratios[-1] - 1) < 1e-6 and abs(ratios[0] - 1) > abs(ratios[-1] - 1)
    kl = theory.endpoint_kl_vp(LAM, None, 1.5)
    assert kl * math.exp(2 * float(p.B(1.5))) == pytest.approx(0.25 * ((LAM - 1) ** 2).sum(), rel=1e-6)
    for mean in (MU, None):
        r = [theory.endpoint_kl_ve(LAM, s, mean) / theory.endpoint_kl_ve_leading(LAM, s, mean) for s in (10.0, 100.0)]
        assert abs(r[1] - 1) < 1e-3 and abs(r[1] - 1) < abs(r[0] - 1)


# ---------------------------------------------------------------------------------------------
# sampler laws: brute-force particle simulation written from the step rules
# ---------------------------------------------------------------------------------------------
def _simulate(proc, grid, lam, mu, method, x, rng, eta=0.0, snr=0.16, n_corrector=1):
    """Particles x (n, k) in the eigenbasis, exact score -(x - m mu)/(m^2 lam + s^2), numpy float64."""

    def coef(t):
        return (float(proc.mean_scale(t)), float(proc.std(t)), float(proc.f(t)), float(proc.g2(t)))

    def score(y, t):
        m, s, _, _ = coef(t)
        return -(y - m * mu) / (m * m * lam + s * s)

    def vel(y, t):
        _, _, f, g2 = coef(t)
        return f * y - 0.5 * g2 * score(y, t)

    ts = [float(t) for t in grid]
    for t, t1 in zip(ts[:-1], ts[1:]):
        h = t - t1
        m, s, f, g2 = coef(t)
        m1, s1, _, _ = coef(t1)
        if method in ("em", "pc"):
            x = x - h * (f * x - g2 * score(x, t)) + math.sqrt(g2 * h) * rng.standard_normal(x.shape)
            if method == "pc":
                e = 2 * snr ** 2 * s1 ** 2
                for _ in range(n_corrector):
                    x = x + e * score(x, t1) + math.sqrt(2 * e) * rng.standard_normal(x.shape)
        elif method == "ode-euler":
            x = x - h * (f * x - 0.5 * g2 * score(x, t))
        elif method == "heun":
            v1 = vel(x, t)
            v2 = vel(x - h * v1, t1)
            x = x - h * (v1 + v2) / 2
        elif method == "ddim":
            sc = score(x, t)
            x0_hat, eps_hat = (x + s * s * sc) / m, -s * sc
            s_eta2 = max(eta ** 2 * s1 ** 2 * (1 - (m * s1 / (m1 * s)) ** 2), 0.0)
            x = m1 * x0_hat + math.sqrt(s1 ** 2 - s_eta2) * eps_hat + math.sqrt(s_eta2) * rng.standard_normal(x.shape)
    return x


MC_CASES = [
    ("em", {}), ("ode-euler", {}), ("heun", {}), ("ddim", {"eta": 0.0}), ("ddim", {"eta": 0.5}),
    ("ddim", {"eta": 1.0}), ("pc", {"snr": 0.16, "n_corrector": 1}), ("pc", {"snr": 0.3, "n_corrector": 2}),
]
MC_PROCS = [(VP(), "uniform", 10), (VE(sigma_T=5.0), "log_snr", 8), (SubVP(), "quadratic", 6)]
MC_IDS = [f"{type(p).__name__}-{g}-{n}" for p, g, n in MC_PROCS]


@pytest.mark.parametrize("proc, grid_name, n_steps", MC_PROCS, ids=MC_IDS)
@pytest.mark.parametrize("method, opts", MC_CASES, ids=[f"{m}{o}" for m, o in MC_CASES])
def test_sampler_moments_match_particle_simulation(method, opts, proc, grid_name, n_steps):
    n = 100_000
    rng = np.random.default_rng(zlib.crc32(f"{method}{opts}{grid_name}".encode()))
    grid = schedules.make_grid(grid_name, proc, n_steps)
    init_mean, init_var = np.array([0.3, 0.0, -0.4]), np.array([0.5, 2.0, 1.0]) * proc.prior_std() ** 2
    x = init_mean + np.sqrt(init_var) * rng.standard_normal((n, 3))
    y = _simulate(proc, grid, LAM, MU, method, x, rng, **opts)
    m_th, v_th = theory.sampler_moments(proc, grid, LAM, MU, method, init=(init_mean, init_var), **opts)
    m_th, v_th = m_th.numpy(), v_th.numpy()
    assert np.all(np.abs(y.mean(0) - m_th) < 5 * np.sqrt(v_th / n)), (y.mean(0), m_th)
    assert np.all(np.abs(y.var(0, ddof=1) - v_th) < 5 * v_th * math.sqrt(2 / n)), (y.var(0), v_th)


@pytest.mark.parametrize("method, opts", [("ode-euler", {}), ("heun", {}), ("ddim", {"eta": 0.0})])
@pytest.mark.parametrize("proc", [VP(), VE(sigma_T=5.0)], ids=repr)
def test_deterministic_samplers_match_paths_exactly(method, opts, proc):
    """For ODE-type samplers the affine map is checked pathwise: init (x, 0) must give mean = simulated x."""
    grid = schedules.karras(proc, 12)
    x0 = np.array([[0.7, -2.0, 3.0], [-1.0, 0.1, 0.0]]) * proc.prior_std()
    y = _simulate(proc, grid, LAM, MU, method, x0, np.random.default_rng(0), **opts)
    for row in range(2):
        m_th, v_th = theory.sampler_moments(proc, grid, LAM, MU, method, init=(x0[row], np.zeros(3)), **opts)
        np.testing.assert_allclose(m_th.numpy(), y[row], rtol=1e-11, atol=1e-12)
        assert float(v_th.abs().max()) == 0.0


def test_particle_test_has_power():
    """On a coarse grid the methods' laws differ by many standard errors, so the MC comparison can fail."""
    proc, grid = VP(), schedules.uniform(VP(), 10)
    _, v_euler = theory.sampler_moments(proc, grid, LAM, MU, "ode-euler")
    _, v_heun = theory.sampler_moments(proc, grid, LAM, MU, "heun")
    _, v_em = theory.sampler_moments(proc, grid, LAM, MU, "em")
    se = 5 * v_heun * math.sqrt(2 / 100_000)
    assert bool(((v_euler - v_heun).abs() > 10 * se).any()) and bool(((v_em - v_heun).abs() > 10 * se).any())


def test_init_modes_and_trajectory():
    proc = VP()
    grid = schedules.uniform(proc, 7)
    m_p, v_p = theory.sampler_moments(proc, grid, LAM, MU, "em", init="prior")
    m_e, v_e = theory.sampler_moments(proc, grid, LAM, MU, "em", init=(np.zeros(3), np.ones(3)))
    torch.testing.assert_close((m_p, v_p), (m_e, v_e), rtol=0, atol=0)
    ms, vs = theory.sampler_moments(proc, grid, LAM, MU, "em", init="exact", trajectory=True)
    assert ms.shape == (8, 3) and vs.shape == (8, 3)
    m0, s0 = float(proc.mean_scale(1.0)), float(proc.std(1.0))
    torch.testing.assert_close(vs[0], _t(m0 ** 2 * LAM + s0 ** 2), rtol=1e-14, atol=0)
    torch.testing.assert_close(ms[0], _t(m0 * MU), rtol=1e-14, atol=0)
    torch.testing.assert_close((ms[-1], vs[-1]), theory.sampler_moments(proc, grid, LAM, MU, "em", init="exact"))
    # an int grid is the uniform grid
    torch.testing.assert_close(theory.sampler_moments(proc, 7, LAM, MU, "heun"),
                               theory.sampler_moments(proc, grid, LAM, MU, "heun"))


def test_sampler_kl_directions_and_output_law():
    proc = VE(sigma_T=5.0)
    grid = schedules.log_snr(proc, 6)
    m, v = theory.sampler_moments(proc, grid, LAM, MU, "ode-euler")
    fwd = sum(_kl_1d(MU[i], LAM[i], float(m[i]), float(v[i])) for i in range(3))
    rev = sum(_kl_1d(float(m[i]), float(v[i]), MU[i], LAM[i]) for i in range(3))
    assert theory.sampler_kl(proc, grid, LAM, MU, "ode-euler") == pytest.approx(fwd, rel=1e-12)
    kl_rev = theory.sampler_kl(proc, grid, LAM, MU, "ode-euler", direction="output||data")
    assert kl_rev == pytest.approx(rev, rel=1e-12)
    # full covariance in data coordinates: the law rotates with the data
    q = _rotation(3, 4)
    mean_out, cov_out = theory.sampler_output_law(proc, grid, q @ MU, q @ np.diag(LAM) @ q.T, "ode-euler")
    torch.testing.assert_close(cov_out, _t(q @ np.diag(v.numpy()) @ q.T), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(mean_out, _t(q @ m.numpy()), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# continuous-time reference and convergence orders
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("proc", [VP(), VE(sigma_T=5.0), SubVP()], ids=repr)
def test_continuous_moments_against_numerical_ode(proc, eta):
    """dM/dt = f M + c g² (M - m mu)/v, dV/dt = 2 (f + c g²/v) V - eta² g², c = (1 + eta²)/2, integrated backwards."""
    t0, t1 = proc.T, 0.01 * proc.T
    lam, mu, init_m, init_v = 2.0, 0.7, 0.4, 1.7 * proc.prior_std() ** 2
    c = 0.5 * (1 + eta ** 2)

    def rhs(t, y):
        m, s, f, g2 = (float(proc.mean_scale(t)), float(proc.std(t)), float(proc.f(t)), float(proc.g2(t)))
        v = m * m * lam + s * s
        return [f * y[0] + c * g2 * (y[0] - m * mu) / v, 2 * (f + c * g2 / v) * y[1] - eta ** 2 * g2]

    sol = solve_ivp(rhs, (t0, t1), [init_m, init_v], method="DOP853", rtol=1e-11, atol=1e-13)
    m_th, v_th = theory.continuous_moments(proc, t0, t1, lam, mu, init=(init_m, init_v), eta=eta)
    assert float(m_th) == pytest.approx(sol.y[0, -1], rel=1e-8, abs=1e-10)
    assert float(v_th) == pytest.approx(sol.y[1, -1], rel=1e-8)
    # from the exact p_{t0} every member of the family lands on the exact p_{t1}
    m_ex, v_ex = theory.continuous_moments(proc, t0, t1, lam, mu, init="exact", eta=eta)
    m1, s1 = float(proc.mean_scale(t1)), float(proc.std(t1))
    assert float(m_ex) == pytest.approx(m1 * mu, rel=1e-12)
    assert float(v_ex) == pytest.approx(m1 ** 2 * lam + s1 ** 2, rel=1e-12)


ORDERS = [("em", 1), ("ode-euler", 1), ("heun", 2), ("ddim", 1)]


@pytest.mark.parametrize("init", ["exact", "prior"])
@pytest.mark.parametrize("method, order", ORDERS)
@pytest.mark.parametrize("proc", [VP(), VE(sigma_T=5.0)], ids=repr)
def test_variance_error_convergence_order(proc, method, order, init):
    """|out_var - continuous var| on uniform grids shrinks like N^-order; from 'exact' the reference is p_{t_end}."""
    lam = torch.tensor([0.25, 4.0], dtype=F64)
    ns = [50, 100, 200, 400]
    if method == "em" and isinstance(proc, VE):
        # VE's stiff start (g²/v = 2 ln(sigma_max/sigma_min) ~ 17) and a small first-order coefficient at
        # lam = 0.25 keep EM pre-asymptotic (the error changes sign near N = 300); measure further out.
        ns = [400, 800, 1600, 3200]
    eta = theory.continuous_limit_eta(method)
    errs = []
    for n in ns:
        grid = schedules.uniform(proc, n)
        _, v = theory.sampler_moments(proc, grid, lam, None, method, init=init)
        _, v_ref = theory.continuous_moments(proc, float(grid[0]), float(grid[-1]), lam, None, init=init, eta=eta)
        errs.append(float((v - v_ref).abs().max()))
    slope = -np.polyfit(np.log(ns), np.log(errs), 1)[0]
    assert abs(slope - order) < 0.3, (errs, slope)


# ---------------------------------------------------------------------------------------------
# Sun, Poor, Zhang: DDIM on a Gaussian source
# ---------------------------------------------------------------------------------------------
def _random_grid(proc, n, seed, t_min):
    g = torch.Generator().manual_seed(seed)
    inner = torch.sort(t_min + (proc.T - t_min) * torch.rand(n - 1, generator=g, dtype=F64), descending=True).values
    return torch.cat([_t([proc.T]), inner, _t([t_min])])


@pytest.mark.parametrize("t_min", [1e-3, 0.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cosine_product_equals_generic_ddim_recursion(seed, t_min):
    """Two derivations agree: Π cos² Δψ (in alpha_bar) and the DDIM affine recursion of `sampler_moments`."""
    proc = VP(t_min=t_min)
    grid = _random_grid(proc, 5 + 7 * seed, seed, t_min)
    lam = torch.tensor([0.01, 0.3, 1.0, 2.5, 9.0], dtype=F64)
    alpha_bar = proc.mean_scale(grid) ** 2
    m, v = theory.sampler_moments(proc, grid, lam, None, "ddim", init="exact")
    torch.testing.assert_close(v, theory.ddim_variance_closed_form(alpha_bar, lam), rtol=1e-10, atol=0)
    kl_generic = theory.sampler_kl(proc, grid, lam, None, "ddim", init="exact", reference="grid_end",
                                   per_direction=True)
    torch.testing.assert_close(kl_generic, theory.ddim_kl_closed_form(alpha_bar, lam), rtol=1e-8, atol=1e-15)
    if t_min == 0.0:  # the grid ends at the data: v_end = lam and the reference is the data itself
        torch.testing.assert_close(theory.sampler_kl(proc, grid, lam, None, "ddim", init="exact", per_direction=True),
                                   theory.ddim_kl_closed_form(alpha_bar, lam), rtol=1e-8, atol=1e-15)
    # the gain maps a point: init (x, 0) -> G x
    x = torch.full_like(lam, 1.3)
    mg, _ = theory.sampler_moments(proc, grid, lam, None, "ddim", init=(x, torch.zeros_like(lam)))
    torch.testing.assert_close(mg, theory.ddim_cosine_gain(alpha_bar, lam) * x, rtol=1e-10, atol=0)
    # under-dispersion: rho >= 1, output variance <= target, mean exact
    assert bool((theory.ddim_log_rho(alpha_bar, lam) >= 0).all())
    torch.testing.assert_close(m, torch.zeros_like(lam), rtol=0, atol=1e-15)
    v_end = float(proc.mean_scale(grid[-1])) ** 2 * lam + float(proc.std(grid[-1])) ** 2
    assert bool((v <= v_end * (1 + 1e-12)).all())


def test_cosine_product_holds_for_ve_in_sigma():
    """The product form is process-free in sigma = s/m: VE's DDIM output is v_end/rho, alpha_bar = 1/(1 + sigma²)."""
    proc = VE(sigma_T=20.0)
    grid = schedules.karras(proc, 9)
    sig = proc.sigma(grid)
    _, v = theory.sampler_moments(proc, grid, LAM, None, "ddim", init="exact")
    v_end = LAM + float(sig[-1]) ** 2
    torch.testing.assert_close(v, _t(v_end) * torch.exp(-theory.ddim_log_rho(1 / (1 + sig ** 2), _t(LAM))),
                               rtol=1e-10, atol=0)


def test_ddim_angles_definition():
    ab = _t([0.01, 0.2, 0.7, 1.0])
    psi = theory.ddim_angles(ab, 2.0)
    ref = [math.atan(math.sqrt((1 - a) / (a * 2.0))) for a in ab.tolist()]
    torch.testing.assert_close(psi, _t(ref), rtol=1e-14, atol=0)
    assert theory.ddim_angles(ab, _t([1.0, 2.0])).shape == (4, 2)


def _kl_of_sigmas(sig, lam):
    return theory.ddim_kl_closed_form(1 / (1 + sig ** 2), lam)


@pytest.mark.parametrize("lam", [0.05, 1.0, 4.0])
def test_tangent_grid_beats_other_grids(lam):
    proc = VP()
    s_hi, s_lo = float(proc.sigma(proc.T)), float(proc.sigma(proc.t_min))
    for n in (10, 100):
        kl_tan = _kl_of_sigmas(theory.tangent_grid_sigmas(n, lam, s_hi, s_lo), lam)
        for name in ("uniform", "karras", "quadratic", "log_snr"):
            kl_other = _kl_of_sigmas(proc.sigma(schedules.make_grid(name, proc, n)), lam)
            assert kl_tan < kl_other, (name, n, kl_tan, kl_other)
        # and any random grid with the same ends (ln sec² is convex: equal angle steps are optimal for every N)
        for seed in range(5):
            g = _random_grid(proc, n, seed, proc.t_min)
            assert kl_tan <= _kl_of_sigmas(proc.sigma(g), lam) * (1 + 1e-12)


def test_tangent_grid_formula_and_asymptotic_constant():
    lam, s_max = 2.0, 150.0
    n = 8
    sig = theory.tangent_grid_sigmas(n, lam, s_max)
    ref = [math.sqrt(lam) * math.tan((1 - i / n) * math.atan(s_max / math.sqrt(lam))) for i in range(n + 1)]
    torch.testing.assert_close(sig, _t(ref), rtol=1e-13, atol=1e-15)
    # KL N^2 -> (psi_max - psi_min)^4 / 4 (psi linear in u), with an O(1/N) relative correction
    s_min = 0.02
    delta = math.atan(s_max / math.sqrt(lam)) - math.atan(s_min / math.sqrt(lam))
    rel = [abs(_kl_of_sigmas(theory.tangent_grid_sigmas(n, lam, s_max, s_min), lam) * n * n / (delta ** 4 / 4) - 1)
           for n in (100, 1000)]
    assert rel[1] < 2e-3 and rel[1] < rel[0] / 5
    fine = theory.tangent_grid_sigmas(1000, lam, s_max, s_min)
    assert theory.psi_action(fine, lam) == pytest.approx(delta ** 2, rel=1e-10)


@pytest.mark.parametrize("name", ["uniform", "karras"])
def test_ddim_kl_asymptotic_for_other_grids(name):
    proc, lam = VP(), 0.5
    fine = proc.sigma(schedules.make_grid(name, proc, 100_000))
    rel = []
    for n in (200, 2000):
        exact = _kl_of_sigmas(proc.sigma(schedules.make_grid(name, proc, n)), lam)
        rel.append(abs(exact / theory.ddim_kl_asymptotic(n, fine, lam) - 1))
    assert rel[1] < 3e-3 and rel[1] < rel[0] / 5, rel
    # callable form: uniform in t for VP, sigma(u) = sigma(T - u (T - t_min))
    if name == "uniform":
        a_call = theory.psi_action(lambda u: proc.sigma(proc.T - u * (proc.T - proc.t_min)), lam)
        assert a_call == pytest.approx(theory.psi_action(fine, lam), rel=1e-6)


def test_tangent_grid_multi():
    s_hi, s_lo = 150.0, 0.01
    # one eigenvalue (or repeated ones): the closed form
    torch.testing.assert_close(theory.tangent_grid_sigmas_multi(30, [2.0], None, s_hi, s_lo),
                               theory.tangent_grid_sigmas(30, 2.0, s_hi, s_lo), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(theory.tangent_grid_sigmas_multi(30, [2.0, 2.0], [0.2, 0.7], s_hi, s_lo),
                               theory.tangent_grid_sigmas(30, 2.0, s_hi, s_lo), rtol=1e-9, atol=1e-12)
    # several: Phi(sigma) = int sqrt(F) by adaptive quadrature is equally spaced along the grid
    lam, w = np.array([0.05, 1.0, 4.0]), np.array([0.5, 0.3, 0.2])
    n = 12
    sig = theory.tangent_grid_sigmas_multi(n, lam, w, s_hi, s_lo).tolist()
    assert all(a > b for a, b in zip(sig[:-1], sig[1:])) and sig[0] == s_hi and sig[-1] == s_lo

    def sqrt_f(s):
        return math.sqrt(float(np.sum(w * lam / (lam + s * s) ** 2)))

    gaps = [quad(sqrt_f, b, a, epsabs=1e-13, epsrel=1e-12, limit=200)[0] for a, b in zip(sig[:-1], sig[1:])]
    np.testing.assert_allclose(gaps, np.mean(gaps), rtol=1e-6)
    # it lowers the weighted first-order deficit sum_j w_j (rho_j - 1) against single-eigenvalue tangents
    n = 200

    def deficit(s):
        return float((torch.expm1(theory.ddim_log_rho(1 / (1 + s ** 2), _t(lam))) * _t(w)).sum())

    d_multi = deficit(theory.tangent_grid_sigmas_multi(n, lam, w, s_hi, s_lo))
    for l in lam:
        assert d_multi < deficit(theory.tangent_grid_sigmas(n, l, s_hi, s_lo))


# ---------------------------------------------------------------------------------------------
# Franzese et al. diffusion-time toy
# ---------------------------------------------------------------------------------------------
def test_franzese_terms_formula():
    p = VP()
    for T in (0.0, 0.3, 1.0, 2.0):
        B = 0.1 * T + 0.5 * 19.9 * T ** 2
        u, a = math.exp(-B), 4.0 - 1
        kl, score = theory.franzese_bound_terms(T, 4.0, 0.01, p)
        x = u * a  # for tiny x use x - ln(1 + x) = x²/2 - x³/3 + ..., where the direct form rounds to 0
        assert kl == pytest.approx(0.5 * (x - math.log1p(x) if x > 1e-3 else x * x / 2 - x ** 3 / 3), rel=1e-10)
        assert score == pytest.approx(0.5 * 0.01 * B, rel=1e-12, abs=1e-300)
        assert theory.franzese_bound(T, 4.0, 0.01, p) == pytest.approx(kl + score, rel=1e-14)
    ts = torch.linspace(0.0, 1.0, 5, dtype=F64)
    torch.testing.assert_close(theory.franzese_bound(ts, 4.0, 0.01, p),
                               _t([theory.franzese_bound(t, 4.0, 0.01, p) for t in ts.tolist()]), rtol=1e-13, atol=0)
    # a generic process with prior N(0, 1): the Gaussian KL of its marginal and the integral of g^2
    sp = SubVP()
    kl, score = theory.franzese_bound_terms(0.4, 3.0, 0.02, sp)
    m, s = float(sp.mean_scale(0.4)), float(sp.std(0.4))
    assert kl == pytest.approx(_kl_1d(0.0, m * m * 3.0 + s * s, 0.0, 1.0), rel=1e-10)
    assert score == pytest.approx(0.5 * 0.02 * quad(lambda t: float(sp.g2(t)), 0.0, 0.4, epsrel=1e-13)[0], rel=1e-10)


def test_franzese_interior_minimum():
    p, lam, eps2 = VP(), 4.0, 0.01
    t_star = theory.franzese_optimal_T(lam, eps2, p)
    assert 0.05 < t_star < 0.95 * p.T
    h = 1e-5
    def bound(t):
        return theory.franzese_bound(t, lam, eps2, p)

    deriv = (bound(t_star + h) - bound(t_star - h)) / (2 * h)
    scale = 0.5 * eps2 * float(p.beta(t_star))  # size of either term's derivative there
    assert abs(deriv) < 1e-4 * scale
    assert bound(t_star) < bound(t_star - 0.05) and bound(t_star) < bound(t_star + 0.05)
    assert t_star == pytest.approx(theory.franzese_optimal_T_vp_closed_form(lam, eps2, p), rel=1e-6)
    # no interior minimum when (lam - 1)^2 / lam <= eps2: the best horizon is 0
    assert theory.franzese_optimal_T(1.05, eps2, p) < 1e-6
    assert theory.franzese_optimal_T_vp_closed_form(1.05, eps2, p) == 0.0


def test_franzese_exact_score_prefers_longest_horizon():
    p = VP()
    ts = torch.linspace(0.01, 1.5, 200, dtype=F64)
    b = theory.franzese_bound(ts, 4.0, 0.0, p)
    assert bool((torch.diff(b) < 0).all())
    assert theory.franzese_optimal_T(4.0, 0.0, p, T_max=1.5) == pytest.approx(1.5, rel=1e-6)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: theory.sampler_moments(VP(), 5, LAM, MU, "rk4"), "method"),
        (lambda: theory.sampler_moments(VP(), 5, [-1.0, 1.0], None, "em"), "eigvals"),
        (lambda: theory.sampler_moments(VP(), 5, LAM, [1.0, 2.0], "em"), "mean"),
        (lambda: theory.sampler_moments(VP(), 5, LAM, MU, "em", init="data"), "init"),
        (lambda: theory.sampler_moments(VP(), 5, LAM, MU, "em", init=(np.zeros(3), -np.ones(3))), "init var"),
        (lambda: theory.sampler_moments(VP(), 5, LAM, MU, "ddim", eta=2.0), "eta"),
        (lambda: theory.sampler_moments(VP(), 5, LAM, MU, "pc", snr=0.0), "snr"),
        (lambda: theory.sampler_moments(VP(), 5, LAM, MU, "pc", n_corrector=-1), "n_corrector"),
        (lambda: theory.sampler_moments(VP(), [0.1, 0.5], LAM, MU, "em"), "decreasing"),
        (lambda: theory.sampler_moments(Interpolant("vp", d=10), 5, LAM, MU, "ddim"), "singular"),
        (lambda: theory.sampler_kl(VP(), 5, LAM, MU, "em", direction="both"), "direction"),
        (lambda: theory.kl_gaussian([0.0, 0.0], np.array([[1.0, 2.0], [2.0, 1.0]]), [0.0, 0.0], 1.0), "cov0"),
        (lambda: theory.kl_gaussian([0.0, 0.0], 1.0, [0.0, 0.0], [1.0, 0.0]), "cov1"),
        (lambda: theory.kl_gaussian([0.0, 0.0], 1.0, [0.0, 0.0, 0.0], 1.0), "mean"),
        (lambda: theory.endpoint_kl_ve(LAM, 0.0), "sigma_T"),
        (lambda: theory.endpoint_kl_vp(LAM, MU, T=-1.0), "T"),
        (lambda: theory.continuous_moments(VP(), 0.2, 0.5, LAM), "t_end"),
        (lambda: theory.ddim_angles([0.5, 0.2], 1.0), "alpha_bar"),
        (lambda: theory.ddim_angles([0.2, 0.5], -1.0), "lam"),
        (lambda: theory.tangent_grid_sigmas(10, 1.0, 1.0, 2.0), "sigma_min"),
        (lambda: theory.tangent_grid_sigmas(0, 1.0, 1.0), "n_steps"),
        (lambda: theory.tangent_grid_sigmas_multi(10, [1.0, 2.0], [1.0], 5.0), "weights"),
        (lambda: theory.franzese_bound(0.5, 0.0, 0.01), "lam"),
        (lambda: theory.franzese_optimal_T(4.0, -0.01), "eps2"),
        (lambda: theory.franzese_optimal_T(4.0, 0.01, VE()), "prior"),
        (lambda: theory.franzese_optimal_T_vp_closed_form(4.0, 0.01, SubVP()), "VP"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
