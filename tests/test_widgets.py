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
