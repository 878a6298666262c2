"""The notebooks' dashboards as a reader sees them: read-out rows (symbol, value ± SE, meaning), the raw numbers in
data attributes, words for booleans, the ⚠ line on a caught error, exponent tick labels on log axes, and the static
snapshot in the display bundle. Small sizes: a few seconds each."""
import re

import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("plotly")


def _rows(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", r) for r in re.findall(r"<tr>(.*?)</tr>", html)]


def _cells(html: str) -> dict:
    return dict(re.findall(r'data-key="([^"]+)" data-value="([^"]+)"', html))


def _check_common(dash):
    html = dash.readout_html()
    cells = _cells(html)
    assert set(cells) == set(dash.numbers), "every number is shown, with its raw value"
    for k, v in dash.numbers.items():
        if isinstance(v, bool):
            assert cells[k] == ("true" if v else "false")
        else:
            assert float(cells[k]) == pytest.approx(float(v), rel=1e-15, nan_ok=True)
    for fig in dash.figures.values():
        layout = fig.to_plotly_json()["layout"]
        for key, axis in layout.items():
            if re.fullmatch(r"[xy]axis\d*", key) and axis.get("type") == "log":
                assert axis.get("exponentformat") == "power", key
    bundle = dash._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and "Live dashboard" in bundle["text/html"]
    assert bundle["text/html"].count("Plotly.newPlot") == len(dash.figures)
    return _rows(html)


def test_diffusion_time_readout():
    from diffviz.dashboards.diffusion_time import DiffusionTimeDashboard

    dash = DiffusionTimeDashboard(targets=("moons",), T_grid=(0.3,), inits=("prior", "gmm"), n=200, n_ref=300,
                                  n_fit=500, n_kl=500, flow_steps=20, init="gmm", sampler="em")
    rows = _check_common(dash)
    kl = next(r for r in rows if r.startswith("KL(pT ‖ q)"))
    assert " ± " in kl and "(Monte Carlo)" in kl, kl
    assert any(r.startswith("G(sθ, T)") for r in rows) and any(r.startswith("KL + G") and " ± " in r for r in rows)
    title = dash.figures["samples"].layout.title.text
    assert "<br>30 Euler–Maruyama steps from GMM" in title and "em steps" not in title and "(EM)" not in title
    assert dash.controls["init"].description == "start q"


def test_phase_transition_readout():
    from diffviz.dashboards.phase_transitions import PhaseTransitionDashboard

    dash = PhaseTransitionDashboard(n=200, log10_d=2.0, n_steps=8)
    rows = _check_common(dash)
    assert any(r.startswith("p̂") and " ± " in r for r in rows)
    assert any(r.startswith("σ̂w²") and " ± " in r for r in rows)  # its SE comes from the result, not `numbers`
    assert next(r for r in rows if r.startswith("d")).startswith("d100dimension")


def test_initialization_readout_and_warning_line():
    from diffviz.dashboards.initialization import InitializationDashboard

    dash = InitializationDashboard(n=200, d=5, dfs=(3.0,), sigma_Ts=(2.0, 80.0), n_fit=200, max_steps=32,
                                   sigma_T=2.0, n_steps=8)
    rows = _check_common(dash)
    assert any(r.startswith("KLbin(data ‖ p̂)") for r in rows) and any(r.startswith("ν̂ (mean)") for r in rows)
    dash.set(sigma_T=80.0, n_steps=2)  # too few steps: a caught ValueError
    html = dash.readout_html()
    assert dash.numbers == {} and re.search(r'class="diffviz-message"[^>]*>⚠ \w+Error: .*not increasing', html)
    assert "⚠ NotMonotoneError" in dash.static_html(include_plotlyjs=False)
