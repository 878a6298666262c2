import math

import pytest
import torch

from diffviz import theory
from diffviz.dashboards.schedules import SchedulesDashboard
from diffviz.experiments import schedules as E


@pytest.mark.parametrize("name", E.GRIDS)
def test_closed_form_equals_generic_recursion(name):
    """Sun et al.'s cosine product equals the step-by-step DDIM recursion of diffviz.theory."""
    p = E.sun_process()
    grid = E.make_grid(name, p, 12, 2.0)
    generic = theory.sampler_kl(p, grid, [2.0], method="ddim", init="exact", reference="grid_end")
    assert E.exact_kl(name, 12, 2.0, p) == pytest.approx(generic, rel=1e-9)


def test_tangent_is_best_for_one_eigenvalue():
    for lam in [0.05, 4.0, 30.0]:
        curves = E.kl_curves(lam, [5, 20, 80])
        for name in ["uniform", "quadratic", "karras"]:
            assert (curves["tangent"] < curves[name]).all(), (lam, name)
        assert (curves["tangent"] <= curves["cosine"] * (1 + 1e-12)).all()


def test_kl_falls_like_n_minus_two():
    kl = E.kl_curves(4.0, [100, 200, 400], names=["uniform"])["uniform"]
    rates = [math.log2(kl[i] / kl[i + 1]) for i in range(2)]
    assert all(abs(r - 2) < 0.05 for r in rates), rates


def test_simulation_matches_closed_form():
    n = 40_000
    r = E.simulate("karras", 6, 4.0, n, generator=torch.Generator().manual_seed(0))
    assert abs(r["var_sim"] - r["var_exact"]) < 5 * r["var_exact"] * math.sqrt(2 / n)
    assert r["var_exact"] < 4.0  # deterministic sampling under-disperses


def test_dashboard_driven_from_code():
    dash = SchedulesDashboard(n_samples=2000)
    before = dict(dash.numbers)
    kl_trace = list(dash.figures["kl"].data[-2].y)
    dash.set(n_steps=40, schedule="tangent")
    assert dash.numbers["kl_exact"] < before["kl_exact"]
    assert list(dash.figures["kl"].data[-2].y) != kl_trace  # the marker moved
    assert dash.numbers["kl_exact"] == pytest.approx(E.exact_kl("tangent", 40, dash.values["lam"]), rel=1e-12)
    n_updates = dash.n_updates
    dash.update()  # same values: no recomputation (stale events collapse)
    assert dash.n_updates == n_updates
    with pytest.raises(ValueError, match="n_steps"):
        dash.set(n_steps=0)
    with pytest.raises(ValueError, match="schedule"):
        dash.set(schedule="linear")
