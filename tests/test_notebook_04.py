"""Notebook 4 (VP/VE phase transitions) executed with FAST=True, asserted on its recorded figures; and its
dashboard driven from code (no browser).

Tolerances: 5 standard errors of the recorded estimates (binomial for p_hat, sample std for sigma2_hat);
the sigma^2 "recovered" bound states the Euler bias at the largest FAST step count (exact Euler value beside).
"""
import math

import pytest


P, S2 = 0.8, 0.25


@pytest.fixture(scope="module")
def figs(fast_notebook):
    return fast_notebook("04_phase_transitions")[0]


def _at(figs, name, n_steps):
    return figs[name][figs["pt_sweep_steps"].index(n_steps)]



def test_fast_defaults_recorded(figs):
    """FAST picks the defaults of the None sizes (run_defaults): d = 1000, steps up to 80."""
    assert figs["pt_sweep_d"] == 1000 and figs["pt_sweep_steps"][-1] == 80


def test_uniform_vp_loses_p_where_dilated_vp_keeps_it(figs):
    se = math.sqrt(P * (1 - P) / figs["pt_sweep_n"])
    assert _at(figs, "pt_vp_none_p_hat", 10) - P > 5 * se  # exact Euler 0.989
    assert abs(_at(figs, "pt_vp_dilated_p_hat", 10) - P) < 5 * se  # exact Euler 0.836
    assert abs(_at(figs, "pt_ve_none_p_hat", 10) - P) < 5 * se


def test_dilated_ve_recovers_sigma2_where_uniform_ve_does_not(figs):
    uni, dil = figs["pt_ve_none_sigma2_hat"], figs["pt_ve_dilated_sigma2_hat"]
    steps = figs["pt_sweep_steps"]
    assert all(u < 0.55 * S2 for u in uni), uni  # uniform VE collapses the modes up to 80 steps at d = 1000
    # at 80 steps dilated VE is within its Euler bias (exact 0.221, 12 %), uniform VE is not (exact 0.129)
    assert abs(dil[-1] - S2) < 0.15 * S2 and abs(uni[-1] - S2) > 0.4 * S2
    assert all(d > u for d, u, k in zip(dil, uni, steps) if k >= 10)


def test_simulation_agrees_with_exact_euler(figs):
    """The part of sigma2_hat orthogonal to mu (light-tailed) against its exact Euler expectation."""
    for key in ("vp_none", "vp_dilated", "ve_none", "ve_dilated"):
        for est, se, ex in zip(figs[f"pt_{key}_sigma2_perp_hat"], figs[f"pt_{key}_sigma2_perp_se"],
                               figs[f"pt_{key}_sigma2_perp_exact"]):
            assert abs(est - ex) < 5 * se, (key, est, ex)


def test_steps_needed_grow_like_sqrt_d_only_for_uniform(figs):
    assert figs["pt_needed_d"] == [100, 400, 1600]
    ve_u, ve_d = figs["pt_needed_ve_none"], figs["pt_needed_ve_dilated"]
    assert None not in ve_u and None not in ve_d
    assert ve_u[-1] >= 4 * ve_u[0]  # sqrt(16) = 4
    assert max(ve_d) <= 2 * min(ve_d)
    assert figs["pt_needed_exact_d"][-1] == 1_000_000
    for key in ("vp", "ve"):
        uni, dil = figs[f"pt_needed_exact_{key}_none"], figs[f"pt_needed_exact_{key}_dilated"]
        assert None not in dil and max(dil) <= 2 * min(dil), dil
        assert (uni[-1] is None or uni[-1] >= 30 * uni[0]), uni  # sqrt(10^4) = 100


def test_mode_decided_in_first_half(figs):
    assert figs["pt_decided_at_half_ve_dilated"] >= 0.99


def test_curie_weiss_features(figs):
    n = figs["pt_sweep_n"]
    p_ex = figs["pt_cw_exact_p_pos"]
    se = math.sqrt(p_ex * (1 - p_ex) / n)
    good = "ve_dilated_100"
    assert abs(figs[f"pt_cw_{good}_p_pos"] - p_ex) < 5 * se
    assert abs(figs[f"pt_cw_{good}_abs_m"] - figs["pt_cw_exact_abs_m"]) < 5 * figs[f"pt_cw_{good}_abs_m_se"] + 0.002
    assert figs[f"pt_cw_{good}_spin_dev"] < 1e-3
    # uniform VE at 20 steps: the raw output stops short of +-1 and its spins (signs) all align
    assert figs["pt_cw_ve_none_20_spin_dev"] > 0.01
    assert figs["pt_cw_ve_none_20_abs_m"] - figs["pt_cw_exact_abs_m"] > 5 * figs["pt_cw_exact_abs_m_sd"] / math.sqrt(n)


def test_dashboard_update_recorded(figs):
    assert 0 < figs["pt_dashboard_update_ms"] < 1000  # loose here: the CPU is shared; timed below


# --- the dashboard, driven from code -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def dash():
    from diffviz.dashboards.phase_transitions import PhaseTransitionDashboard

    return PhaseTransitionDashboard(n=300)


def test_dashboard_numbers_and_figures_follow_controls(dash):
    se = math.sqrt(P * (1 - P) / 300)
    nums = dash.set(schedule="vp/none", n_steps=10, log10_d=3.0, seed=0)
    assert dash.message == ""
    assert nums["p"] == P and nums["sigma2"] == S2 and nums["d"] == 1000
    assert nums["p_hat"] - P > 5 * se  # uniform VP at 10 steps: exact Euler 0.989
    mode_y = list(dash.figures["mode"].data[0].y)
    assert sum(mode_y) == pytest.approx(1.0)
    assert sum(dash.figures["mode"].data[1].y) == pytest.approx(1.0, abs=1e-9)  # exact target bins

    nums = dash.set(schedule="ve/none", n_steps=20)
    assert abs(nums["p_hat"] - P) < 5 * se
    assert nums["sigma2_hat"] < 0.2 * S2  # collapse (exact Euler 0.020)
    assert list(dash.figures["mode"].data[0].y) != mode_y
    assert list(dash.figures["errors"].data[2].x) == [20, 20]

    nums = dash.set(schedule="ve/dilated", n_steps=80)
    assert abs(nums["sigma2_hat"] - S2) < 0.15 * S2  # exact Euler 0.221
    assert nums["sigma2_euler"] == pytest.approx(nums["sigma2_hat"], abs=5 * 0.001)



def test_dashboard_rejects_bad_values(dash):
    with pytest.raises(ValueError, match="n_steps"):
        dash.set(n_steps=10_000)
    with pytest.raises(ValueError, match="unknown"):
        dash.set(steps=3)
