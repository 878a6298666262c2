"""The documentation pages: relative links resolve, and the numbers docs/theory.md and docs/workshop.md quote are
the ones diffviz computes (so a change to the package that moves them fails here, not in front of a class)."""
import math
import re
from pathlib import Path

import pytest

from diffviz import VP, schedules, theory
from diffviz.experiments import diffusion_time as DT
from diffviz.experiments import initialization as INIT
from diffviz.experiments import phase_transitions as PT
from diffviz.experiments import schedules as SCH

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(path: Path) -> set:
    return set(re.findall(r'<a id="([^"]+)"></a>', path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked here
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        assert dest.exists(), f"{page.name}: link to a missing file {target}"
        if anchor and dest.suffix == ".md":
            assert anchor in _anchors(dest), f"{page.name}: link to a missing anchor {target}"


def test_workshop_lists_every_notebook():
    text = (ROOT / "docs" / "workshop.md").read_text(encoding="utf-8")
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")):
        assert f"../notebooks/{nb.stem}.ipynb" in text, f"docs/workshop.md does not link {nb.stem}"
    assert "Exercises (workshop track)" in text


def _ratio(method, n, lam=0.01):
    _, var = theory.sampler_moments(VP(), n, [lam], method=method, init="prior")
    return float(var) / lam


def test_dispersion_numbers():
    assert round(_ratio("ode-euler", 5), 3) == 3.539  # theory §4.4, workshop
    assert round(_ratio("heun", 5), 2) == 6.27
    assert round(_ratio("ddim", 5), 4) == 0.0574
    assert round(_ratio("ode-euler", 10), 3) == 0.609
    assert round(_ratio("ddim", 10, lam=4.0), 3) == 0.741
    assert round(theory.sampler_kl(VP(), 10, [0.01], method="ode-euler"), 3) == 0.073
    assert round(theory.sampler_kl(VP(), 20, [0.01], method="ode-euler"), 3) == 0.108


def test_diffusion_time_numbers():
    assert round(theory.franzese_optimal_T(4.0, 0.01), 4) == 0.5753  # theory §5.2
    assert round(theory.franzese_optimal_T_vp_closed_form(4.0, 0.01), 4) == 0.5753
    assert round(theory.franzese_bound(theory.franzese_optimal_T(4.0, 0.01), 4.0, 0.01), 4) == 0.0193
    assert round(theory.franzese_bound(1.0, 4.0, 0.01), 4) == 0.0503
    bounds = {T: theory.endpoint_kl(DT.make_process(T), [4.0, 4.0]) + DT.score_gap_constant(DT.make_process(T), 0.3)
              for T in (0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)}  # the dashboard task of docs/workshop.md
    assert min(bounds, key=bounds.get) == 0.5 and round(bounds[0.5], 3) == 0.139


def test_initialization_numbers():
    assert round(100 * theory.endpoint_kl_ve([3.0], 2.0), 2) == 9.52  # theory §6.1
    assert round(INIT.gaussian_kl(80.0, 16, "prior"), 2) == 4.39
    assert round(INIT.gaussian_kl(2.0, 16, "exact"), 4) == 0.0019
    assert 5e-6 < 100 * theory.endpoint_kl_ve([3.0], 80.0) < 6e-6


def test_schedule_numbers():
    assert round(SCH.asymptotic_constant("tangent", 4.0), 3) == 1.470  # theory §7.2
    assert round(SCH.asymptotic_constant("uniform", 4.0), 3) == 2.289
    p = SCH.sun_process()
    psi = [math.atan(float(p.sigma(t)) / 2.0) for t in (p.T, p.t_min)]
    assert round((psi[0] - psi[1]) ** 4 / 4, 4) == 1.4698  # theory §7.3
    ab = SCH.alpha_bar(p, schedules.uniform(p, 10))
    assert round(float(theory.ddim_cosine_gain(ab, 4.0)), 3) == 1.720  # theory §7.1


def test_phase_transition_numbers():
    e = PT.euler_features_exact(1000, 20, "ve", "none")  # theory §8.3, workshop dashboard task
    assert round(e["sigma2_hat"], 3) == 0.020 and round(e["p_hat"], 3) == 0.807
    r = PT.steps_needed([10_000], "vp", "none", 0.05, 0.2, steps=[6 * 2 ** k for k in range(8)], method="exact")
    assert r["steps_needed"] == [192]  # theory §8.4


def test_workshop_guide_lists_every_exercise():
    from diffviz.workshop import registry

    guide = (ROOT / "docs" / "workshop.md").read_text(encoding="utf-8")
    missing = [e["id"] for e in registry() if e["id"] not in guide]
    assert not missing, f"docs/workshop.md does not mention the exercises {missing}"
