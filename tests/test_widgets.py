"""Dashboard base: driving from code, bad values, what a batched figure update sends to the browser, the read-out
table, the static snapshot of the display bundle, and the axes of the figure helpers."""
import re

import pytest

pytest.importorskip("ipywidgets")
go = pytest.importorskip("plotly.graph_objects")

from diffviz.widgets import Dashboard, dropdown, fill_batch_edits, slider  # noqa: E402


class Toy(Dashboard):
    """Two traces; a change of `a` edits trace 0's data only, a change of `label` trace 1's name only."""

    def make_controls(self):
        return {"a": slider("a", 1.0, 0.0, 2.0), "label": dropdown("label", ["one", "two"])}

    def make_figures(self):
        fig = go.Figure()
        fig.add_scatter(x=[0, 1], y=[0, 0], name="line", line=dict(color="red"))
        fig.add_scatter(x=[0], y=[0], name="one", mode="markers")
        return {"fig": fig}

    def compute(self, values):
        if values["a"] > 1.9:
            raise ValueError("a must be at most 1.9")
        return {"numbers": {"a2": values["a"] ** 2}, "a": values["a"], "label": values["label"]}

    def render(self, res):
        fig = self.figures["fig"]
        fig.data[0].y = [0, res["a"]]
        fig.data[1].name = res["label"]


def _sent(dash):
    """Record the restyle messages the dashboard's figure sends."""
    fig = dash.figures["fig"]
    sent = []
    original = fig.plotly_update

    def spy(restyle_data=None, relayout_data=None, trace_indexes=None, **kw):
        sent.append((restyle_data, trace_indexes))
        return original(restyle_data=restyle_data, relayout_data=relayout_data, trace_indexes=trace_indexes, **kw)

    fig.plotly_update = spy
    return sent


def test_batched_update_sends_every_property_for_every_edited_trace():
    dash = Toy()
    if not hasattr(dash.figures["fig"], "batch_update"):
        pytest.skip("no FigureWidget here")
    sent = _sent(dash)
    dash.set(a=0.5, label="two")
    assert len(sent) == 1
    restyle, traces = sent[0]
    assert traces == [0, 1]
    undefined = [(p, i) for p, vals in restyle.items() for i, v in zip(traces, vals)
                 if type(v) is object]  # plotly's Undefined sentinel: applied as null by plotly.js
    assert not undefined, undefined
    assert restyle["name"] == ["line", "two"] and list(restyle["y"][0]) == [0, 0.5]
    fig = dash.figures["fig"]
    assert fig.data[0].name == "line" and fig.data[0].line.color == "red" and fig.data[1].name == "two"


def test_fill_batch_edits_without_a_batch_is_a_no_op():
    fig = go.Figure()
    fill_batch_edits(fig)  # a plain Figure has no pending batch


def test_driving_from_code_and_bad_values():
    dash = Toy()
    assert dash.numbers == {"a2": 1.0}
    assert dash.set(a=1.5) == {"a2": 2.25}
    n = dash.n_updates
    dash.set(a=1.5)  # unchanged values: no recomputation
    assert dash.n_updates == n
    with pytest.raises(ValueError, match=r"a must lie in \[0, 2\]"):
        dash.set(a=3.0)
    with pytest.raises(ValueError, match="unknown dashboard control"):
        dash.set(b=1)
    with pytest.raises(ValueError, match="label"):
        dash.set(label="three")
    dash.set(a=1.95)  # compute raises: shown as a message, nothing plotted
    assert dash.message.startswith("⚠ ValueError") and dash.numbers == {}


# --- static snapshot ------------------------------------------------------------------------------------------
def _newplot_args(html: str) -> list:
    """(div id, data, layout) of every Plotly.newPlot call in an HTML fragment."""
    import json

    dec, out, i = json.JSONDecoder(), [], 0
    while (i := html.find("Plotly.newPlot(", i)) >= 0:
        j = html.index('"', i)
        div, j = dec.raw_decode(html, j)
        data, j = dec.raw_decode(html, html.index("[", j))
        layout, j = dec.raw_decode(html, html.index("{", j))
        out.append((div, data, layout))
        i = j
    return out


