"""SandboxDashboard driven from code: beads by clicks, every control, the read-out against diffviz.sandbox.run (and
through it the exact references of tests/test_sandbox.py), the plotted densities against the exact log p_t, copy as
code, JSON save/load. Small sample sizes: a few seconds."""
import math
import re

import numpy as np
import pytest
import torch

pytest.importorskip("ipywidgets")
pytest.importorskip("plotly")

from diffviz import sandbox as S  # noqa: E402
from diffviz.dashboards.sandbox import SandboxDashboard  # noqa: E402


@pytest.fixture
def dash():
    return SandboxDashboard(n_samples=400)


def _cells(html: str) -> dict:
    return dict(re.findall(r'data-key="([^"]+)" data-value="([^"]+)"', html))


def test_defaults_readout_and_snapshot(dash):
    assert dash.message == "" and dash.numbers["n_beads"] == 3
    cells = _cells(dash.readout_html())
    assert set(cells) == set(dash.numbers)
    text = re.sub(r"<[^>]+>", "", dash.readout_html())
    assert "KL(pT ‖ q)" in text and "(Monte Carlo)" in text and "(estimated)" in text and " ± " in text
    assert dash.numbers == {**S.run_scenario(dash.scenario)["numbers"], "kl_samples_exact": False}
    bundle = dash._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/html"].count("Plotly.newPlot") == 2


def test_clicks_add_remove_and_select_beads(dash):
    before = dash.figures["data"].data[1].x
    n = dash.click(0.5, 0.5)
    assert n["n_beads"] == 4 and dash.beads[-1] == [0.5, 0.5, 1.0]
    assert not np.array_equal(dash.figures["data"].data[1].x, before), "the samples move"
    assert len(dash.figures["data"].data[4].x) == 4, "the new bead is drawn"
    n = dash.click(0.55, 0.45)  # within the width of the new bead: removes it
    assert n["n_beads"] == 3 and [0.5, 0.5, 1.0] not in dash.beads
    dash.set(mode="select")
    dash.click(-1.45, -0.8)
    assert dash.selected == 0 and dash.numbers["n_beads"] == 3
    assert list(dash.figures["data"].data[4].marker.color)[0] == "#d62728"
    old = dash.numbers["mean_along_e"]
    dash.set(weight=5.0)
    assert dash.beads[0][2] == pytest.approx(5.0) and dash.numbers["mean_along_e"] < old, "mass moves to bead 0"
    dash.click(3.0, 3.0)  # nothing there: deselects, adds nothing
    assert dash.selected is None and dash.numbers["n_beads"] == 3
    dash.clear()
    assert dash.numbers == {} and "click on the plot" in dash.message
    dash.set(mode="add")
    dash.click(1.0, -1.0)
    assert dash.numbers["n_beads"] == 1 and dash.numbers["kl_start_exact"] is True  # one Gaussian: closed form
    dash.set(process="vp", T=0.3)
    p = S.make_process("vp", T=0.3)
    m, s2, w2 = float(p.mean_scale(0.3)), float(p.std(0.3)) ** 2, dash.controls["width"].value ** 2
    v = m * m * w2 + s2  # p_T = N(m μ, v I), μ = (1, -1); the prior is N(0, I)
    want = 0.5 * (2 * v + m * m * 2.0 - 2 - 2 * math.log(v))
    assert dash.numbers["kl_start"] == pytest.approx(want, rel=1e-10)


def test_every_control_changes_the_numbers(dash):
    base = dict(dash.numbers)
    changes = dict(width=0.8, process="ve", sigma_T=30.0, schedule="karras", sampler="em", n_steps=5,
                   start="gmm", eps=0.5, seed=7)
    for k, v in changes.items():
        dash.set(**{k: v})
        assert dash.message == "", (k, dash.message)
        assert dash.numbers != base, k
        base = dict(dash.numbers)
    dash.set(process="vp", T=0.5)
    assert dash.numbers != base
    dash.set(data="moons")
    assert dash.numbers["n_beads"] == 50 and len(dash.beads) == 50
    dash.set(width=0.1)  # an edited toy is a drawing
    assert dash.controls["data"].value == "drawn" and dash.numbers["n_beads"] == 50
    dash.set(data="student-t", df=4.0)
    assert dash.numbers["n_beads"] == 0 and dash.message == ""
    dash.set(schedule="dilated")
    assert "interpolant" in dash.message and dash.numbers == {}


def test_time_slider_redraws_the_exact_marginal_only(dash):
    dash.set(process="ve", sigma_T=5.0)
    numbers = dict(dash.numbers)
    dash.set(t_frac=0.25)
    assert dash.numbers == numbers
    fig = dash.figures["marginal"].data[0]
    g, z = np.asarray(fig.x), np.asarray(fig.z)
    target = S.make_target(dash.scenario)
    process = S.make_process("ve", sigma_T=5.0)
    t = 0.25 * process.T
    i, j = 17, 40
    want = math.exp(float(target.log_prob_t(torch.tensor([[g[j], g[i]]], dtype=torch.float64), t, process)))
    assert z[i][j] == pytest.approx(want, rel=1e-12)
    assert f"t = {t:.3g}" in dash.figures["marginal"].layout.title.text


def test_copy_as_code_and_json_round_trip(dash, tmp_path):
    dash.add_bead(0.25, -2.0)
    dash.set(process="subvp", sampler="pc", schedule="cosine", n_steps=6, start="gaussian", eps=0.2, seed=3)
    ns = {}
    exec(compile(dash.to_code(), "<to_code>", "exec"), ns)
    assert {**ns["result"]["numbers"], "kl_samples_exact": False} == dash.numbers
    path = dash.save(tmp_path / "scenario.json")
    other = SandboxDashboard(n_samples=100)
    other.load(path)
    assert other.scenario == dash.scenario and other.numbers == dash.numbers
    path.write_text(path.read_text().replace('"pc"', '"rk4"'), encoding="utf-8")
    with pytest.raises(ValueError, match=r"scenario.json: scenario field 'sampler' must be one of"):
        other.load(path)


def test_fifty_beads_stay_interactive():
    dash = SandboxDashboard()
    rng = np.random.default_rng(0)
    dash.set(beads=[[float(x), float(y), 1.0] for x, y in rng.uniform(-3, 3, (50, 2))])
    assert dash.numbers["n_beads"] == 50
    assert dash.last_update_s < 2.0  # a loose guard against a regression; the timing is in benchmarks/run.py


def test_loading_a_toy_scenario_shows_the_toy_beads(tmp_path):
    path = S.save_scenario(dict(S.DEFAULTS, data="rings", beads=[], n_samples=300), tmp_path / "rings.json")
    dash = SandboxDashboard(n_samples=100)
    dash.load(path)
    assert dash.controls["data"].value == "rings" and len(dash.beads) == S.toy("rings").n_components
    assert dash.numbers["n_beads"] == len(dash.beads) and "toy('rings')" in dash.to_code()
