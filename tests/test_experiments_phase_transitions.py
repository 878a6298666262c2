"""diffviz.experiments.phase_transitions: the VP/VE dichotomy of Aranguri et al. (2025) on the two-mode mixture,
the exact Euler reference (1-D reduction), steps needed vs d, and the Curie–Weiss comparison.

Tolerances: 5 standard errors of the n-sample estimates (binomial for p_hat, sample std for sigma2_hat); the
sigma^2 "recovered" tolerances state the O(1/N) Euler bias of the step count used, taken from the exact
reference printed beside them.
"""
import math

import numpy as np
import pytest
import torch

from diffviz.experiments import phase_transitions as pt
from diffviz.processes import Interpolant
from diffviz.targets import TwoModeMixture

P, S2 = 0.8, 0.25
D, N = 6400, 300  # the dichotomy needs 1/sqrt(d) = 1/80 well below the step size 1/32


def binom_se(n, p=P):
    return math.sqrt(p * (1 - p) / n)


@pytest.fixture(scope="module")
def runs():
    """Uniform schedules at 32 steps, dilated ones at 80 steps; d = 6400, same initial noise."""
    steps = {"none": 32, "dilated": 80}
    return {(k, dl): pt.run_gm(D, N, steps[dl], k, dl, P, S2, seed=0) for k, dl in pt.SCHEDULES}


def test_uniform_vp_loses_p_keeps_sigma2(runs):
    r = runs[("vp", "none")]
    ex = pt.euler_features_exact(D, 32, "vp", "none", P, S2)
    assert r["p_hat"] - P > 5 * binom_se(N), (r["p_hat"], ex["p_hat"])  # exact Euler: 0.964
    # sigma^2 recovered up to the Euler bias at 32 steps (exact: 0.228, i.e. 8.8 %)
    assert abs(r["sigma2_hat"] - S2) < 0.1 * S2, (r["sigma2_hat"], ex["sigma2_hat"])


def test_uniform_ve_keeps_p_loses_sigma2(runs):
    r = runs[("ve", "none")]
    assert abs(r["p_hat"] - P) < 5 * binom_se(N), r["p_hat"]
    assert r["sigma2_hat"] < 0.1 * S2, r["sigma2_hat"]  # collapse: exact Euler 0.009 (96 % off)
    assert abs(r["sigma2_hat"] - S2) > 1000 * r["sigma2_se"]


@pytest.mark.parametrize("kind", ["vp", "ve"])
def test_dilated_recovers_both(runs, kind):
    r = runs[(kind, "dilated")]
    ex = pt.euler_features_exact(D, 80, kind, "dilated", P, S2)
    assert abs(r["p_hat"] - P) < 5 * binom_se(N), r["p_hat"]
    # Euler bias at 80 steps (exact: VP 0.233, VE 0.221, i.e. 7 % and 12 %), the same at every d
    assert abs(r["sigma2_hat"] - S2) < 0.15 * S2, (r["sigma2_hat"], ex["sigma2_hat"])


@pytest.mark.parametrize("n_steps", [7, 12])
def test_simulation_matches_exact_euler(n_steps):
    """The 1-D reduction gives the expected features of the simulation (odd n_steps: a step straddles u = 1/2)."""
    d, n = 500, 400
    for kind, dilation in pt.SCHEDULES:
        r = pt.run_gm(d, n, n_steps, kind, dilation, P, S2, seed=1)
        ex = pt.euler_features_exact(d, n_steps, kind, dilation, P, S2)
        se_p = math.sqrt(max(ex["p_hat"] * (1 - ex["p_hat"]), 1 / n) / n)
        assert abs(r["p_hat"] - ex["p_hat"]) < 5 * se_p, (kind, dilation, r["p_hat"], ex["p_hat"])
        # the orthogonal part is a linear image of the initial noise: light-tailed, exact expectation
        assert abs(r["sigma2_perp_hat"] - ex["sigma2_perp"]) < 5 * r["sigma2_perp_se"], (kind, dilation)
        # the rest, (|M| - 1)^2, comes from rare particles caught between the modes: n samples may miss it
        low = ex["sigma2_hat"] - ex["sigma2_resid"] - 5 * r["sigma2_se"]
        assert low < r["sigma2_hat"] < ex["sigma2_hat"] + 5 * r["sigma2_se"], (kind, dilation, r["sigma2_hat"],
                                                                             ex["sigma2_hat"])


def test_features_agree_with_metrics(gen):
    from diffviz import metrics

    x = TwoModeMixture(300, P, S2).sample(200, generator=gen)
    f = pt.gm_sample_features(x)
    assert f["p_hat"] == pytest.approx(metrics.mode_weight(x))
    assert f["sigma2_hat"] == pytest.approx(metrics.within_mode_variance(x), rel=1e-9)
    assert f["sigma2_perp_hat"] <= f["sigma2_hat"]
    # exact samples: both features within 5 standard errors of the targets
    assert abs(f["p_hat"] - P) < 5 * binom_se(200)
    assert abs(f["sigma2_hat"] - S2) < 5 * f["sigma2_se"]


def test_mode_coord_bin_probs_exact():
    edges = np.linspace(-2, 2, 41)
    probs = pt.mode_coord_bin_probs(edges, 1000, P, S2)
    assert probs.sum() == pytest.approx(1.0, abs=1e-12)
    assert probs[edges[1:] <= 0].sum() == pytest.approx(1 - P, abs=1e-12)