def test_display_bundle_has_the_widget_view_and_a_static_snapshot(monkeypatch):
    import json

    import plotly.io as pio

    from diffviz import plotting
    from diffviz.widgets import LIVE_NOTE

    dash = Toy()
    dash.set(a=0.5, label="two")
    monkeypatch.setattr(plotting, "_plotlyjs_sent", False)
    bundle = dash._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == dash.widget().model_id
    snap = bundle["text/html"]
    assert LIVE_NOTE in snap and 'class="diffviz-readout"' in snap and 'data-key="a2"' in snap
    assert "a = 0.5" in snap and "label = two" in snap  # the settings, dropdowns by their label
    # plotly.js inline (offline) in the first plotly output of the kernel only
    assert "plotly.js v" in snap and \
        not re.search(r"<script[^>]*\ssrc=", snap)
    again = dash.static_html()
    assert "plotly.js v" not in again and "Plotly.newPlot" in again
    # the figures' current data, as plotly serializes them
    calls = _newplot_args(again)
    assert len(calls) == len(dash.figures)
    expected = json.loads(pio.to_json(dash.figures["fig"], validate=False))

    def no_uid(traces):
        return [{k: v for k, v in t.items() if k != "uid"} for t in traces]

    assert no_uid(calls[0][1]) == no_uid(expected["data"]) and calls[0][1][1]["name"] == "two"


def test_figures_get_an_offline_html_view_for_static_renderers(monkeypatch):
    import plotly.io as pio

    from diffviz import plotting

    monkeypatch.setattr(plotting, "_plotlyjs_sent", False)
    monkeypatch.setattr(pio.renderers, "default", "plotly_mimetype")
    plotting.use_offline_html(True)
    fig = plotting.base_figure("t", "x", "y")
    fig.add_trace(plotting.line([1, 2], [3, 4], name="l"))
    first, second = fig._repr_mimebundle_(), fig._repr_mimebundle_()
    assert "application/vnd.plotly.v1+json" in first and "plotly.js v" in first["text/html"]
    assert "plotly.js v" not in second["text/html"] and "Plotly.newPlot" in second["text/html"]
    monkeypatch.setenv("DIFFVIZ_STATIC_PLOTLYJS", "always")
    assert plotting.take_plotlyjs() is True and plotting.take_plotlyjs() is True


# --- read-out ---------------------------------------------------------------------------------------------------
class ToyReadout(Toy):
    """Toy with a read-out spec: an estimate with its SE, a boolean shown as words, an SE outside `numbers`."""

    readout = ()

    def compute(self, values):
        out = super().compute(values)
        out["numbers"] = {"kl": 4.277e-3, "kl_se": 3.1e-4, "kl_exact": False, "tiny": 1.234e-7, "a2": values["a"] ** 2,
                          "n": 12}
        out["se"] = {"tiny_se": 5e-9}
        return out


def _cells(html: str) -> dict:
    return dict(re.findall(r'data-key="([^"]+)" data-value="([^"]+)"', html))


def test_readout_table_has_symbols_values_with_se_words_and_raw_data_attributes():
    from diffviz.widgets import Row

    ToyReadout.readout = (Row("kl", "KL(p<sub>T</sub> ‖ q)", "how far the start is", se="kl_se", method="kl_exact"),
                          Row("tiny", "τ", "a tiny number", se="tiny_se"), Row("n", "N", "steps", integer=True))
    dash = ToyReadout()
    html = dash.readout_html()
    assert html.startswith('<table class="diffviz-readout"') and "⚠" not in html
    rows = re.findall(r"<tr>(.*?)</tr>", html)
    text = [re.sub(r"<[^>]+>", "", r) for r in rows]
    assert text[0].startswith("KL(pT ‖ q)0.00428 ± 0.00031 (Monte Carlo)how far the start is"), text[0]
    assert text[1].startswith("τ(1.234 ± 0.050) × 10⁻⁷a tiny number"), text[1]
    assert text[2].startswith("N12steps")
    assert text[3].startswith("a21"), "a number without a row is shown under its key"
    assert len(rows) == 4, "SE and method keys are shown inside their quantity's row, not as rows of their own"
    cells = _cells(html)
    assert float(cells["kl"]) == 4.277e-3 and float(cells["kl_se"]) == 3.1e-4 and cells["kl_exact"] == "false"
    assert float(cells["tiny"]) == 1.234e-7 and "tiny_se" not in cells  # an SE from result["se"]: data-se-of
    assert 'data-se-of="tiny" data-value="5e-09"' in html
    # every number of `dashboard.numbers` is in the table with its raw value
    assert set(cells) == set(dash.numbers)
    ToyReadout.readout = ()


