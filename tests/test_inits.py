"""Tests for diffviz.inits: each initialization fitted on samples of p_T against the exact density of p_T
(KL by Monte Carlo with exact log densities), normalization and sample/log_prob consistency, agreement
with scipy's Student-t fit, reproducibility, shapes and input validation.

Tolerances for fitted models: a well-specified maximum-likelihood fit with k parameters on n samples has
KL(p || p_hat) ~ chi^2_k / (2n) (Wilks), mean k/(2n) and sd sqrt(2k)/(2n); we allow mean + 5 sd plus 5 Monte
Carlo standard errors of the KL estimate itself. For the flow (no such count) the tolerance is 5x the
value measured over 3 seeds (0.0017 to 0.0031).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

import diffviz
from diffviz.inits import (
    FlowInit,
    GMMInit,
    MomentMatchedGaussian,
    OracleInit,
    StandardPrior,
    StudentTInit,
    forward_samples,
)
from diffviz.metrics import kl_to_density, mmd
from diffviz.theory import kl_gaussian
from diffviz.processes import VE, VP
from diffviz.targets import Gaussian, TwoModeMixture

F64 = torch.float64
N_FIT = 4096
N_EVAL = 20000
T_SMALL = 0.3
PROCESS = VP()
MEAN = torch.tensor([0.5, -1.0, 0.2], dtype=F64)
COV = torch.tensor([[1.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 0.3]], dtype=F64)
DIAG = torch.tensor([1.0, 2.0, 0.3], dtype=F64)
FAST_FLOW = dict(n_layers=4, hidden=32, steps=400, lr=1e-2)  # ~2 s on one CPU thread


def gen(seed):
    return torch.Generator().manual_seed(seed)


class ExactNoisedGaussian:
    """p_t = N(m mu, m^2 Sigma + s^2 I) written out here (independent of diffviz.targets), float64."""

    def __init__(self, mean, cov, process, t):
        m, s = process.mean_scale(t).item(), process.std(t).item()
        self.mean = m * mean
        self.cov = m ** 2 * (cov if cov.dim() == 2 else torch.diag(cov)) + s ** 2 * torch.eye(mean.shape[0], dtype=F64)
        self.L = torch.linalg.cholesky(self.cov)

    def sample(self, n, g):
        return self.mean + torch.randn(n, self.mean.shape[0], generator=g, dtype=F64) @ self.L.T

    def log_prob(self, x):
        y = torch.linalg.solve_triangular(self.L, (x.to(F64) - self.mean).T, upper=False)
        d = self.mean.shape[0]
        return -0.5 * (y ** 2).sum(0) - torch.log(torch.diagonal(self.L)).sum() - 0.5 * d * math.log(2 * math.pi)


def wilks_tolerance(k, n=N_FIT):
    return k / (2 * n) + 5 * math.sqrt(2 * k) / (2 * n)


def fitted_kl(init, exact, g):
    x_eval = exact.sample(N_EVAL, g)
    return kl_to_density(x_eval, init.log_prob, exact.log_prob, return_se=True)


# --- fits on a Gaussian p_T: KL ~ 0 ---------------------------------------------------------------------------------
def test_forward_samples_have_the_noised_moments():
    target = Gaussian(MEAN, COV)
    x = forward_samples(target, PROCESS, N_EVAL, t=T_SMALL, generator=gen(0), dtype=F64)
    exact = ExactNoisedGaussian(MEAN, COV, PROCESS, T_SMALL)
    se_mean = torch.diagonal(exact.cov).sqrt() / math.sqrt(N_EVAL)
    assert ((x.mean(0) - exact.mean).abs() < 5 * se_mean).all()
    # variance of a sample variance: 2 sigma^4 / n
    se_var = math.sqrt(2 / N_EVAL) * torch.diagonal(exact.cov)
    assert ((x.var(0) - torch.diagonal(exact.cov)).abs() < 5 * se_var).all()
    assert forward_samples(target, PROCESS, 3, generator=gen(0)).shape == (3, 3)


@pytest.mark.parametrize("name, make, k", [
    ("moment-matched", lambda: MomentMatchedGaussian(), 3 + 6),
    ("gmm-2-full", lambda: GMMInit(2), 2 * (3 + 6) + 1),
    ("flow", lambda: FlowInit(**FAST_FLOW), None),
])
def test_full_covariance_inits_recover_a_gaussian_p_T(name, make, k):
    target = Gaussian(MEAN, COV)
    x = forward_samples(target, PROCESS, N_FIT, t=T_SMALL, generator=gen(1))
    init = make().fit(x)
    kl, se = fitted_kl(init, ExactNoisedGaussian(MEAN, COV, PROCESS, T_SMALL), gen(2))
    tol = (wilks_tolerance(k) if k is not None else 5 * 0.0031) + 5 * se
    print(f"{name}: KL(p_T || nu) = {kl:.5f} +- {se:.5f} (tolerance {tol:.4f})")
    assert -5 * se < kl < tol


@pytest.mark.parametrize("name, make, k", [
    ("moment-matched-diag", lambda: MomentMatchedGaussian(covariance="diag"), 3 + 3),
    ("gmm-2-diag", lambda: GMMInit(2, covariance="diag"), 2 * (3 + 3) + 1),
    ("student-t", lambda: StudentTInit(), 3 * 3),
])
def test_diagonal_inits_recover_a_diagonal_gaussian_p_T(name, make, k):
    # the Student-t fit drives df large on Gaussian data (~50 here); its KL behaves like the k = 3d count
    target = Gaussian(MEAN, DIAG)
    x = forward_samples(target, PROCESS, N_FIT, t=T_SMALL, generator=gen(3))
    init = make().fit(x)
    kl, se = fitted_kl(init, ExactNoisedGaussian(MEAN, DIAG, PROCESS, T_SMALL), gen(4))
    tol = wilks_tolerance(k) + 5 * se
    print(f"{name}: KL(p_T || nu) = {kl:.5f} +- {se:.5f} (tolerance {tol:.4f})")
    assert -5 * se < kl < tol


def test_standard_prior_and_oracle():
    target = Gaussian(MEAN, COV)
    exact = ExactNoisedGaussian(MEAN, COV, PROCESS, T_SMALL)
    prior = StandardPrior(PROCESS, 3).fit(forward_samples(target, PROCESS, 10, t=T_SMALL, generator=gen(5)))
    kl, se = fitted_kl(prior, exact, gen(6))
    ref = kl_gaussian(exact.mean, exact.cov, torch.zeros(3), torch.eye(3, dtype=F64))
    assert abs(kl - ref) < 5 * se
    assert prior.sample(10000, generator=gen(7)).std().item() == pytest.approx(1.0, abs=5 * math.sqrt(0.5 / 30000))
    ve_prior = StandardPrior(VE(sigma_T=7.0), 2)
    assert ve_prior.sample(20000, generator=gen(8), dtype=F64).std().item() == pytest.approx(7.0, rel=0.02)

    oracle = OracleInit(target, PROCESS, t=T_SMALL)
    x = torch.randn(50, 3, generator=gen(9), dtype=F64)
    torch.testing.assert_close(oracle.log_prob(x), exact.log_prob(x), rtol=1e-10, atol=1e-10)
    # its samples are p_T: same MMD^2 as two exact samples (sd of MMD^2 here ~ 1e-3; see test_metrics)
    assert abs(mmd(oracle.sample(1000, generator=gen(10)), exact.sample(1000, gen(11)))) < 5e-3
    assert oracle.sample(4, generator=gen(12)).shape == (4, 3)


# --- a bimodal p_T: the mixture and the flow beat the Gaussian ------------------------------------------------------
BIMODAL = TwoModeMixture(2, p=0.3, sigma2=0.05)
T_BIMODAL = 0.1  # m = 0.95, s = 0.32: two well separated modes at +-0.95 (1, 1)


@pytest.fixture(scope="module")
def bimodal_fits():
    x = forward_samples(BIMODAL, PROCESS, N_FIT, t=T_BIMODAL, generator=gen(20))
    fits = {"moment-matched": MomentMatchedGaussian().fit(x), "gmm-2": GMMInit(2).fit(x),
            "flow": FlowInit(**FAST_FLOW).fit(x), "student-t": StudentTInit().fit(x)}
    return x, fits


def bimodal_log_p(z):
    return BIMODAL.log_prob_t(z.to(F64), T_BIMODAL, PROCESS)


def test_gmm_and_flow_beat_the_moment_matched_gaussian_on_a_bimodal_p_T(bimodal_fits):
    _, fits = bimodal_fits
    x_eval = forward_samples(BIMODAL, PROCESS, N_EVAL, t=T_BIMODAL, generator=gen(21), dtype=F64)
    kls = {name: kl_to_density(x_eval, init.log_prob, bimodal_log_p, return_se=True) for name, init in fits.items()}
    for name, (kl, se) in kls.items():
        print(f"bimodal p_T, KL(p_T || {name}) = {kl:.4f} +- {se:.4f}")
    mm, mm_se = kls["moment-matched"]
    for name in ("gmm-2", "flow"):
        kl, se = kls[name]
        assert kl + 5 * se < mm - 5 * mm_se, (name, kl, mm)
    # the two-component mixture is well specified: Wilks again (k = 2 * 5 + 1)
    assert kls["gmm-2"][0] < wilks_tolerance(11) + 5 * kls["gmm-2"][1]


def test_log_probs_are_normalized_and_consistent_with_samples(bimodal_fits):
    _, fits = bimodal_fits
    t = torch.linspace(-5, 5, 401, dtype=F64)
    grid = torch.stack(torch.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2)
    for name, init in fits.items():
        dens = torch.exp(init.log_prob(grid)).reshape(401, 401).numpy()
        mass = integrate.trapezoid(integrate.trapezoid(dens, t.numpy(), axis=1), t.numpy())
        assert mass == pytest.approx(1.0, abs=2e-3), (name, mass)  # tails outside [-5, 5]^2 are < 1e-3
        # sample and log_prob describe the same law: E_nu[log nu - log p_T] = KL(nu || p_T) >= 0 (5 SE)
        y = init.sample(4000, generator=gen(22))
        rev, se = kl_to_density(y, bimodal_log_p, init.log_prob, return_se=True)
        assert rev > -5 * se, (name, rev, se)
        assert y.shape == (4000, 2) and y.dtype == torch.float32


def test_flow_maps_are_inverse_and_gaussianize(bimodal_fits):
    x, fits = bimodal_fits
    flow = fits["flow"]
    z = flow.to_latent(x)
    torch.testing.assert_close(flow.from_latent(z), x.to(F64), rtol=1e-9, atol=1e-9)
    # the fitted data mapped to latent space are close to N(0, I): moments within a few percent
    assert z.mean(0).abs().max() < 0.1 and (z.std(0) - 1).abs().max() < 0.1


def test_inits_plug_into_a_sampler(bimodal_fits):
    _, fits = bimodal_fits
    score = lambda x, t: BIMODAL.score(x, t, PROCESS)  # noqa: E731
    grid = diffviz.schedules.uniform(PROCESS, 20, t_max=T_BIMODAL)
    x_init = fits["gmm-2"].sample(500, generator=gen(23))
    out = diffviz.sample(score, PROCESS, x_init, grid, method="ode-euler")
    assert out.shape == (500, 2) and torch.isfinite(out).all()


# --- Student-t ------------------------------------------------------------------------------------------------------
def test_student_t_fit_matches_scipy_maximum_likelihood():
    from diffviz.targets import standard_gamma

    g = gen(30)
    tau = standard_gamma(1.5, 6000, generator=g).reshape(3000, 2) / 1.5  # df = 3: tau ~ Gamma(df/2, rate df/2)
    x = torch.tensor([0.5, -1.0], dtype=F64) + torch.tensor([1.5, 0.7], dtype=F64) * torch.randn(
        3000, 2, generator=g, dtype=F64) / tau.sqrt()
    fit = StudentTInit().fit(x)
    assert fit.converged_
    for i in range(2):
        df, loc, scale = stats.t.fit(x[:, i].numpy())
        ll_scipy = stats.t.logpdf(x[:, i].numpy(), df, loc, scale).sum()
        ll_ours = stats.t.logpdf(x[:, i].numpy(), fit.df[i].item(), fit.loc[i].item(), fit.scale[i].item()).sum()
        assert ll_ours > ll_scipy - 1e-6  # at least as good a maximum
        assert fit.df[i].item() == pytest.approx(df, rel=2e-3)
        assert fit.loc[i].item() == pytest.approx(loc, abs=2e-3 * scale)
        assert fit.scale[i].item() == pytest.approx(scale, rel=2e-3)
    # its log_prob is the product of the per-coordinate densities
    lp = stats.t.logpdf(x[:5].numpy(), fit.df.numpy(), fit.loc.numpy(), fit.scale.numpy()).sum(-1)
    np.testing.assert_allclose(fit.log_prob(x[:5]).numpy(), lp, rtol=1e-10)


def test_pooled_student_t_recovers_the_tail_index():
    from diffviz.targets import StudentT

    # d = 10 i.i.d. t_3 coordinates, n = 2000: pooled df had mean 3.02, sd 0.056 over 8 seeds -> 5 sd = 0.28
    x = StudentT(10, 3.0).sample(2000, generator=gen(31), dtype=F64)
    fit = StudentTInit(df="pooled").fit(x)
    assert torch.all(fit.df == fit.df[0])
    assert abs(fit.df[0].item() - 3.0) < 0.28
    # samples of the fit have the fitted law: the per-coordinate median |x| of t_3 is 0.765
    y = fit.sample(20000, generator=gen(32), dtype=F64)
    med = y.abs().median().item()
    assert med == pytest.approx(stats.t.ppf(0.75, fit.df[0].item()) * fit.scale.mean().item(), rel=0.03)


# --- reproducibility, shapes ----------------------------------------------------------------------------------------
def test_fits_are_reproducible_and_seeded():
    x = forward_samples(BIMODAL, PROCESS, 1000, t=T_BIMODAL, generator=gen(40))
    probe = torch.randn(20, 2, generator=gen(41))
    for make in (lambda s: GMMInit(4, seed=s), lambda s: FlowInit(n_layers=2, hidden=16, steps=50, seed=s)):
        a, b, c = make(0).fit(x), make(0).fit(x), make(1).fit(x)
        torch.testing.assert_close(a.log_prob(probe), b.log_prob(probe), rtol=0, atol=0)
        assert not torch.equal(a.log_prob(probe), c.log_prob(probe))
        torch.testing.assert_close(a.sample(5, generator=gen(3)), b.sample(5, generator=gen(3)), rtol=0, atol=0)
        assert a.key() == b.key() and a.key() != c.key()


def test_event_shapes_round_trip():
    x = torch.randn(300, 1, 2, 2, generator=gen(50))
    for init in (MomentMatchedGaussian(), GMMInit(2, covariance="diag"), StudentTInit(),
                 FlowInit(n_layers=2, hidden=8, steps=5)):
        init.fit(x)
        assert init.sample(7, generator=gen(51)).shape == (7, 1, 2, 2)
        lp = init.log_prob(x[:9])
        assert lp.shape == (9,) and lp.dtype == F64
    prior = StandardPrior(PROCESS, 4).fit(x)
    assert prior.sample(3, generator=gen(52)).shape == (3, 1, 2, 2)


# --- validation -----------------------------------------------------------------------------------------------------
def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="n_components"):
        GMMInit(0)
    with pytest.raises(ValueError, match="covariance"):
        GMMInit(2, covariance="spherical")
    with pytest.raises(ValueError, match="n_components"):
        GMMInit(8).fit(torch.randn(5, 2))
    with pytest.raises(ValueError, match="covariance"):
        MomentMatchedGaussian(covariance="tied")
    with pytest.raises(ValueError, match="steps"):
        FlowInit(steps=-1)
    with pytest.raises(ValueError, match="df"):
        StudentTInit(df="shared")
    with pytest.raises(ValueError, match="d"):
        StandardPrior(PROCESS, 0)
    with pytest.raises(ValueError, match="d = 3"):
        StandardPrior(PROCESS, 3).fit(torch.randn(10, 2))
    with pytest.raises(ValueError, match="x must"):
        MomentMatchedGaussian().fit(torch.randn(10))
    with pytest.raises(ValueError, match="finite"):
        MomentMatchedGaussian().fit(torch.full((10, 2), math.nan))
    with pytest.raises(RuntimeError, match="not fitted"):
        GMMInit(2).sample(3)
    fitted = MomentMatchedGaussian().fit(torch.randn(20, 2))
    with pytest.raises(ValueError, match="shape"):
        fitted.log_prob(torch.randn(4, 3))
    with pytest.raises(ValueError, match="n"):
        forward_samples(BIMODAL, PROCESS, 0)
