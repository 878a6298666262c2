"""Dashboards: ipywidgets controls wired to a pure `compute(values) -> result` and plotly figures.

A dashboard holds no math: `compute` calls the package (exact theory, samplers with exact or cached
trained scores) and returns named numbers and arrays; `render` draws them into plotly FigureWidgets
in place. The same object can be driven from code, so tests cover it without a browser:

    dash = SomeDashboard(...)
    dash.set(n_steps=50, schedule="tangent")   # as if the user moved the controls
    dash.numbers["kl_exact"]                    # what the dashboard shows
    dash.figures["samples"].data[0].x           # what is plotted

Rapid slider moves do not pile up stale work: sliders report on release (continuous_update=False), and
each update reads the *current* control values, skipping the work when they equal the last computed ones,
so a queue of events collapses into one computation of the latest state. A divergent simulation or a bad
value is shown as a message in the dashboard, never plotted silently.
"""
from __future__ import annotations

import time
from typing import Any

from .checks import check_choice


def _ipw():
    import ipywidgets

    return ipywidgets


def _figure_widget(fig=None):
    """A plotly FigureWidget when anywidget is usable, else a plain Figure (headless fallback)."""
    import plotly.graph_objects as go

    try:
        return go.FigureWidget(fig)
    except Exception:  # pragma: no cover - depends on the frontend packages present
        return go.Figure(fig)


def fill_batch_edits(fig) -> None:
    """Complete a FigureWidget's pending batch so that every edited trace sends every edited property.

    Plotly sends one restyle per batch with one value per (property, trace); a trace that did not set that
    property gets `undefined`, which plotly.js applies as null: the trace loses its name, colour, data... in the
    browser (not in Python). Filling the gaps with the trace's current value makes the batch say what Python holds.
    """
    edits = getattr(fig, "_batch_trace_edits", None)
    if not edits:
        return
    props = {p for e in edits.values() for p in e}
    for i, e in edits.items():
        for p in props - set(e):
            e[p] = fig.data[i][p]


def slider(description: str, value, low, high, step=None, *, log=False, integer=False, readout_format=None):
    """A slider that reports on release (no stale work piling up while dragging)."""
    w = _ipw()
    common = dict(description=description, continuous_update=False, style={"description_width": "initial"},
                  layout=w.Layout(width="340px"))
    if log:
        return w.FloatLogSlider(value=value, min=low, max=high, step=step or 0.05, base=10,
                                readout_format=readout_format or ".3g", **common)
    if integer:
        return w.IntSlider(value=value, min=low, max=high, step=step or 1, **common)
    return w.FloatSlider(value=value, min=low, max=high, step=step or (high - low) / 100,
                         readout_format=readout_format or ".3g", **common)


def dropdown(description: str, options, value=None):
    """A dropdown over `options` (a list, or a dict label -> value)."""
    w = _ipw()
    return w.Dropdown(options=options, value=value if value is not None else (list(options.values())[0]
                      if isinstance(options, dict) else list(options)[0]), description=description,
                      style={"description_width": "initial"}, layout=w.Layout(width="340px"))


class Dashboard:
    """Base class. Subclasses define `controls()` -> dict of widgets, `make_figures()` -> dict of figures,
    `compute(values) -> dict` (numbers under "numbers", anything else for render) and `render(result)`."""

    title = "diffviz dashboard"

    def __init__(self, **initial):
        self.controls: dict[str, Any] = self.make_controls()
        unknown = set(initial) - set(self.controls)
        if unknown:
            raise ValueError(f"unknown dashboard control(s) {sorted(unknown)}; available: {sorted(self.controls)}")
        for name, value in initial.items():
            self._set_control(name, value)
        self.figures = {k: _figure_widget(f) for k, f in self.make_figures().items()}
        self.numbers: dict[str, float] = {}
        self.message = ""
        self.last_values: dict | None = None
        self.n_updates = 0
        self.last_update_s = float("nan")
        self._status = None
        for w in self.controls.values():
            w.observe(self._on_change, names="value")
        self.update()

    # --- to override -----------------------------------------------------------------------------
    def make_controls(self) -> dict:
        raise NotImplementedError

    def make_figures(self) -> dict:
        raise NotImplementedError

    def compute(self, values: dict) -> dict:
        raise NotImplementedError

    def render(self, result: dict) -> None:
        raise NotImplementedError

    # --- driving it --------------------------------------------------------------------------------
    @property
    def values(self) -> dict:
        """Current control values."""
        return {k: w.value for k, w in self.controls.items()}

    def _set_control(self, name, value):
        w = self.controls[name]
        if hasattr(w, "options"):
            opts = list(w.options.values()) if isinstance(w.options, dict) else [
                o[1] if isinstance(o, tuple) else o for o in w.options]
            check_choice(name, value, opts)
        elif hasattr(w, "min"):
            lo, hi = (w.base ** w.min, w.base ** w.max) if hasattr(w, "base") else (w.min, w.max)
            if not lo <= value <= hi:
                raise ValueError(f"{name} must lie in [{lo:g}, {hi:g}], got {value!r}")
        w.value = value

    def set(self, **values) -> dict:
        """Set controls from code (as a user would), update once, and return the shown numbers."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise ValueError(f"unknown dashboard control(s) {sorted(unknown)}; available: {sorted(self.controls)}")
        with self._hold():
            for name, value in values.items():
                self._set_control(name, value)
        self.update()
        return dict(self.numbers)

    def _hold(self):
        dash = self

        class _Hold:
            def __enter__(self):
                dash._held = True

            def __exit__(self, *exc):
                dash._held = False

        return _Hold()

    def _on_change(self, change):
        if getattr(self, "_held", False):
            return
        self.update()

    def update(self) -> None:
        """Recompute for the current values unless they equal the last computed ones."""
        values = self.values
        if values == self.last_values:
            return
        start = time.perf_counter()
        try:
            result = self.compute(values)
        except (ValueError, FloatingPointError) as err:
            self.message = f"⚠ {type(err).__name__}: {err}"
            self.numbers = {}
            self.last_values = values
            self._show_status()
            return
        self.message = result.get("message", "")
        self.numbers = dict(result.get("numbers", {}))
        batch = [f.batch_update() for f in self.figures.values() if hasattr(f, "batch_update")]
        for ctx in batch:
            ctx.__enter__()
        try:
            self.render(result)
        finally:
            for fig in self.figures.values():
                fill_batch_edits(fig)
            for ctx in batch:
                ctx.__exit__(None, None, None)
        self.last_values = values
        self.n_updates += 1
        self.last_update_s = time.perf_counter() - start
        self._show_status()

    # --- display -----------------------------------------------------------------------------------
    def status_text(self) -> str:
        nums = "  ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in self.numbers.items())
        return (self.message + "  " if self.message else "") + nums

    def _show_status(self):
        if self._status is not None:
            self._status.value = f"<code>{self.status_text()}</code>"

    def widget(self):
        """The ipywidgets layout: controls on top, numbers, then the figures."""
        w = _ipw()
        self._status = w.HTML()
        self._show_status()
        ctrl = list(self.controls.values())
        rows = [w.HBox(ctrl[i:i + 3]) for i in range(0, len(ctrl), 3)]
        figs = [f for f in self.figures.values()]
        return w.VBox([w.HTML(f"<b>{self.title}</b>"), *rows, self._status, w.HBox(figs)])

    def _ipython_display_(self):  # pragma: no cover - exercised in Jupyter
        from IPython.display import display

        display(self.widget())
