"""Tests for diffviz.targets: exact scores against autograd of hand-built noised densities (float64),
the Student-t quadrature against scipy, samplers against their laws with tolerances from the sample size,
and input validation."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from diffviz.processes import VE, VP, Interpolant
from diffviz.targets.base import noise_coeffs
from diffviz.targets import (
    TOY_NAMES,
    CurieWeiss,
    Digits,
    Gaussian,
    GaussianMixture,
    StudentT,
    TwoModeMixture,
    toy,
)

F64 = torch.float64
PROCESSES = {"VP": VP(), "VE": VE()}
TIMES = [0.01, 0.2, 0.6, 1.0]


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def ms(process, t):
    return process.mean_scale(t).item(), process.std(t).item()


# --- reference densities built by hand (independent of diffviz.targets) ---------------------------------------
def log_normal(x, mean, C):
    """log N(x; mean, C) for x (n, d), mean (d,), C (d, d), via Cholesky."""
    L = torch.linalg.cholesky(C)
    diff = (x - mean).T
    y = torch.linalg.solve_triangular(L, diff, upper=False)
    d = x.shape[-1]
    return -0.5 * (y ** 2).sum(0) - torch.log(torch.diagonal(L)).sum() - 0.5 * d * math.log(2 * math.pi)


def log_mixture(x, weights, means, Cs):
    terms = torch.stack([math.log(w) + log_normal(x, mu, C) for w, mu, C in zip(weights, means, Cs)], -1)
    return torch.logsumexp(terms, -1)


def autograd_score(logp, x):
    x = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(logp(x).sum(), x)
    return g


def random_spd(d, seed):
    g = gen(seed)
    A = torch.randn(d, d, generator=g, dtype=F64)
    return A @ A.T / d + 0.3 * torch.eye(d, dtype=F64)


def make_cov(kind, d, seed):
    """(cov argument, full matrix) for a covariance kind."""
    if kind == "iso":
        return 0.7, 0.7 * torch.eye(d, dtype=F64)
    if kind == "diag":
        diag = torch.linspace(0.2, 2.0, d, dtype=F64)
        return diag, torch.diag(diag)
    S = random_spd(d, seed)
    return S, S


# --- Gaussian ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["iso", "diag", "full"])
@pytest.mark.parametrize("pname", list(PROCESSES))
def test_gaussian_score_matches_autograd(kind, pname):
    d = 4
    process = PROCESSES[pname]
    mean = torch.tensor([0.5, -1.0, 2.0, 0.0], dtype=F64)
    cov, Sigma = make_cov(kind, d, seed=1)
    target = Gaussian(mean, cov)
    x = 2 * torch.randn(16, d, generator=gen(2), dtype=F64)
    for t in TIMES:
        m, s = ms(process, t)
        C = m ** 2 * Sigma + s ** 2 * torch.eye(d, dtype=F64)
        ref = autograd_score(lambda y: log_normal(y, m * mean, C), x)
        torch.testing.assert_close(target.score(x, t, process), ref, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(target.log_prob_t(x, t, process), log_normal(x, m * mean, C), rtol=1e-12, atol=1e-10)
        torch.testing.assert_close(target.noised(t, process).log_prob(x), log_normal(x, m * mean, C),
                                   rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(target.log_prob(x), log_normal(x, mean, Sigma), rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(target.cov_matrix(), Sigma)
    torch.testing.assert_close(target.eigvals(), torch.linalg.eigvalsh(Sigma))


def test_gaussian_posterior_is_tweedie_closed_form():
    d = 3
    Sigma = random_spd(d, 5)
    mean = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    target = Gaussian(mean, Sigma)
    process = VP()
    x = torch.randn(7, d, generator=gen(3), dtype=F64)
    t = 0.4
    m, s = ms(process, t)
    C = m ** 2 * Sigma + s ** 2 * torch.eye(d, dtype=F64)
    # E[x0 | x] = mean + m Sigma C^{-1} (x - m mean);  E[z | x] = s C^{-1} (x - m mean)
    resid = torch.linalg.solve(C, (x - m * mean).T).T
    x0_hat, eps_hat = target.posterior(x, t, process)
    torch.testing.assert_close(x0_hat, mean + m * resid @ Sigma, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(eps_hat, s * resid, rtol=1e-10, atol=1e-12)


def test_gaussian_isotropic_is_cheap_at_large_d_and_follows_dtype():
    d = 10 ** 6
    prior = VP().prior(d)
    x = prior.sample(4, generator=gen(0))
    assert x.shape == (4, d) and x.dtype == torch.float32
    sc = prior.score(x, 0.5, VP())
    assert sc.dtype == torch.float32 and sc.shape == x.shape
    torch.testing.assert_close(sc, -x)  # N(0, I) is invariant under VP: score = -x at every t
    lp = prior.log_prob(x.double())
    assert torch.isfinite(lp).all()
    assert abs(lp.mean().item() + 0.5 * d * (1 + math.log(2 * math.pi))) < 5 * math.sqrt(d / 2)


@pytest.mark.parametrize("kind", ["iso", "diag", "full"])
def test_per_sample_times_equal_rowwise_scalar_times(kind):
    d = 3
    cov, _ = make_cov(kind, d, seed=4)
    targets = [Gaussian(torch.ones(d, dtype=F64), cov),
               GaussianMixture([0.3, 0.7], torch.tensor([[1.0, 0.0, -1.0], [-1.0, 2.0, 0.0]], dtype=F64),
                               torch.stack([torch.as_tensor(cov, dtype=F64)] * 2)),
               TwoModeMixture(d, 0.3, 0.5), StudentT(d, 3.0)]
    x = torch.randn(4, d, generator=gen(6), dtype=F64)
    ts = torch.tensor([0.05, 0.3, 0.7, 1.0], dtype=F64)
    for target in targets:
        batched = target.score(x, ts, VP())
        rows = torch.stack([target.score(x[i:i + 1], ts[i].item(), VP())[0] for i in range(4)])
        torch.testing.assert_close(batched, rows, rtol=1e-12, atol=1e-12)


# --- Gaussian mixtures --------------------------------------------------------------------------------------
def make_gmm(kind, d=3, K=3):
    weights = [0.2, 0.5, 0.3][:K]
    means = torch.tensor([[1.0, 0.0, -1.0], [-1.5, 1.0, 0.5], [0.0, -2.0, 1.0]], dtype=F64)[:K, :d]
    if kind == "iso":
        covs = torch.tensor([0.3, 0.8, 0.5], dtype=F64)[:K]
        full = [c * torch.eye(d, dtype=F64) for c in covs]
    elif kind == "diag":
        covs = torch.tensor([[0.3, 0.6, 1.0], [1.2, 0.2, 0.5], [0.4, 0.4, 0.9]], dtype=F64)[:K, :d]
        full = [torch.diag(c) for c in covs]
    else:
        covs = torch.stack([random_spd(d, 10 + k) for k in range(K)])
        full = list(covs)
    return GaussianMixture(weights, means, covs), weights, means, full


@pytest.mark.parametrize("kind", ["iso", "diag", "full"])
@pytest.mark.parametrize("pname", list(PROCESSES))
def test_gmm_score_matches_autograd(kind, pname):
    process = PROCESSES[pname]
    target, weights, means, full = make_gmm(kind)
    x = 2 * torch.randn(20, 3, generator=gen(7), dtype=F64)
    eye = torch.eye(3, dtype=F64)
    for t in TIMES:
        m, s = ms(process, t)
        Cs = [m ** 2 * S + s ** 2 * eye for S in full]

        def logp(y):
            return log_mixture(y, weights, m * means, Cs)

        torch.testing.assert_close(target.score(x, t, process), autograd_score(logp, x), rtol=1e-9, atol=1e-11)
        torch.testing.assert_close(target.log_prob_t(x, t, process), logp(x), rtol=1e-12, atol=1e-10)
        resp = target.responsibilities(x, t, process)
        torch.testing.assert_close(resp.sum(-1), torch.ones(20, dtype=F64))
    torch.testing.assert_close(target.log_prob(x), log_mixture(x, weights, means, full), rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("form", ["iso", "diag"])
def test_gmm_diagonal_covariance_matrices_take_the_diagonal_form(form):
    """(K, d, d) matrices that are diagonal (or multiples of I) are stored and keyed like (K, d) (or (K,))."""
    target, weights, means, full = make_gmm(form)
    as_matrices = GaussianMixture(weights, means, torch.stack(full))
    assert as_matrices.cov_type == form and as_matrices._U is None
    assert as_matrices.key() == target.key()  # the same model, the same cache entry
    torch.testing.assert_close(as_matrices.cov_matrices(), torch.stack(full))
    x = 2 * torch.randn(50, 3, generator=gen(30), dtype=F64)
    for t in TIMES:
        torch.testing.assert_close(as_matrices.score(x, t, VP()), target.score(x, t, VP()), rtol=0, atol=0)
    # one off-diagonal entry keeps the full form
    covs = torch.stack(full).clone()
    covs[0, 0, 1] = covs[0, 1, 0] = 0.01
    assert GaussianMixture(weights, means, covs).cov_type == "full"


def _per_component_score(x, weights, means, covs, m, s):
    """sum_k w_k [-C_k^{-1}(x - m mu_k)] in float64 by autograd of the hand-built mixture density."""
    eye = torch.eye(x.shape[-1], dtype=F64)
    return autograd_score(lambda y: log_mixture(y, weights, m * means, [m ** 2 * S + s ** 2 * eye for S in covs]),
                          x.to(F64))


@pytest.mark.parametrize("pname", list(PROCESSES))
def test_gmm_full_covariance_score_in_float32_and_with_batch_shapes(pname):
    """The whitened score for full covariances: float32 inputs within float32 rounding of the float64 formula,
    leading batch dimensions kept."""
    process = PROCESSES[pname]
    target, weights, means, full = make_gmm("full")
    x64 = 2 * torch.randn(4, 5, 3, generator=gen(31), dtype=F64)
    x32 = x64.float()
    eps32 = torch.finfo(torch.float32).eps
    for t in TIMES:
        m, s = ms(process, t)
        ref = _per_component_score(x32.reshape(-1, 3), weights, means, full, m, s).reshape(4, 5, 3)
        got = target.score(x32, t, process)
        assert got.dtype == torch.float32 and got.shape == (4, 5, 3)
        # rounding of x, W x - b and the logits: a few float32 ulps of the largest Mahalanobis term and score
        c_min = min(torch.linalg.eigvalsh(m ** 2 * S + s ** 2 * torch.eye(3, dtype=F64)).min().item() for S in full)
        quad_max = ((x32.double().abs().amax() + m * means.abs().amax()) ** 2 * 3 / c_min).item()
        tol = 64 * eps32 * (1 + quad_max) * ref.abs().amax().item()
        assert (got.double() - ref).abs().amax().item() <= tol
        ref64 = _per_component_score(x64.reshape(-1, 3), weights, means, full, m, s).reshape(4, 5, 3)
        torch.testing.assert_close(target.score(x64, t, process), ref64, rtol=1e-10, atol=1e-12)


def test_gmm_full_covariance_score_at_one_time_avoids_the_per_component_array(monkeypatch):
    """A sampler's call (one time for the batch) never builds the float64 (n, K, d) array of `_components`."""
    target, *_ = make_gmm("full")

    def refuse(*args):
        raise AssertionError("the (n, K, d) path was used")

    monkeypatch.setattr(target, "_components", refuse)
    x = torch.randn(100, 3, generator=gen(33))
    assert target.score(x, 0.5, VP()).shape == x.shape
    with pytest.raises(AssertionError, match="the .n, K, d. path"):
        target.score(x, torch.full((100,), 0.5), VP())  # per-sample times still take it


