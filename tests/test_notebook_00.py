"""Notebook 0 (tour), executed with FAST=True: recorded figures against theory."""
import math

import pytest

pytestmark = pytest.mark.notebook


def test_tour_notebook(fast_notebook):
    fig, _ = fast_notebook("00_tour")
    # A learned score on the moons toy: a broken trainer gives ~1 (a zero score) or ~0.15 (no modes).
    assert fig["tour_learned_score_rel_error"] < 0.05
    # Simulated Heun variances within 5 standard errors of the exact discretized law (20 000 samples).
    for v_exact, v_sim in zip(fig["tour_heun10_var_exact"], fig["tour_heun10_var_sim"]):
        assert abs(v_sim - v_exact) < 5 * v_exact * math.sqrt(2 / 20_000)
    # Second-order Heun beats first-order Euler at the same step count.
    assert fig["tour_exact_kl_heun_N80"] < fig["tour_exact_kl_ode-euler_N80"] / 10