def test_readout_shows_the_warning_line_when_compute_fails():
    dash = Toy()
    dash.set(a=1.95)
    html = dash.readout_html()
    assert re.search(r'<div class="diffviz-message"[^>]*>⚠ ValueError: a must be at most 1.9</div>', html)
    assert "diffviz-readout" not in html  # no numbers, no table
    assert "⚠ ValueError" in dash.static_html(include_plotlyjs=False)
    dash.set(a=0.5)
    assert "⚠" not in dash.readout_html() and _cells(dash.readout_html()) == {"a2": "0.25"}


@pytest.mark.parametrize("value, se, shown", [
    (0.004277, 0.00031, ("0.00428", "0.00031", "")),
    (0.8, 0.0231, ("0.800", "0.023", "")),
    (-0.01234, None, ("−0.01234", None, "")),
    (12345.6, None, ("12346", None, "")),
    (3.2e-7, None, ("3.2", None, " × 10⁻⁷")),
    (1e6, 3e4, ("1.000", "0.030", " × 10⁶")),
    (float("nan"), None, ("nan", None, "")),
    (7, None, ("7", None, "")),
])
def test_format_value(value, se, shown):
    from diffviz.widgets import format_value

    assert format_value(value, se) == shown


# --- axes and labels ---------------------------------------------------------------------------------------------
def _log_axes(fig):
    layout = fig.to_plotly_json()["layout"]
    return {k: v for k, v in layout.items() if re.fullmatch(r"[xy]axis\d*", k) and v.get("type") == "log"}


def test_log_axes_use_exponent_tick_labels_never_si_prefixes():
    import plotly.io as pio

    from diffviz import plotting

    fig = plotting.base_figure("t", "x", "y", log_x=True, log_y=True)
    axes = _log_axes(fig)
    assert set(axes) == {"xaxis", "yaxis"} and all(a["exponentformat"] == "power" for a in axes.values())
    # every other figure too: the default template writes powers of ten (subplots included)
    assert "diffviz_axes" in pio.templates.default
    assert pio.templates["diffviz_axes"].layout.xaxis.exponentformat == "power"
    from plotly.subplots import make_subplots

    sub = plotting.log_axes(make_subplots(rows=1, cols=2), y=True, row=1, col=2)
    assert set(_log_axes(sub)) == {"yaxis2"} and sub.layout.yaxis2.exponentformat == "power"


def test_schedules_dashboard_readout_axes_and_snapshot():
    from diffviz.dashboards.schedules import SchedulesDashboard

    dash = SchedulesDashboard(n_samples=300, n_steps=8)
    html = dash.readout_html()
    text = re.sub(r"<[^>]+>", "", html)
    assert "KL(N(0, λ) ‖ p̂)" in text and "N² · KL" in text and " ± " in text
    cells = _cells(html)
    assert set(cells) == set(dash.numbers)
    assert all(float(cells[k]) == pytest.approx(v, rel=1e-15) for k, v in dash.numbers.items())
    for name, fig in dash.figures.items():
        for key, axis in _log_axes(fig).items():
            assert axis.get("exponentformat") == "power", (name, key)
    assert len(_log_axes(dash.figures["kl"])) == 2
    snap = dash.static_html(include_plotlyjs=False)
    assert len(_newplot_args(snap)) == 3 and 'data-key="kl_exact"' in snap


def test_sampler_and_start_names_are_spelled_out():
    from diffviz.dashboards import diffusion_time as D

    fig = D.cost_figure({"step_size": 0.01, "T": [0.5, 1.0], "nfe": {"em": [50, 100], "heun": [99, 199]}})
    assert [t.name for t in fig.data] == ["Euler–Maruyama", "Heun"]
    assert D.START_LABELS["gmm"] == "GMM" and "p_∞" in D.START_LABELS["prior"]
    assert all("(EM)" not in v for v in D.START_LABELS.values())
