"""Notebook 5 (a small score model on 8x8 digits, short vs long horizon) executed with FAST=True, asserted on its
recorded figures; differences between starts are paired (same x_T, same ODE path) and held to 5 standard errors.
"""
import math

import pytest


pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def figs(fast_notebook):
    return fast_notebook("05_images")[0]



def test_cost_at_a_fixed_step_size(figs):
    assert figs["nfe_T0.3"] == 15 and figs["nfe_T1"] == 50  # FAST step 0.02: NFE = T / h


def test_fitted_start_closes_the_endpoint_gap_at_the_short_horizon(figs):
    for name in ("gaussian", "gmm"):
        se = math.hypot(figs["xent_se_T0.3_prior"], figs[f"xent_se_T0.3_{name}"])
        assert figs["xent_T0.3_prior"] - figs[f"xent_T0.3_{name}"] > 5 * se
    # at T = 1 the prior is p_T up to e^{-B(1)}: a fitted start cannot beat it beyond the noise
    se = math.hypot(figs["xent_se_T1_prior"], figs["xent_se_T1_gaussian"])
    assert figs["xent_T1_gaussian"] > figs["xent_T1_prior"] - 5 * se


def test_bits_per_dim(figs):
    for T in ("0.3", "1"):
        for name in ("prior", "gaussian", "gmm"):
            assert 0 < figs[f"bpd_T{T}_{name}"] < 4, (T, name)  # 4 bits/dim: uniform density on [-1, 1]
    d_short, se_short = figs["bpd_diff_T0.3_gaussian"], figs["bpd_diff_se_T0.3_gaussian"]
    assert d_short < -5 * se_short  # the fitted start lowers the bits/dim at the short horizon
    d_long, se_long = figs["bpd_diff_T1_gaussian"], figs["bpd_diff_se_T1_gaussian"]
    assert d_long > -5 * se_long  # ...but not at the long one
    assert d_short < d_long - 5 * math.hypot(se_short, se_long)


def test_fitted_start_gets_the_mean_pixel_right(figs):
    assert abs(figs["sample_mean_T0.3_gaussian"] - figs["data_mean_pixel"]) < 5 * figs["sample_mean_se_T0.3_gaussian"]
