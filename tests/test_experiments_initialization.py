"""diffviz.experiments.initialization: the noised Student-t law, the Heun map, quality numbers and the three claims
of notebook 2 (Fassina et al.) with tolerances from the sample sizes.

Binomial tolerances: for N i.i.d. samples of a continuous law F, the order statistic X_(ceil(N u)) has
F(X_(k)) ~ Beta(k, N - k + 1), standard deviation sqrt(u (1 - u) / N); we allow 5 of them, and only at levels
with at least 20 samples beyond them.
"""
import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad
from scipy.stats import norm
from scipy.stats import t as student_t

from diffviz import make_generator
from diffviz.experiments import initialization as E

LEVELS_TEST = np.array([0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999])


def _pooled_output_levels(x_init, df, sigma_T, n_steps, levels):
    """Push the pooled order statistics of x_init (all coordinates together) through the sampler: F_0 at the outputs."""
    pooled = x_init.reshape(-1, 1)
    q = E.order_statistic_quantiles(pooled, levels)[0]
    y = E.SamplerMap(df, sigma_T, n_steps).push(q)
    return student_t.cdf(y, df), pooled.shape[0]


# --- the noised Student-t law ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("df", [3.0, 1.5])
def test_noised_sf_against_scipy_and_numerical_convolution(df):
    x = np.array([-30.0, -2.0, 0.0, 0.7, 3.0, 40.0])
    assert np.allclose(E.noised_sf(x, df, 0.0), student_t.sf(x, df), rtol=1e-10, atol=0)
    ref = [quad(lambda y: student_t.pdf(y, df) * norm.sf((xi - y) / 2.0), -np.inf, np.inf, limit=400,
                epsabs=0, epsrel=1e-12)[0] for xi in x]
    assert np.allclose(E.noised_sf(x, df, 2.0), ref, rtol=1e-9, atol=0)


def test_noised_quantile_inverts_the_survival_function():
    u = np.array([1e-6, 0.1, 0.5, 0.9, 0.999, 1 - 1e-6])
    x = E.noised_quantile(u, 1.5, 7.0)
    assert np.all(np.diff(x) > 0)
    assert np.allclose(E.noised_sf(x, 1.5, 7.0), 1 - u, rtol=1e-8, atol=1e-15)
    with pytest.raises(ValueError, match="q must lie in"):
        E.noised_quantile([0.0, 0.5], 3.0, 2.0)


def test_transport_map_sends_pT_quantiles_to_data_quantiles():
    u = np.array([1e-5, 0.2, 0.5, 0.95, 1 - 1e-6])
    psi = E.TransportMap(3.0, 7.0)
    assert np.allclose(psi.push(E.noised_quantile(u, 3.0, 7.0)), student_t.ppf(u, 3.0), rtol=1e-7, atol=1e-9)


# --- the Heun map ---------------------------------------------------------------------------------------------------
def test_map_of_order_statistics_equals_the_direct_simulation():
    gen = make_generator(3, "cpu")
    x = E.draw_starts(3.0, 7.0, 40, 5, inits=("oracle",), generator=gen)["oracle"]
    out = E.run_sampler(x, 3.0, 7.0, 16)  # diffviz.sample, Heun, exact score, on the samples themselves
    levels = [0.1, 0.5, 0.9]
    pushed = E.SamplerMap(3.0, 7.0, 16).push(E.order_statistic_quantiles(x, levels))
    assert np.abs(E.order_statistic_quantiles(out, levels) - pushed).max() < 1e-10


def test_clustered_push_matches_direct_push():
    learned = E.fit_learned(3.0, 2.0, n_fit=400, d=30, n_iter=50, generator=make_generator(0, "cpu"))
    q = E.init_quantiles("learned", 3.0, 2.0, E.KL_EDGES, learned=learned)  # (30, L), close values per column
    smap = E.SamplerMap(3.0, 2.0, 16)
    (approx,) = smap.push_many([q], cluster=[True])
    exact = smap.push(q)
    assert np.max(np.abs(approx - exact) / (np.abs(exact) + 1e-2)) < 1e-3


def test_non_monotone_map_is_refused():
    with pytest.raises(E.NotMonotoneError, match="not increasing"):
        E.SamplerMap(3.0, 80.0, 2).push_many([np.array([0.0, 1.0])])


def test_order_statistics_commute_with_increasing_maps():
    x = torch.randn(101, 4, generator=make_generator(1, "cpu"), dtype=torch.float64)
    levels = [0.01, 0.3, 0.5, 0.99]
    f = lambda v: v ** 3 + 2 * v  # noqa: E731 (increasing)
    assert np.allclose(E.order_statistic_quantiles(f(x), levels), f(E.order_statistic_quantiles(x, levels)))


# --- quality numbers ------------------------------------------------------------------------------------------------
def test_binned_kl_and_tail_error_vanish_on_the_data_and_not_elsewhere():
    edges, tail = np.array(E.KL_EDGES), np.array(E.TAIL_LEVELS)
    assert abs(E.binned_kl(3.0, E.data_quantiles(3.0, edges), edges)) < 1e-12
    assert E.tail_error(3.0, E.data_quantiles(3.0, tail), tail) < 1e-12
    assert E.binned_kl(3.0, 0.8 * E.data_quantiles(3.0, edges), edges) > 0.01
    assert E.tail_error(3.0, 0.8 * E.data_quantiles(3.0, tail), tail) == pytest.approx(-math.log(0.8))
    assert E.steps_needed([4, 8, 16], [0.5, 0.01, 0.02], 0.05) == 8
    assert E.steps_needed([4, 8, 16], [0.5, 0.5, 0.5], 0.05) is None