@pytest.mark.parametrize("kind", ["diag", "full"])
def test_gmm_score_jacobian_matches_the_hessian_of_log_p(kind):
    """d score / dx (what the PF-ODE likelihood differentiates) equals the Hessian of log p_t, in float64."""
    process = VP()
    target, weights, means, full = make_gmm(kind)
    x = 1.5 * torch.randn(6, 3, generator=gen(32), dtype=F64)
    t = 0.3
    m, s = ms(process, t)
    eye = torch.eye(3, dtype=F64)
    Cs = [m ** 2 * S + s ** 2 * eye for S in full]
    for i in range(x.shape[0]):
        xi = x[i:i + 1]
        jac = torch.autograd.functional.jacobian(lambda y: target.score(y, t, process)[0], xi)[:, 0, :]
        hess = torch.autograd.functional.hessian(lambda y: log_mixture(y[None], weights, m * means, Cs)[0], xi[0])
        torch.testing.assert_close(jac, hess, rtol=1e-9, atol=1e-11)


def test_gmm_score_is_stable_far_from_all_components():
    target, *_ = make_gmm("iso")
    x = torch.tensor([[300.0, -200.0, 100.0]], dtype=F64)
    sc = target.score(x, 0.01, VP())
    assert torch.isfinite(sc).all()
    assert torch.isfinite(target.log_prob(x)).all()


