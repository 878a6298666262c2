"""Dashboard base: driving from code, bad values, and what a batched figure update sends to the browser."""
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
