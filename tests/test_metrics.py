"""Tests for diffviz.metrics: every KL estimator against closed forms (Gaussians) and quadrature (mixtures),
two-sample distances, quantiles, mode features, the probability-flow likelihood against exact Gaussian
densities, the Franzese terms against theory, and input validation.

Tolerances of the sample-based estimators come from their measured spread: for each setting below we ran
12 seeds (same n, k, bins) and recorded the error (estimate - exact); the tolerance is 5 standard deviations
of that error, and the measured mean error (the finite-sample bias) was below one standard deviation in
every case kept here.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from diffviz import metrics
from diffviz.metrics import (
    bits_per_dim,
    cw_features,
    elbo_terms,
    entropy_knn,
    kl_histogram_1d,
    kl_histogram_2d,
    kl_knn,
    kl_to_density,
    mmd,
    mode_weight,
    nll_pf_ode,
    per_coordinate_quantiles,
    quantile_table,
    sliced_wasserstein,
    within_mode_variance,
)
from diffviz.processes import VE, VP
from diffviz.theory import franzese_bound_terms, kl_gaussian

F64 = torch.float64


def gen(seed):
    return torch.Generator().manual_seed(seed)


# --- references written here (independent of diffviz.targets) --------------------------------------------------
# Gaussians in 2-D with diagonal covariances; Q is wider than P (the situation of a model covering the data).
MP, VP_ = torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.5])
MQ, VQ = torch.tensor([0.5, -0.3]), torch.tensor([2.0, 1.5])
# mixtures: weights w, means mu, standard deviations sd (diagonal components in 2-D)
P1 = dict(w=[0.3, 0.7], mu=[-2.0, 1.0], sd=[0.5, 0.7])
Q1 = dict(w=[0.5, 0.5], mu=[-1.0, 1.5], sd=[1.0, 1.2])
P2 = dict(w=[0.4, 0.6], mu=[[-1.5, 0.0], [1.0, 1.0]], sd=[[0.5, 0.8], [0.7, 0.4]])
Q2 = dict(w=[0.5, 0.5], mu=[[-1.0, 0.5], [1.0, 0.0]], sd=[[1.0, 1.0], [1.2, 1.0]])


def gauss_sample(mean, var, n, g):
    return mean.double() + var.double().sqrt() * torch.randn(n, mean.shape[0], generator=g, dtype=F64)


def gauss_logpdf(mean, var):
    return lambda x: (-0.5 * ((x - mean.double()) ** 2 / var.double()).sum(-1) - 0.5 * torch.log(var.double()).sum()
                      - 0.5 * x.shape[-1] * math.log(2 * math.pi))


def _spec(spec):
    mu = np.asarray(spec["mu"], float)
    sd = np.asarray(spec["sd"], float)
    return (mu[:, None], sd[:, None]) if mu.ndim == 1 else (mu, sd)


def gmm_sample(spec, n, g):
    mu, sd = (torch.tensor(a, dtype=F64) for a in _spec(spec))
    k = torch.multinomial(torch.tensor(spec["w"], dtype=F64), n, replacement=True, generator=g)
    return mu[k] + sd[k] * torch.randn(n, mu.shape[1], generator=g, dtype=F64)


def gmm_logpdf_np(spec, x):
    """log density at points x (..., d) (or (...,) in 1-D), numpy."""
    mu, sd = _spec(spec)
    x = np.asarray(x, float)
    if mu.shape[1] == 1 and (x.ndim == 0 or x.shape[-1] != 1):
        x = x[..., None]
    terms = [math.log(w) + stats.norm.logpdf(x, m, s).sum(-1) for w, m, s in zip(spec["w"], mu, sd)]
    return np.logaddexp.reduce(np.stack(terms), axis=0)


def gmm_logpdf(spec):
    return lambda x: torch.as_tensor(gmm_logpdf_np(spec, x.detach().numpy()), dtype=F64)


def kl_quad_1d(p, q):
    """KL(p || q) for 1-D mixtures by adaptive quadrature."""
    f = lambda t: math.exp(gmm_logpdf_np(p, t)) * (gmm_logpdf_np(p, t) - gmm_logpdf_np(q, t))  # noqa: E731
    return integrate.quad(f, -15, 15, limit=200, points=[-2.0, 1.0])[0]


def kl_grid_2d(p, q, L=9.0, n=801):
    """KL(p || q) for 2-D mixtures by the trapezoidal rule on a grid (the tails beyond +-9 are < 1e-20)."""
    t = np.linspace(-L, L, n)
    pts = np.stack(np.meshgrid(t, t, indexing="ij"), -1)
    lp, lq = gmm_logpdf_np(p, pts), gmm_logpdf_np(q, pts)
    return integrate.trapezoid(integrate.trapezoid(np.exp(lp) * (lp - lq), t, axis=1), t)


def cell_probs(spec, edges_per_axis):
    """Cell probabilities of a diagonal mixture (edge cells extended to +-inf, as the estimator clips)."""
    mu, sd = _spec(spec)
    total = 0.0
    for w, m, s in zip(spec["w"], mu, sd):
        factors = []
        for axis, edges in enumerate(edges_per_axis):
            e = np.array(edges, float)
            e[0], e[-1] = -np.inf, np.inf
            factors.append(np.diff(stats.norm.cdf(e, m[axis], s[axis])))
        cell = factors[0]
        for f in factors[1:]:
            cell = np.multiply.outer(cell, f)
        total = total + w * cell
    return total.reshape(-1)


def binned_kl(p, q, edges_per_axis):
    a, b = cell_probs(p, edges_per_axis), cell_probs(q, edges_per_axis)
    return float((a * (np.log(a) - np.log(b))).sum())


KL_GAUSS = kl_gaussian(MP, VP_, MQ, VQ)  # 0.405


# --- k-nearest-neighbour KL ------------------------------------------------------------------------------------
def test_kl_knn_gaussians_closed_form():
    # n = m = 3000, k = 5: 12 seeds gave error mean +0.023, sd 0.023 -> tolerance 5 sd = 0.12 (KL = 0.405)
    g = gen(0)
    x, y = gauss_sample(MP, VP_, 3000, g), gauss_sample(MQ, VQ, 3000, g)
    est = kl_knn(x, y, k=5)
    assert abs(est - KL_GAUSS) < 0.12, (est, KL_GAUSS)


def test_kl_knn_mixtures_by_quadrature():
    # 1-D: n = m = 3000: error mean -0.009, sd 0.023 -> 0.12;  2-D: error mean +0.010, sd 0.041 -> 0.21
    g = gen(1)
    ref1 = kl_quad_1d(P1, Q1)  # 0.323
    est1 = kl_knn(gmm_sample(P1, 3000, g), gmm_sample(Q1, 3000, g))
    assert abs(est1 - ref1) < 0.12, (est1, ref1)
    ref2 = kl_grid_2d(P2, Q2)  # 0.758
    est2 = kl_knn(gmm_sample(P2, 3000, g), gmm_sample(Q2, 3000, g))
    assert abs(est2 - ref2) < 0.21, (est2, ref2)


def test_kl_knn_of_a_law_with_itself_is_zero_also_for_unequal_sizes():
    # n = m = 3000: sd 0.0095 over 12 seeds -> 0.05. With m = 4 n the log(m/(n-1)) term (= log 4) matters:
    # leaving it out would give -1.39.
    g = gen(2)
    x = gauss_sample(MP, VP_, 3000, g)
    assert abs(kl_knn(x, gauss_sample(MP, VP_, 3000, g))) < 0.05
    assert abs(kl_knn(x[:1000], gauss_sample(MP, VP_, 4000, g))) < 0.08


def test_kl_knn_is_exact_for_tiny_distances_in_1d():
    # many float64 points in 1-D have neighbours closer than the cancellation error of the matrix-product
    # form of cdist; they must not produce log(0)
    g = gen(3)
    x, y = torch.randn(8000, 1, generator=g, dtype=F64), torch.randn(8000, 1, generator=g, dtype=F64) + 1
    est = kl_knn(x, y, k=1)
    assert math.isfinite(est) and abs(est - 0.5) < 0.15


# --- KL against a density -----------------------------------------------------------------------------------------
def test_kl_to_density_monte_carlo_within_its_standard_error():
    g = gen(4)
    x = gauss_sample(MP, VP_, 20000, g)
    est, se = kl_to_density(x, gauss_logpdf(MQ, VQ), gauss_logpdf(MP, VP_), return_se=True)
    assert se > 0 and abs(est - KL_GAUSS) < 5 * se, (est, se)
    # log densities may also be given as values
    same = kl_to_density(x, gauss_logpdf(MQ, VQ)(x), gauss_logpdf(MP, VP_)(x))
    assert same == pytest.approx(est, rel=1e-12)
    assert kl_to_density(x, gauss_logpdf(MP, VP_), gauss_logpdf(MP, VP_)) == 0.0


def test_kl_to_density_with_entropy_estimate():
    # cross-entropy minus Kozachenko-Leonenko entropy, n = 3000: Gaussians error mean +0.019, sd 0.018 -> 0.09;
    # 1-D mixtures mean -0.008, sd 0.017 -> 0.09; 2-D mixtures mean +0.016, sd 0.025 -> 0.13
    g = gen(5)
    assert abs(kl_to_density(gauss_sample(MP, VP_, 3000, g), gauss_logpdf(MQ, VQ)) - KL_GAUSS) < 0.09
    assert abs(kl_to_density(gmm_sample(P1, 3000, g), gmm_logpdf(Q1)) - kl_quad_1d(P1, Q1)) < 0.09
    assert abs(kl_to_density(gmm_sample(P2, 3000, g), gmm_logpdf(Q2)) - kl_grid_2d(P2, Q2)) < 0.13


def test_entropy_knn_of_a_gaussian():
    # H(N(0, diag(1, 0.5))) = log(2 pi e) + 0.5 log 0.5; n = 4000: error mean -0.004, sd 0.013 -> 0.07
    x = gauss_sample(MP, VP_, 4000, gen(6))
    exact = math.log(2 * math.pi * math.e) + 0.5 * math.log(0.5)
    assert abs(entropy_knn(x) - exact) < 0.07


# --- histograms -----------------------------------------------------------------------------------------------------
def test_kl_histogram_1d_against_binned_and_continuous_kl():
    # n = m = 20000, 60 bins on [-5, 6]: against the exact binned KL (cell probabilities from the normal CDF)
    # the error had mean -0.003 and sd 0.006 over 12 seeds -> tolerance |mean| + 5 sd = 0.035; the binned KL
    # itself is within 0.01 of the continuous one for these smooth densities (0.3205 vs 0.3232, checked here)
    g = gen(7)
    edges = np.linspace(-5, 6, 61)
    ref_binned = binned_kl(P1, Q1, [edges])
    assert abs(ref_binned - kl_quad_1d(P1, Q1)) < 0.01
    est = kl_histogram_1d(gmm_sample(P1, 20000, g), gmm_sample(Q1, 20000, g)[:, 0], bins=60, range=(-5, 6))
    assert abs(est - ref_binned) < 0.035, (est, ref_binned)


def test_kl_histogram_2d_against_binned_kl():
    # 30 x 30 cells on [-5, 5] x [-4, 4], n = m = 20000: the binned KL is 0.018 below the continuous one
    # (discretization lowers KL: 0.740 vs 0.758); against it the estimator's error had mean -0.026 (the
    # smoothing, 0.5 per cell over 900 cells, pulls sparse cells towards uniform) and sd 0.009 over 12 seeds
    # -> tolerance |mean| + 5 sd = 0.075
    g = gen(8)
    ex, ey = np.linspace(-5, 5, 31), np.linspace(-4, 4, 31)
    ref_binned = binned_kl(P2, Q2, [ex, ey])
    assert ref_binned < kl_grid_2d(P2, Q2)
    est = kl_histogram_2d(gmm_sample(P2, 20000, g), gmm_sample(Q2, 20000, g), bins=30, range=((-5, 5), (-4, 4)))
    assert abs(est - ref_binned) < 0.075, (est, ref_binned)


def test_kl_histogram_of_same_samples_is_zero():
    x = torch.randn(1000, 2, generator=gen(9))
    assert kl_histogram_2d(x, x) == pytest.approx(0.0, abs=1e-15)
    assert kl_histogram_1d(x[:, 0], x[:, 0].clone()) == pytest.approx(0.0, abs=1e-15)


# --- two-sample distances -------------------------------------------------------------------------------------------
def test_sliced_wasserstein_same_vs_shifted():
    g = gen(10)
    x, x2 = torch.randn(2000, 3, generator=g), torch.randn(2000, 3, generator=g)
    shift = torch.tensor([1.0, 0.0, 0.0])
    same = sliced_wasserstein(x, x2, generator=gen(0))
    moved = sliced_wasserstein(x, x2 + shift, generator=gen(0))
    # measured over 12 seeds: same 0.055 +- 0.006, moved 0.579 +- 0.026. A shift by a unit vector moves each
    # projection by theta.shift: SW_2 -> sqrt(E theta_1^2) = 1/sqrt(3) = 0.577, plus sampling noise (~ same)
    assert same < 0.1
    assert abs(moved - 1 / math.sqrt(3)) < 2 * same + 0.05
    # unequal sizes: the exact 1-D distance between step quantile functions
    a = torch.tensor([[0.0], [1.0]])
    b = torch.tensor([[0.0], [0.0], [3.0]])
    # quantiles: a = 0 on (0, 1/2], 1 after; b = 0 on (0, 2/3], 3 after -> W_1 = 1/6 * 1 + 1/3 * 2 = 5/6
    assert sliced_wasserstein(a, b, n_projections=3, p=1.0) == pytest.approx(5 / 6, rel=1e-12)


def test_mmd_same_vs_shifted():
    g = gen(11)
    x, x2 = torch.randn(1000, 2, generator=g), torch.randn(1000, 2, generator=g)
    same = mmd(x, x2)
    moved = mmd(x, x2 + torch.tensor([0.5, 0.0]))
    # measured over 12 seeds: same 0.0000 +- 0.00065 (unbiased), laplace 0.0001 +- 0.0005, moved 0.028 +- 0.004
    assert abs(same) < 5 * 0.00065
    assert moved > 0.01
    assert abs(mmd(x, x2, kernel="laplace", bandwidth=1.0)) < 5 * 0.0005


# --- quantiles ------------------------------------------------------------------------------------------------------
def test_per_coordinate_quantiles_match_numpy_and_table_shape():
    x = torch.randn(500, 4, generator=gen(12), dtype=F64)
    levels = (0.1, 0.5, 0.9, 0.999)
    q = per_coordinate_quantiles(x, levels)
    assert q.shape == (4, 4)
    np.testing.assert_allclose(q.numpy(), np.quantile(x.numpy(), levels, axis=0), rtol=1e-12)
    table = quantile_table({"a": x, "b": 2 * x.float()})
    assert list(table.columns) == ["name", "level", "mean", "std", "n", "d"]
    assert len(table) == 2 * len(metrics.DEFAULT_LEVELS)
    row_a = table[(table.name == "a") & (table.level == 0.5)].iloc[0]
    row_b = table[(table.name == "b") & (table.level == 0.5)].iloc[0]
    assert row_b["mean"] == pytest.approx(2 * row_a["mean"], rel=1e-5)
    assert row_a["std"] == pytest.approx(per_coordinate_quantiles(x, [0.5]).std().item(), rel=1e-12)


# --- mode features --------------------------------------------------------------------------------------------------
def test_gm_features_on_constructed_samples():
    d, n, sigma2 = 400, 2000, 0.3
    g = gen(13)
    s = torch.where(torch.arange(n) < 700, 1.0, -1.0)  # p = 0.35 exactly
    x = s[:, None] + math.sqrt(sigma2) * torch.randn(n, d, generator=g)
    assert mode_weight(x) == pytest.approx(0.35, abs=1e-12)  # the noise never flips mu.x/d at this d
    # sigma2_hat = sigma2 chi^2_{nd} / (nd): sd = sigma2 sqrt(2/(nd)) = 3e-4
    assert abs(within_mode_variance(x) - sigma2) < 5 * sigma2 * math.sqrt(2 / (n * d))
    mu = torch.zeros(d)
    mu[:10] = 3.0
    y = -mu + 0.1 * torch.randn(50, d, generator=g)
    assert mode_weight(y, mu=mu) == 0.0
    assert within_mode_variance(y, mu=mu) == pytest.approx(0.01, rel=0.05)


def test_cw_features_on_constructed_spins():
    d = 6
    x = torch.tensor([[1.0] * 6, [1.0] * 4 + [-1.0] * 2, [-1.0] * 6, [1.0] * 3 + [-1.0] * 3])
    out = cw_features(x)
    # M = 1, 1/3, -1, 0: P(M > 0) + P(M = 0)/2 = (2 + 0.5)/4, E|M| = (1 + 1/3 + 1 + 0)/4
    assert out["p_pos"] == pytest.approx(2.5 / 4)
    assert out["abs_m"] == pytest.approx((7 / 3) / 4)
    assert cw_features(0.3 * x) == out  # continuous samples are mapped to sign(x) first
    assert x.shape[1] == d


# --- likelihood by the probability-flow ODE -------------------------------------------------------------------------
GAUSS_MEAN = torch.tensor([0.5, -1.0, 0.2], dtype=F64)
GAUSS_VAR = torch.tensor([0.5, 2.0, 0.1], dtype=F64)


def diag_gaussian_score(process, mean=GAUSS_MEAN, var=GAUSS_VAR):
    """Exact noised score -(x - m mu)/(m^2 lambda + s^2) per coordinate (diagonal covariance)."""
    def score(x, t):
        m, s = process.mean_scale(t).item(), process.std(t).item()
        return -(x - m * mean) / (m ** 2 * var + s ** 2)
    return score


class _DiagGaussianPrior:
    """p_T = N(m mu, m^2 lambda + s^2) as a prior with log_prob (isolates the ODE's discretization error)."""

    def __init__(self, process, t):
        m, s = process.mean_scale(t).item(), process.std(t).item()
        self.mean, self.var = m * GAUSS_MEAN, m ** 2 * GAUSS_VAR + s ** 2

    def log_prob(self, x):
        return gauss_logpdf(self.mean, self.var)(x)


def exact_nll(process, x0):
    prior = _DiagGaussianPrior(process, process.t_min)
    return -prior.log_prob(x0)


@pytest.mark.parametrize("process", [VP(), VE(sigma_max=20.0)], ids=["VP", "VE"])
def test_nll_pf_ode_matches_exact_gaussian_density(process):
    # Heun is second order: with p_T as the prior the error fell 4x per doubling (VP log-SNR grid, 100 steps:
    # 2.4e-3, 200: 5.7e-4; VE: 4.8e-2 and 1.2e-2), so 200 steps must be within 2e-3 (VP) / 3e-2 (VE).
    x0 = gauss_sample(GAUSS_MEAN, GAUSS_VAR, 100, gen(14))
    score = diag_gaussian_score(process)
    nll = nll_pf_ode(score, process, x0, n_steps=200, prior=_DiagGaussianPrior(process, process.T))
    assert nll.dtype == F64 and nll.shape == (100,)
    tol = 2e-3 if isinstance(process, VP) else 3e-2
    assert (nll - exact_nll(process, x0)).abs().max() < tol
    # Euler is first order: clearly worse with the same steps
    nll_euler = nll_pf_ode(score, process, x0, n_steps=200, method="euler",
                           prior=_DiagGaussianPrior(process, process.T))
    assert (nll_euler - exact_nll(process, x0)).abs().max() > 3 * tol


def test_nll_pf_ode_with_the_standard_prior_is_close_for_vp():
    # VP at T = 1: p_T differs from N(0, I) by m(T) = 6e-3, so per-sample NLLs move by ~ m |x| (< 0.05) and
    # the mean by ~ KL(p_T || N(0, I)) ~ 1e-5
    process = VP()
    x0 = gauss_sample(GAUSS_MEAN, GAUSS_VAR, 200, gen(15))
    diff = nll_pf_ode(diag_gaussian_score(process), process, x0, n_steps=100) - exact_nll(process, x0)
    assert diff.abs().max() < 0.05 and abs(diff.mean().item()) < 0.01


def test_nll_pf_ode_hutchinson_is_unbiased():
    # Full covariance, so the score's Jacobian is not diagonal and Rademacher probes have variance.
    # Both runs follow the same path x_t; they differ only by the integrated probe noise, zero-mean and
    # independent across samples: the mean difference must be within 5 standard errors.
    process = VP()
    cov = torch.tensor([[1.0, 0.6, 0.0], [0.6, 1.0, -0.4], [0.0, -0.4, 0.8]], dtype=F64)
    mean = torch.tensor([0.3, 0.0, -0.5], dtype=F64)

    def score(x, t):
        m, s = process.mean_scale(t).item(), process.std(t).item()
        C = m ** 2 * cov + s ** 2 * torch.eye(3, dtype=F64)
        return -torch.linalg.solve(C, (x - m * mean).T).T

    L = torch.linalg.cholesky(cov)
    x0 = mean + torch.randn(300, 3, generator=gen(16), dtype=F64) @ L.T
    exact_div = nll_pf_ode(score, process, x0, n_steps=60)
    hutch = nll_pf_ode(score, process, x0, n_steps=60, divergence="hutchinson", generator=gen(17))
    diff = hutch - exact_div
    assert diff.std() > 1e-3  # the probes do add noise here
    assert abs(diff.mean()) < 5 * diff.std() / math.sqrt(diff.shape[0])
    more = nll_pf_ode(score, process, x0, n_steps=60, divergence="hutchinson", n_probes=8, generator=gen(17))
    assert (more - exact_div).std() < diff.std()  # 8 probes: ~ sqrt(8) less noise
    # and the exact-divergence NLL is the true Gaussian NLL (at t_min)
    m, s = process.mean_scale(process.t_min).item(), process.std(process.t_min).item()
    C = m ** 2 * cov + s ** 2 * torch.eye(3, dtype=F64)
    true = -torch.distributions.MultivariateNormal(m * mean, C).log_prob(x0)
    assert (exact_div - true).abs().max() < 0.05


def test_bits_per_dim():
    assert bits_per_dim(64 * math.log(2), 64) == pytest.approx(1.0)
    # digits: x = pixel/8 - 1, so the density in pixel units is p_x / 8^d: + log2(8) = 3 bits per dim
    assert bits_per_dim(0.0, 64, scale=metrics.DIGITS_SCALE) == pytest.approx(3.0)
    out = bits_per_dim(torch.tensor([0.0, 64 * math.log(2)]), 64)
    assert out.dtype == F64 and out.tolist() == pytest.approx([0.0, 1.0])


# --- Franzese terms -------------------------------------------------------------------------------------------------
def test_elbo_terms_match_the_gaussian_toy():
    # data N(0, lam) in 1-D, VP; score_theta = exact + eps (constant): |gap|^2 = eps^2 everywhere, so
    # G = 1/2 eps^2 int_0^T g^2 (theory.franzese_bound_terms), and KL(p_T || N(0,1)) is closed form.
    from diffviz.targets import Gaussian

    lam, eps, T = 3.0, 0.2, 0.5
    process = VP()
    target = Gaussian(torch.zeros(1), lam)
    kl_ref, gap_ref = franzese_bound_terms(T, lam, eps ** 2, process)
    exact = elbo_terms(lambda x, t: target.score(x, t, process), process, target, T=T, t_min=0.0, n=4000,
                       n_t=32, generator=gen(18))
    assert exact["score_gap"] == 0.0
    assert abs(exact["kl_prior"] - kl_ref) < 5 * exact["kl_prior_se"]
    off = elbo_terms(lambda x, t: target.score(x, t, process) + eps, process, target, T=T, t_min=0.0, n=4000,
                     n_t=32, generator=gen(18))
    assert off["score_gap_se"] > 0
    assert abs(off["score_gap"] - gap_ref) < 5 * off["score_gap_se"]
    assert off["bound"] == pytest.approx(off["kl_prior"] + off["score_gap"])


def test_elbo_terms_with_an_x_dependent_error():
    # score_theta = exact + c x: G = 1/2 c^2 int g^2 E|x_t|^2 dt, E|x_t|^2 = sum_i m^2 (lam_i + mu_i^2) + s^2
    from diffviz.targets import Gaussian

    process, T, c = VP(), 0.8, 0.1
    target = Gaussian(GAUSS_MEAN, GAUSS_VAR)
    second = float((GAUSS_VAR + GAUSS_MEAN ** 2).sum())

    def integrand(t):
        m, s = process.mean_scale(t).item(), process.std(t).item()
        return 0.5 * c ** 2 * process.g2(t).item() * (m ** 2 * second + 3 * s ** 2)

    ref = integrate.quad(integrand, process.t_min, T)[0]
    out = elbo_terms(lambda x, t: target.score(x, t, process) + c * x, process, target, T=T, n=4096, n_t=64,
                     generator=gen(19))
    assert abs(out["score_gap"] - ref) < 5 * out["score_gap_se"], (out, ref)


# --- validation -----------------------------------------------------------------------------------------------------
def test_bad_inputs_name_the_parameter():
    x = torch.randn(50, 2)
    with pytest.raises(ValueError, match="k"):
        kl_knn(x, x, k=0)
    with pytest.raises(ValueError, match="same dimension"):
        kl_knn(x, torch.randn(50, 3))
    with pytest.raises(ValueError, match="k must be <="):
        kl_knn(x[:3], x, k=5)
    with pytest.raises(ValueError, match="bins"):
        kl_histogram_1d(x[:, 0], x[:, 0], bins=0)
    with pytest.raises(ValueError, match="range"):
        kl_histogram_1d(x[:, 0], x[:, 0], range=(1, 0))
    with pytest.raises(ValueError, match="2-D samples"):
        kl_histogram_2d(torch.randn(10, 3), torch.randn(10, 3))
    with pytest.raises(ValueError, match="n_projections"):
        sliced_wasserstein(x, x, n_projections=0)
    with pytest.raises(ValueError, match="kernel"):
        mmd(x, x, kernel="poly")
    with pytest.raises(ValueError, match="bandwidth"):
        mmd(x, x, bandwidth=-1.0)
    with pytest.raises(ValueError, match="levels"):
        per_coordinate_quantiles(x, [1.5])
    with pytest.raises(ValueError, match="mu"):
        mode_weight(x, mu=torch.ones(3))
    with pytest.raises(ValueError, match="log_q"):
        kl_to_density(x, torch.zeros(7))
    with pytest.raises(ValueError, match="finite"):
        kl_knn(torch.full((5, 2), math.nan), x)
    process = VP()
    with pytest.raises(ValueError, match="divergence"):
        nll_pf_ode(lambda z, t: -z, process, x, divergence="trace")
    with pytest.raises(ValueError, match="method"):
        nll_pf_ode(lambda z, t: -z, process, x, method="rk4")
    with pytest.raises(ValueError, match="grid"):
        nll_pf_ode(lambda z, t: -z, process, x, grid=[0.1, 0.5])
    with pytest.raises(ValueError, match="scale"):
        bits_per_dim(1.0, 4, scale=0.0)


def test_relative_score_error_bounds():
    from diffviz import VP
    from diffviz.metrics import relative_score_error
    from diffviz.targets import Gaussian

    proc = VP()
    target = Gaussian(torch.zeros(2, dtype=torch.float64), torch.tensor([0.5, 2.0], dtype=torch.float64))
    exact = lambda x, t: target.score(x, t, proc)  # noqa: E731
    gen = torch.Generator().manual_seed(0)
    assert relative_score_error(exact, exact, proc, target, generator=gen) < 1e-10
    assert relative_score_error(lambda x, t: torch.zeros_like(x), exact, proc, target, generator=gen) == pytest.approx(1.0)
    half = relative_score_error(lambda x, t: 0.5 * exact(x.double(), t), exact, proc, target, generator=gen)
    assert half == pytest.approx(0.25, rel=1e-6)
