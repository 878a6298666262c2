"""Notebook 3 (Sun et al. scheduling), executed with FAST=True: its recorded figures against theory."""
import math

import pytest

pytestmark = pytest.mark.notebook


def test_schedules_notebook(fast_notebook):
    fig, _ = fast_notebook("03_schedules")
    # The tangent law is optimal for one eigenvalue: it beats every other grid at N = 32.
    for name in ["uniform", "quadratic", "cosine", "karras"]:
        assert fig["kl_N32_tangent"] < fig[f"kl_N32_{name}"]
    # N^2 KL approaches the Euler–Maclaurin constant (within 2 % at N = 128: the next term is O(1/N)).
    for name in ["uniform", "quadratic", "cosine", "karras", "tangent"]:
        assert fig[f"N2_kl_N128_{name}"] == pytest.approx(fig[f"asymptotic_constant_{name}"], rel=0.02)
    # Simulation within 5 standard errors of the closed-form variance, and under-dispersed (var < lambda = 4).
    for n in [4, 8, 16]:
        ve, vs, se = (fig[f"sim_uniform_N{n}_var_{k}"] for k in ("exact", "sim", "se"))
        assert abs(vs - ve) < 5 * se and ve < 4.0
    # Several eigenvalues: the Phi-law beats all the others (derived result).
    others = [fig[k] for k in fig if k.startswith("multi_kl_N32_") and k != "multi_kl_N32_tangent_phi"]
    assert fig["multi_kl_N32_tangent_phi"] < min(others)
    assert math.isfinite(fig["dashboard_kl_exact"])