# --- (i) oracle start + exact score + many steps reproduces the data ------------------------------------------------
def test_oracle_start_with_many_steps_reproduces_student_t_quantiles():
    df, sigma_T, n_steps = 3.0, 7.0, 64
    x = E.draw_starts(df, sigma_T, 400, 50, inits=("oracle",), generator=make_generator(5, "cpu"))["oracle"]
    F, n = _pooled_output_levels(x, df, sigma_T, n_steps, LEVELS_TEST)
    sd = np.sqrt(LEVELS_TEST * (1 - LEVELS_TEST) / n)
    assert np.all(np.minimum(LEVELS_TEST, 1 - LEVELS_TEST) * n >= 20)
    assert np.all(np.abs(F - LEVELS_TEST) < 5 * sd), (F - LEVELS_TEST) / sd
    # the test is limited by sampling, not by the discretization: the exact output levels are much closer
    disc = E.SamplerMap(df, sigma_T, n_steps).push(E.noised_quantile(LEVELS_TEST, df, sigma_T))
    assert np.all(np.abs(student_t.cdf(disc, df) - LEVELS_TEST) < 0.2 * sd)


# --- (ii) at sigma_T = 2 the prior's tails are too light, the learned start is close --------------------------------
def test_small_sigma_prior_tails_too_light_learned_close():
    df, sigma_T, n_steps, d, n_fit, n = 3.0, 2.0, 32, 20, 1000, 1000
    learned = E.fit_learned(df, sigma_T, n_fit=n_fit, d=d, n_iter=100, generator=make_generator(7, "cpu"))
    starts = E.draw_starts(df, sigma_T, n, d, inits=("prior", "learned"), learned=learned,
                           generator=make_generator(8, "cpu"))
    levels = np.array([0.9, 0.99, 0.999])
    F_prior, N = _pooled_output_levels(starts["prior"], df, sigma_T, n_steps, levels)
    F_learned, _ = _pooled_output_levels(starts["learned"], df, sigma_T, n_steps, levels)
    sd = np.sqrt(levels * (1 - levels) / N)
    # prior: output quantiles too small (too little mass beyond the true quantile), far outside sampling noise
    assert np.all(levels - F_prior > 5 * sd), (levels - F_prior) / sd
    # learned: within sampling noise of the N pooled outputs plus that of the fit (n_fit samples per coordinate,
    # d coordinates), and at least five times closer than the prior
    tol = 5 * np.sqrt(levels * (1 - levels)) * np.sqrt(1 / N + 1 / (n_fit * d))
    assert np.all(np.abs(F_learned - levels) < tol), (F_learned - levels) / tol
    assert np.all(np.abs(F_learned - levels) < np.abs(F_prior - levels) / 5)


# --- (iii) exact Gaussian reference ---------------------------------------------------------------------------------
def test_gaussian_exact_start_beats_prior_at_small_sigma_and_the_gap_closes_at_80():
    steps = [32, 64, 128, 256]
    curves = E.gaussian_kl_curves((2.0, 7.0, 80.0), steps, lam=3.0, d=100)
    for s in (2.0, 7.0):
        assert np.all(curves["exact"][s] < curves["prior"][s])
    gap2 = curves["prior"][2.0] - curves["exact"][2.0]
    gap80 = np.abs(curves["prior"][80.0] - curves["exact"][80.0])
    assert np.all(gap80 < 1e-3 * gap2)
    assert curves["endpoint"][2.0] > curves["endpoint"][7.0] > curves["endpoint"][80.0]
    assert curves["endpoint"][80.0] < 1e-5
    # the ODE carries the start's error unchanged: from the prior, KL -> KL(p_T || prior) as N grows
    assert E.gaussian_kl(2.0, 1024, "prior") == pytest.approx(curves["endpoint"][2.0], rel=1e-3)


def test_student_t_exact_start_reaches_tolerance_with_fewer_steps_at_small_sigma():
    sw2 = E.steps_sweep(3.0, 2.0, (4, 8, 16, 32), inits=("oracle", "prior"))
    sw80 = E.steps_sweep(3.0, 80.0, (4, 8, 16, 32), inits=("prior",))
    assert math.isnan(sw80["prior"]["binned_kl"][0])  # 4 steps over sigma in [0.01, 80]: the map is not monotone
    n2 = E.steps_needed(sw2["steps"], sw2["oracle"]["binned_kl"], 0.02)
    n80 = E.steps_needed(sw80["steps"], sw80["prior"]["binned_kl"], 0.02)
    assert n2 is not None and n80 is not None and 4 * n2 <= n80
    assert E.steps_needed(sw2["steps"], sw2["prior"]["binned_kl"], 0.02) is None  # the prior's floor at sigma_T = 2
    assert sw2["prior"]["limit_binned_kl"] > 0.05


# --- infinite variance ----------------------------------------------------------------------------------------------
def test_gaussian_start_has_infinite_kl_for_infinite_variance():
    cut = np.array([1e4, 1e6, 1e8])
    heavy = E.truncated_endpoint_kl(1.5, 2.0, cut)
    light = E.truncated_endpoint_kl(3.0, 2.0, cut)
    # nu = 1.5: the restricted KL grows like X^(2 - nu): x 10 per two decades
    assert heavy[2] / heavy[1] == pytest.approx(10.0, rel=0.05)
    assert heavy[1] / heavy[0] == pytest.approx(10.0, rel=0.1)
    # nu = 3: it converges (to KL(p_T || prior) > 0)
    assert light[2] - light[1] < 1e-5 * light[2] and light[2] > 0.1