# --- two-mode mixture (Aranguri et al.) ---------------------------------------------------------------------
def two_mode_logp(x, p, sigma2, m, s):
    d = x.shape[-1]
    mu = torch.ones(d, dtype=F64)
    C = (m ** 2 * sigma2 + s ** 2) * torch.eye(d, dtype=F64)
    return log_mixture(x, [p, 1 - p], [m * mu, -m * mu], [C, C])


@pytest.mark.parametrize("process", [VP(), VE(), Interpolant("vp", d=5), Interpolant("ve", d=5)],
                         ids=["VP", "VE", "interp-vp", "interp-ve"])
def test_two_mode_score_matches_autograd(process):
    d, p, sigma2 = 5, 0.3, 0.5
    target = TwoModeMixture(d, p, sigma2)
    x = 1.5 * torch.randn(12, d, generator=gen(8), dtype=F64)
    times = [0.2, 0.5, 0.8] if isinstance(process, Interpolant) else TIMES
    for t in times:
        m, s = ms(process, t)
        ref = autograd_score(lambda y: two_mode_logp(y, p, sigma2, m, s), x)
        torch.testing.assert_close(target.score(x, t, process), ref, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(target.log_prob_t(x, t, process), two_mode_logp(x, p, sigma2, m, s),
                                   rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(target.log_prob(x), two_mode_logp(x, p, sigma2, 1.0, 0.0), rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(target.as_mixture().score(x, 0.5, process), target.score(x, 0.5, process))


@pytest.mark.parametrize("kind", ["vp", "ve"])
def test_two_mode_posterior_interpolant_matches_tweedie(kind):
    d, p, sigma2 = 6, 0.7, 0.4
    target = TwoModeMixture(d, p, sigma2)
    interp = Interpolant(kind, dilation="none", d=d)
    gmm = target.as_mixture()
    x = 2 * torch.randn(10, d, generator=gen(9), dtype=F64)
    for tau in [0.1, 0.5, 0.9]:
        # with dilation "none", tau = u = 1 - t: the process at t = 1 - tau has m = beta(tau), s = alpha(tau)
        alpha, beta = interp.alpha(tau).item(), interp.beta(tau).item()
        score = gmm.score(x, 1 - tau, interp)
        eps_hat, x1_hat = target.posterior_interpolant(x, tau, interp)
        torch.testing.assert_close(eps_hat, -alpha * score, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(x1_hat, (x + alpha ** 2 * score) / beta, rtol=1e-10, atol=1e-12)
    # at the noise end (tau = 0) E[x1|x] = (2p - 1) mu and E[z|x] = x / alpha
    eps_hat, x1_hat = target.posterior_interpolant(x, 0.0, interp)
    torch.testing.assert_close(x1_hat, torch.full_like(x, 2 * p - 1))
    torch.testing.assert_close(eps_hat, x / interp.alpha(0.0).item())


def test_two_mode_large_d_sampling_and_features():
    d, n, p, sigma2 = 10 ** 6, 8, 0.5, 0.5
    target = TwoModeMixture(d, p, sigma2)
    x = target.sample(n, generator=gen(10))
    assert x.shape == (n, d)
    sc = target.score(x, 0.3, VP())
    assert sc.shape == x.shape and torch.isfinite(sc).all()
    eps_hat, x1_hat = target.posterior_interpolant(x, 0.5, Interpolant("ve", d=d))
    assert torch.isfinite(eps_hat).all() and torch.isfinite(x1_hat).all()
    # within-mode variance: each sample gives sigma2 chi2_d / d, variance 2 sigma2^2 / d
    se = math.sqrt(2 * sigma2 ** 2 / (d * n))
    assert abs(TwoModeMixture.within_mode_var(x) - sigma2) < 5 * se + 1e-6


def test_two_mode_sampling_mode_weight():
    d, n, p, sigma2 = 50, 4000, 0.3, 0.5
    x = TwoModeMixture(d, p, sigma2).sample(n, generator=gen(11), dtype=F64)
    assert abs(TwoModeMixture.mode_weight(x) - p) < 5 * math.sqrt(p * (1 - p) / n)
    se = math.sqrt(2 * sigma2 ** 2 / (d * n))
    assert abs(TwoModeMixture.within_mode_var(x) - sigma2) < 5 * se


# --- 2-D toys -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TOY_NAMES)
def test_toy_scores_match_autograd_and_scale(name):
    target = toy(name)
    assert isinstance(target, GaussianMixture) and target.dim == 2
    torch.testing.assert_close(target.mixture_mean(), torch.zeros(2, dtype=F64), atol=1e-12, rtol=0)
    assert abs(torch.trace(target.mixture_cov()).item() - 2.0) < 1e-10
    weights = target.weights.tolist()
    x = 1.5 * torch.randn(25, 2, generator=gen(12), dtype=F64)
    eye = torch.eye(2, dtype=F64)
    for process, t in [(VP(), 0.02), (VP(), 0.5), (VE(), 0.1), (VE(), 0.7)]:
        m, s = ms(process, t)
        Cs = [(m ** 2 * c + s ** 2) * eye for c in target.covs.tolist()]
        ref = autograd_score(lambda y: log_mixture(y, weights, m * target.means, Cs), x)
        torch.testing.assert_close(target.score(x, t, process), ref, rtol=1e-9, atol=1e-10)


# --- Student-t ----------------------------------------------------------------------------------------------
def student_logp_t_quad(x, df, scale, m, s):
    """log E_W N(x; 0, m^2 scale^2 W + s^2), W ~ InvGamma(df/2, df/2), by scipy.integrate.quad over W
    (written in u = log W, dW = W du, and split around the peak of the integrand)."""
    a = b = df / 2

    def log_f(u):  # log[density of W at e^u * e^u * N(x; 0, v)]
        v = m * m * scale * scale * np.exp(u) + s * s
        log_prior = a * math.log(b) - math.lgamma(a) - a * u - b * np.exp(-u)
        return log_prior - 0.5 * np.log(2 * math.pi * v) - x * x / (2 * v)

    grid = np.linspace(-30.0, 80.0, 2201)
    vals = log_f(grid)
    j = int(np.argmax(vals))
    peak, u_peak = vals[j], grid[j]
    cuts = [grid[0]] + [u_peak + k for k in (-10, -3, -1, 0, 1, 3, 10, 30) if grid[0] < u_peak + k < grid[-1]]
    cuts.append(grid[-1])
    total = sum(integrate.quad(lambda u: math.exp(log_f(u) - peak), lo, hi, epsabs=0, epsrel=1e-13, limit=200)[0]
                for lo, hi in zip(cuts[:-1], cuts[1:]))
    return peak + math.log(total)


@pytest.mark.parametrize("df", [1.5, 3.0])
def test_student_t_score_matches_scipy_quadrature(df):
    scale = 1.3
    target = StudentT(1, df, scale)
    xs = torch.tensor([[-40.0], [-3.0], [-0.5], [0.2], [1.5], [7.0], [200.0]], dtype=F64)
    cases = [(VP(), 0.0), (VP(), 1e-3), (VP(), 0.3), (VP(), 1.0), (VE(), 0.0), (VE(), 0.5), (VE(), 1.0)]
    for process, t in cases:
        m, s = ms(process, t)
        sc = target.score(xs, t, process)[:, 0]
        lp = target.log_prob_t(xs, t, process)
        for i, x in enumerate(xs[:, 0].tolist()):
            assert abs(lp[i].item() - student_logp_t_quad(x, df, scale, m, s)) < 1e-9
            # 4th-order central difference of the quadrature log-density; log p_t varies on scales >= min(1, |x|)
            h = 1e-3 * max(1.0, abs(x))
            f = [student_logp_t_quad(x + k * h, df, scale, m, s) for k in (-2, -1, 1, 2)]
            ref = (f[0] - 8 * f[1] + 8 * f[2] - f[3]) / (12 * h)
            assert abs(sc[i].item() - ref) < 1e-6 * abs(ref) + 1e-8, (process, t, x, sc[i].item(), ref)


@pytest.mark.parametrize("df", [1.5, 3.0])
def test_student_t_score_limits(df):
    scale = 0.8
    target = StudentT(3, df, scale)
    x = torch.tensor([[-50.0, 0.0, 0.3], [1.0, 5.0, 1e4]], dtype=F64)
    closed = -(df + 1) * x / (df * scale ** 2 + x ** 2)  # the Student-t score at t = 0
    torch.testing.assert_close(target.score(x, 0.0, VP()), closed, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(target.score0(x), closed)
    torch.testing.assert_close(target.log_prob_t(x, 0.0, VP()), target.log_prob(x), rtol=1e-12, atol=1e-9)
    ref_lp = torch.tensor(stats.t.logpdf(x.numpy(), df, scale=scale).sum(-1))
    torch.testing.assert_close(target.log_prob(x), ref_lp, rtol=1e-12, atol=1e-10)
    # pure noise (interpolant at t = 1 has m = 0): p_t = N(0, s^2), score = -x / s^2
    interp = Interpolant("vp", d=3)
    torch.testing.assert_close(target.score(x, 1.0, interp), -x, rtol=1e-12, atol=1e-12)
    # huge noise: p_t ~ N(0, s^2 + m^2 var) up to O(1/s^4) (df = 3 has finite variance)
    if df > 2:
        ve = VE(sigma_T=1e4)
        s = ve.std(ve.T).item()
        xb = torch.tensor([[-2e4, 3e3, 1e4]], dtype=F64)
        torch.testing.assert_close(target.score(xb, ve.T, ve), -xb / (s ** 2 + target.variance), rtol=1e-5, atol=0)


@pytest.mark.parametrize("df", [0.8, 1.5, 3.0])
def test_student_t_sample_quantiles(df):
    scale, n, d = 2.0, 20000, 5
    target = StudentT(d, df, scale)
    x = target.sample(n, generator=gen(13), dtype=F64).reshape(-1).numpy()
    N = x.size
    for q in [0.001, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 0.999]:
        frac = (x <= target.quantile(q)).mean()  # Binomial(N, q) / N
        assert abs(frac - q) < 5 * math.sqrt(q * (1 - q) / N), (q, frac)
    assert target.variance == (math.inf if df <= 2 else scale ** 2 * df / (df - 2))


# --- Gaussian / GMM sampling ------------------------------------------------------------------------------------
def assert_mean_cov(x, mean, cov, n_se=5.0):
    """Empirical mean and covariance within n_se standard errors (SE of products estimated from the sample)."""
    n = x.shape[0]
    assert ((x.mean(0) - mean).abs() <= n_se * torch.sqrt(torch.diagonal(cov) / n)).all()
    xc = x - mean
    prods = xc[:, :, None] * xc[:, None, :]
    se = prods.std(0) / math.sqrt(n)
    assert ((prods.mean(0) - cov).abs() <= n_se * se).all()


@pytest.mark.parametrize("kind", ["iso", "diag", "full"])
def test_gaussian_sampling_moments(kind):
    d = 3
    cov, Sigma = make_cov(kind, d, seed=14)
    mean = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    x = Gaussian(mean, cov).sample(20000, generator=gen(15), dtype=F64)
    assert x.shape == (20000, d)
    assert_mean_cov(x, mean, Sigma)


@pytest.mark.parametrize("kind", ["iso", "diag", "full"])
def test_gmm_sampling_moments(kind):
    target, weights, means, full = make_gmm(kind)
    x = target.sample(20000, generator=gen(16), dtype=F64)
    assert_mean_cov(x, target.mixture_mean(), target.mixture_cov())
    # well separated components: the label of each draw is recoverable, check frequencies and per-component moments
    sep = GaussianMixture(weights, 30 * means, target.covs)
    x = sep.sample(20000, generator=gen(17), dtype=F64)
    labels = sep.responsibilities(x, 0.0, VP()).argmax(-1)
    for k, (w, mu, S) in enumerate(zip(weights, 30 * means, full)):
        n_k = (labels == k).sum().item()
        assert abs(n_k / 20000 - w) < 5 * math.sqrt(w * (1 - w) / 20000)
        assert_mean_cov(x[labels == k], mu, S)


def test_sampling_is_reproducible_and_respects_dtype():
    for target in [Gaussian(torch.zeros(3), 2.0), make_gmm("full")[0], TwoModeMixture(4, 0.4, 0.3),
                   CurieWeiss(6, 1.2), StudentT(3, 1.5), toy("moons")]:
        a = target.sample(5, generator=gen(17))
        b = target.sample(5, generator=gen(17))
        assert a.dtype == torch.float32 and a.device.type == "cpu"
        torch.testing.assert_close(a, b)
        assert target.sample(5, generator=gen(1), dtype=F64).dtype == F64


# --- Curie-Weiss -------------------------------------------------------------------------------------------------
def chi2_pvalue(counts, probs, n):
    """Pearson chi-square p-value, merging the tails so that every expected count is >= 5."""
    expected = probs * n
    keep = expected >= 5
    obs = np.append(counts[keep], counts[~keep].sum())
    exp = np.append(expected[keep], expected[~keep].sum())
    if exp[-1] < 5:  # fold a small remainder into the largest bin
        obs, exp = obs[:-1].copy(), exp[:-1].copy()
        obs[np.argmax(exp)] += counts[~keep].sum()
        exp[np.argmax(exp)] += expected[~keep].sum()
    exp *= obs.sum() / exp.sum()
    return stats.chisquare(obs, exp).pvalue


def test_curie_weiss_pmf_matches_enumeration():
    d, beta, h = 8, 1.3, 0.4
    target = CurieWeiss(d, beta, h)
    S_vals, probs = target.pmf_S()
    configs = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=d)), dtype=F64)
    S = configs.sum(1)
    logw = beta * S ** 2 / (2 * d) + h * S / d
    p_conf = torch.softmax(logw, 0)
    ref = torch.stack([p_conf[S == s].sum() for s in S_vals.tolist()])
    torch.testing.assert_close(probs, ref, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(target.log_prob(configs), torch.log(p_conf), rtol=1e-12, atol=1e-12)
    assert S_vals.tolist() == list(range(-d, d + 1, 2))


def test_curie_weiss_sampler_law_of_S():
    d, beta, h, n = 30, 1.5, 0.2, 20000
    target = CurieWeiss(d, beta, h)
    x = target.sample(n, generator=gen(18), dtype=F64)
    assert set(torch.unique(x).tolist()) <= {-1.0, 1.0}
    S = x.sum(1).round().long()
    S_vals, probs = target.pmf_S()
    counts = np.array([(S == s).sum().item() for s in S_vals.tolist()], dtype=float)
    assert chi2_pvalue(counts, probs.numpy(), n) > 1e-3
    _, wrong = CurieWeiss(d, 1.2, h).pmf_S()  # the test has power: a wrong beta is rejected
    assert chi2_pvalue(counts, wrong.numpy(), n) < 1e-6
    # spins are exchangeable: every coordinate has mean E[S]/d
    ES = (probs * S_vals.to(F64)).sum().item()
    se = math.sqrt(1.0 / n)
    assert ((x.mean(0) - ES / d).abs() < 5 * se).all()
    torch.testing.assert_close(CurieWeiss.magnetization(x), S.to(F64) / d)


def test_curie_weiss_mean_field():
    for beta, h, d in [(2.0, 0.0, 100), (1.2, 0.0, 50), (0.5, 0.0, 100), (1.5, 3.0, 10)]:
        m = CurieWeiss(d, beta, h).mean_field_m()
        assert abs(m - math.tanh(beta * m + h / d)) < 1e-12
        assert m >= 0
        if beta <= 1 and h == 0:
            assert abs(m) < 1e-12
        if beta > 1:
            assert m > 0.1
    assert abs(CurieWeiss(10, 2.0).mean_field_m() - 0.957504) < 1e-6


def test_curie_weiss_two_mode_posterior_matches_enumeration():
    d, m, p_plus = 4, 0.8, 0.65
    target = CurieWeiss(d, 2.0, 0.1)
    interp = Interpolant("vp", d=d)
    configs = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=d)), dtype=F64)  # (16, d)
    # product-Bernoulli mixture prior on x1: P(x1) = sum_s P(s) prod_i (1 + s m x1_i) / 2
    prior = p_plus * torch.prod((1 + m * configs) / 2, 1) + (1 - p_plus) * torch.prod((1 - m * configs) / 2, 1)
    x = torch.randn(6, d, generator=gen(19), dtype=F64)
    for tau in [0.2, 0.6, 0.9]:
        alpha, beta = interp.alpha(tau).item(), interp.beta(tau).item()
        loglik = -((x[:, None, :] - beta * configs[None]) ** 2).sum(-1) / (2 * alpha ** 2)
        post = torch.softmax(loglik + torch.log(prior), dim=1)  # (6, 16)
        x1_ref = post @ configs
        eps_hat, x1_hat = target.posterior_interpolant(x, tau, interp, m=m, p_plus=p_plus)
        torch.testing.assert_close(x1_hat, x1_ref, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(eps_hat, (x - beta * x1_ref) / alpha, rtol=1e-10, atol=1e-12)
        score = target.approx_score(x, 1 - tau, interp, m=m, p_plus=p_plus)
        torch.testing.assert_close(score, -(x - beta * x1_ref) / alpha ** 2, rtol=1e-10, atol=1e-12)


# --- Digits --------------------------------------------------------------------------------------------------
def test_digits_loads_offline(monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("Digits must not use the network")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    target = Digits()
    assert target.data.shape == (1797, 1, 8, 8) and target.data.dtype == torch.float32
    assert target.shape == (1, 8, 8) and target.dim == 64
    assert target.data.min().item() == -1.0 and target.data.max().item() == 1.0
    assert target.train.shape == (1500, 1, 8, 8) and target.test.shape == (297, 1, 8, 8)
    torch.testing.assert_close(torch.cat([target.train, target.test]), target.data)
    assert len(Digits("test")) == 297 and Digits("train").labels.shape == (1500,)
    x = target.sample(10, generator=gen(20))
    assert x.shape == (10, 1, 8, 8)
    torch.testing.assert_close(x, target.sample(10, generator=gen(20)))
    # every draw is a row of the data set
    assert all((target.data == row).all(dim=(1, 2, 3)).any() for row in x)


# --- input validation ----------------------------------------------------------------------------------------
BAD_INPUTS = [
    ("weights", lambda: GaussianMixture([0.5, 0.4], torch.zeros(2, 2), [1.0, 1.0])),
    ("weights", lambda: GaussianMixture([1.2, -0.2], torch.zeros(2, 2), [1.0, 1.0])),
    ("means", lambda: GaussianMixture([0.5, 0.5], torch.zeros(3, 2), [1.0, 1.0])),
    ("covs", lambda: GaussianMixture([0.5, 0.5], torch.zeros(2, 2), torch.ones(2, 3))),
    ("covs", lambda: GaussianMixture([0.5, 0.5], torch.zeros(2, 2), [1.0, -1.0])),
    ("covs", lambda: GaussianMixture([0.5, 0.5], torch.zeros(2, 2), torch.stack([torch.eye(2), -torch.eye(2)]))),
    ("cov", lambda: Gaussian(torch.zeros(2), torch.tensor([[1.0, 2.0], [2.0, 1.0]]))),
    ("cov", lambda: Gaussian(torch.zeros(2), torch.tensor([[1.0, 0.5], [0.0, 1.0]]))),
    ("cov", lambda: Gaussian(torch.zeros(2), -1.0)),
    ("cov", lambda: Gaussian(torch.zeros(2), torch.ones(3))),
    ("mean", lambda: Gaussian(torch.zeros(2, 2), 1.0)),
    ("p", lambda: TwoModeMixture(4, 1.0, 1.0)),
    ("p", lambda: TwoModeMixture(4, 0.0, 1.0)),
    ("sigma2", lambda: TwoModeMixture(4, 0.5, 0.0)),
    ("d", lambda: TwoModeMixture(0, 0.5, 1.0)),
    ("df", lambda: StudentT(3, 0.0)),
    ("df", lambda: StudentT(3, -1.0)),
    ("d", lambda: StudentT(0, 3.0)),
    ("d", lambda: CurieWeiss(0, 1.0)),
    ("d", lambda: CurieWeiss(2.5, 1.0)),
    ("beta", lambda: CurieWeiss(10, -0.1)),
    ("name", lambda: toy("spiral")),
    ("std", lambda: toy("moons", std=0.0)),
    ("split", lambda: Digits("valid")),
    ("x", lambda: Gaussian(torch.zeros(3), 1.0).score(torch.zeros(4, 2), 0.5, VP())),
    ("x", lambda: make_gmm("iso")[0].log_prob(torch.zeros(4, 2))),
    ("x", lambda: TwoModeMixture(3, 0.5, 1.0).score(torch.zeros(4, 2), 0.5, VP())),
    ("x", lambda: StudentT(3, 3.0).log_prob(torch.zeros(4, 2))),
    ("t", lambda: Gaussian(torch.zeros(3), 1.0).score(torch.zeros(4, 3), torch.ones(3), VP())),
    ("t", lambda: Gaussian(torch.zeros(3), 1.0).noised(torch.ones(3), VP())),
    ("m", lambda: CurieWeiss(4, 2.0).posterior_interpolant(torch.zeros(2, 4), 0.5, Interpolant(d=4), m=1.0)),
]


@pytest.mark.parametrize("param,make", BAD_INPUTS, ids=[f"{p}-{i}" for i, (p, _) in enumerate(BAD_INPUTS)])
def test_bad_input_raises_value_error_naming_parameter(param, make):
    with pytest.raises(ValueError, match=rf"\b{param}\b"):
        make()


def test_keys_describe_targets():
    assert TwoModeMixture(10, 0.3, 0.5).key() == {"target": "TwoModeMixture", "d": 10, "p": 0.3, "sigma2": 0.5}
    assert CurieWeiss(10, 1.5).key() == {"target": "CurieWeiss", "d": 10, "beta": 1.5, "h": 0.0}
    assert toy("moons").key() != toy("moons", std=0.05).key()
    assert Gaussian(torch.zeros(5), 2.0).key()["cov"] == 2.0


@pytest.mark.parametrize("kind", ["iso", "diag"])
def test_gmm_diagonal_fast_score_equals_the_per_component_formula(kind):
    """The matrix-product score (one scalar time, diagonal covariances) against the (n, K, d) formula."""
    target, *_ = make_gmm(kind)
    process = VP()
    x = 3 * torch.randn(4, 5, 3, generator=gen(3), dtype=F64)  # leading batch dimensions
    for t in (1e-3, 0.2, 1.0):
        m, s = noise_coeffs(process, t, x)
        log_joint, neg_prec_diff = target._components(x, m, s)
        slow = (torch.softmax(log_joint, -1)[..., None] * neg_prec_diff).sum(-2)
        torch.testing.assert_close(target.score(x, t, process), slow, rtol=1e-10, atol=1e-12)
        x32 = x.float()
        out = target.score(x32, t, process)
        assert out.dtype == torch.float32 and out.shape == x.shape
        torch.testing.assert_close(out, slow.float(), rtol=1e-5, atol=1e-5)
    # one time per sample takes the per-component path and agrees with the scalar-time one
    xs = x.reshape(-1, 3)
    per_sample = target.score(xs, torch.full((xs.shape[0],), 0.2, dtype=F64), process)
    torch.testing.assert_close(per_sample, target.score(xs, 0.2, process), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["iso", "diag"])
def test_gmm_diagonal_fast_score_is_differentiable_in_x(kind):
    """The PF-ODE log-likelihood differentiates the score: its Jacobian must equal the per-component formula's."""
    target, *_ = make_gmm(kind)
    process = VP()
    x = (2 * torch.randn(6, 3, generator=gen(5), dtype=F64)).requires_grad_(True)
    m, s = noise_coeffs(process, 0.3, x)

    def slow(y):
        log_joint, neg_prec_diff = target._components(y, m, s)
        return (torch.softmax(log_joint, -1)[..., None] * neg_prec_diff).sum(-2)

    for j in range(3):
        fast_grad, = torch.autograd.grad(target.score(x, 0.3, process)[:, j].sum(), x)
        slow_grad, = torch.autograd.grad(slow(x)[:, j].sum(), x)
        torch.testing.assert_close(fast_grad, slow_grad, rtol=1e-10, atol=1e-12)


def _scored_targets():
    return [Gaussian(torch.zeros(3), 1.0), Gaussian(torch.zeros(3), torch.eye(3) * 2.0),
            GaussianMixture([0.5, 0.5], torch.tensor([[1.0, 0, 0], [-1.0, 0, 0]]), [1.0, 0.5]),
            StudentT(3, 3.0), TwoModeMixture(3, 0.5, 1.0)]


@pytest.mark.parametrize("target", _scored_targets(), ids=repr)
@pytest.mark.parametrize("t", [math.nan, math.inf, -0.1, torch.tensor([0.5, math.nan, 0.5, 0.5])], ids=repr)
@pytest.mark.parametrize("pname", ["VP", "VE"])
def test_score_at_a_bad_time_is_refused(target, t, pname):
    with pytest.raises(ValueError, match=r"t must be a finite time in \[0, inf\)"):
        target.score(torch.zeros(4, 3, dtype=F64), t, PROCESSES[pname])


def _sampled_targets():
    return _scored_targets() + [CurieWeiss(6, 1.2), toy("moons")]


@pytest.mark.parametrize("target", _sampled_targets(), ids=repr)
def test_sample_accepts_an_int_seed(target):
    a = target.sample(50, generator=42, device="cpu")
    b = target.sample(50, generator=torch.Generator().manual_seed(42))
    assert torch.equal(a, b) and not torch.equal(a, target.sample(50, generator=43, device="cpu"))
    with pytest.raises(TypeError, match=r"generator must be a torch.Generator.*manual_seed\(42\)"):
        target.sample(5, generator="42")