def test_interpolant_ode_steps_in_tau_across_the_kink():
    """Each Euler step moves tau by tau(u_{k+1}) - tau(u_k), also across the kink at u = 1/2 (odd or even N):
    with a posterior whose b is constant (eps_hat = 0, x1_hat = 1), X_1 - X_0 = tau(1) - tau(0) = 1 exactly."""
    from diffviz import interpolant_ode

    for kind in ("vp", "ve"):
        for n_steps in (10, 7):
            interp = Interpolant(kind, "dilated", d=D)
            x0 = torch.zeros(3, 2, dtype=torch.float64)
            seen = []
            x = interpolant_ode(lambda x, tau: (torch.zeros_like(x), torch.ones_like(x)), interp, x0, n_steps,
                                callback=lambda i, u, x: seen.append(float(x[0, 0])))
            assert float((x - 1).abs().max()) < 1e-12, (kind, n_steps)
            assert max(seen) <= 1 + 1e-12  # never past tau = 1


def test_steps_needed_exact_grows_like_sqrt_d():
    grid = [6 * 2 ** k for k in range(12)]
    ds = [400, 6400, 102_400]  # x16 in d: x4 in sqrt(d)
    for kind in ("vp", "ve"):
        uni = pt.steps_needed(ds, kind, "none", 0.05, 0.2, steps=grid, method="exact")["steps_needed"]
        dil = pt.steps_needed(ds, kind, "dilated", 0.05, 0.2, steps=grid, method="exact")["steps_needed"]
        assert None not in uni and None not in dil, (uni, dil)
        assert all(b >= 2 * a for a, b in zip(uni, uni[1:])), (kind, uni)  # ~x4 per x16 in d (doubling grid)
        assert max(dil) <= 2 * min(dil), (kind, dil)  # flat
        assert max(dil) < uni[-1]


def test_steps_needed_simulated_matches_exact():
    grid = [6 * 2 ** k for k in range(8)]
    sim = pt.steps_needed([100, 400], "ve", "none", 0.05, 0.2, steps=grid, n=400)
    ex = pt.steps_needed([100, 400], "ve", "none", 0.05, 0.2, steps=grid, method="exact")
    assert sim["steps_needed"] == ex["steps_needed"]  # sigma2 decides here; its SE is tiny
    assert ex["steps_needed"][1] == 2 * ex["steps_needed"][0]
    assert sim["tried"][0][-1]["n_steps"] == sim["steps_needed"][0]


def test_magnetization_decided_in_first_half():
    r = pt.run_gm(2000, 200, 20, "ve", "dilated", P, S2, seed=2, record_magnetization=True, n_traj=5)
    assert r["magnetization"].shape == (21, 5)
    np.testing.assert_allclose(r["u"], np.linspace(0, 1, 21))
    assert r["decided_at_half"] == 1.0
    assert np.all(np.abs(np.abs(r["magnetization"][-1]) - 1) < 0.1)


def test_curie_weiss_dilated_ve_matches_exact():
    d, n = 2500, 300
    good = pt.run_cw(d, n, 100, "ve", "dilated", 2.0, 0.7, seed=0)
    ex = good["exact"]
    s = good["sampler"]
    assert abs(s["p_pos"] - ex["p_pos"]) < 5 * binom_se(n, ex["p_pos"])
    assert abs(s["abs_m"] - ex["abs_m"]) < 5 * s["abs_m_se"] + 0.002  # + Euler bias of E|M| at 100 steps
    assert good["spin_dev"] < 1e-3  # spins end on +-1
    assert abs(good["exact_sampler"]["p_pos"] - ex["p_pos"]) < 5 * binom_se(n, ex["p_pos"])
    # the same dichotomy at 20 steps: uniform VP tilts the mode weight, uniform VE aligns (almost) every spin
    vp = pt.run_cw(d, n, 20, "vp", "none", 2.0, 0.7, seed=0)
    ve = pt.run_cw(d, n, 20, "ve", "none", 2.0, 0.7, seed=0)
    assert vp["sampler"]["p_pos"] - ex["p_pos"] > 5 * binom_se(n, ex["p_pos"])
    assert abs(ve["sampler"]["p_pos"] - ex["p_pos"]) < 5 * binom_se(n, ex["p_pos"])
    assert ve["sampler"]["abs_m"] - ex["abs_m"] > 5 * ex["abs_m_sd"] / math.sqrt(n)
    assert ve["spin_dev"] > 0.01  # the raw output stops short of +-1


def test_cw_features_match_metrics(gen):
    from diffviz import metrics

    x = torch.randn(50, 301, generator=gen) + 0.3
    ours = pt.cw_sample_features(x)
    theirs = metrics.cw_features(x)
    assert ours["p_pos"] == pytest.approx(theirs["p_pos"]) and ours["abs_m"] == pytest.approx(theirs["abs_m"])


def test_bad_input_raises():
    with pytest.raises(ValueError, match="kind"):
        pt.run_gm(100, 10, 5, "vx", "none")
    with pytest.raises(ValueError, match="n_steps"):
        pt.run_gm(100, 10, 0, "vp", "none")
    with pytest.raises(ValueError, match="kappa"):
        pt.run_gm(9, 10, 5, "vp", "dilated")
    with pytest.raises(ValueError, match="tol_p"):
        pt.steps_needed([100], "vp", "none", tol_p=0.01, n=100)
    with pytest.raises(ValueError, match="method"):
        pt.steps_needed([100], "vp", "none", method="guess")
