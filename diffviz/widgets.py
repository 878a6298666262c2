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

Read-out: the numbers show as a small table, one row per quantity (its symbol in the notation of
docs/notation.md, the value ± its standard error where one exists, what it means); `Dashboard.readout` lists
the rows. Every value cell carries `data-key` and `data-value` (the raw number) so that a browser test reads the
numbers without parsing formatted text. `dashboard.numbers` stays the machine-readable dict.

Static fallback: displaying a dashboard gives a bundle with the live widget view *and* a `text/html` snapshot
(title, settings, read-out, the current figures, and a line saying how to get the live dashboard). Static
renderers (nbconvert HTML and slides, a Jupyter Book) drop the widget view when the notebook holds no widget
state (papermill runs, `store_widget_state=False`) and show the snapshot. Its figures need plotly.js: the first
plotly output of a kernel (figure or snapshot) embeds it inline, offline, and later ones reuse it (see
diffviz.plotting: figures get the same offline HTML view).
"""
from __future__ import annotations

import html
import math
import time
from dataclasses import dataclass
from typing import Any

from .checks import check_choice


LIVE_NOTE = "Live dashboard: run this notebook in JupyterLab (make lab) or on Binder to move the controls."

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



# --- read-out --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One row of a dashboard's read-out.

    key: the key in `numbers`; symbol: HTML (the notation page's symbol); meaning: a short "what it means";
    se: the key of its standard error (in `numbers`, or in the result's "se" dict); method: the key of a boolean
    number shown as words (words[True] / words[False]), e.g. kl_exact -> "exact" / "Monte Carlo"; integer:
    show as an integer.
    """

    key: str
    symbol: str
    meaning: str = ""
    se: str | None = None
    method: str | None = None
    words: tuple = ("exact", "Monte Carlo")
    integer: bool = False


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _power(e: int) -> str:
    return f"10{str(e).translate(_SUPERSCRIPT)}"


def format_value(v, se=None, *, integer: bool = False) -> tuple[str, str | None, str]:
    """(value text, SE text or None, suffix) for a read-out cell.

    Plain decimals for 1e-3 <= |v| < 1e5, else a mantissa times a power of ten (4.28 × 10⁻⁶), never SI
    prefixes. With an SE: the SE to 2 significant digits and the value to the same decimal place, sharing one
    power of ten when needed: ("1.23", "0.05", " × 10⁻⁵") reads (1.23 ± 0.05) × 10⁻⁵.
    """
    if isinstance(v, bool):
        return ("yes" if v else "no"), None, ""
    if integer or isinstance(v, int):
        return f"{int(v)}", None, ""
    v = float(v)
    if not math.isfinite(v):
        return ("∞" if v > 0 else "−∞") if math.isinf(v) else "nan", None, ""
    has_se = se is not None and math.isfinite(float(se)) and float(se) > 0
    big = max(abs(v), float(se) if has_se else 0.0)
    plain = big == 0 or 1e-3 <= big < 1e5
    exp = 0 if plain else math.floor(math.log10(big))
    scale = 10.0 ** exp
    suffix = "" if plain else f" × {_power(exp)}"
    if not has_se:
        m = v / scale
        if m == 0:
            return "0", None, suffix
        decimals = max(0, (3 if plain else 2) - math.floor(math.log10(abs(m))))
        text = f"{m:.{decimals}f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text.replace("-", "−"), None, suffix
    s = float(se) / scale
    decimals = max(0, 1 - math.floor(math.log10(s)))
    return f"{v / scale:.{decimals}f}".replace("-", "−"), f"{s:.{decimals}f}", suffix


def _attr(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    try:
        return repr(float(v))
    except (TypeError, ValueError):
        return html.escape(str(v), quote=True)


def readout_html(numbers: dict, rows=(), *, se: dict | None = None, message: str = "") -> str:
    """The read-out as HTML: an optional "⚠ ..." line, then a table symbol | value ± SE | what it means.

    `rows`: Row specs (in order); numbers without a row get one of their own (the key as symbol). Every value
    (and SE) is a <span data-key=KEY data-value=RAW>; words for booleans carry data-value "true"/"false".
    """
    se = dict(se or {})
    out = []
    if message:
        text = message if message.lstrip().startswith("⚠") else f"⚠ {message}"
        out.append(f'<div class="diffviz-message" style="color:#b45309;font-weight:bold">{html.escape(text)}</div>')
    if not numbers:
        return "".join(out)
    spec = {r.key: r for r in rows}
    used = {k for r in rows for k in (r.se, r.method) if k}
    keys = [r.key for r in rows if r.key in numbers] + [k for k in numbers if k not in spec and k not in used]
    cell = 'style="padding:1px 8px;text-align:{};border-bottom:1px solid #e5e5e5"'
    body = []
    for k in keys:
        r = spec.get(k) or Row(k, html.escape(k))
        v = numbers[k]
        if r.se and r.se in numbers:
            e_val, e_key = numbers[r.se], r.se
        elif r.se and r.se in se:
            e_val, e_key = se[r.se], None
        else:
            e_val, e_key = None, None
        text, e_text, suffix = format_value(v, e_val, integer=r.integer)
        val = f'<span data-key="{html.escape(k)}" data-value="{_attr(v)}">{text}</span>'
        if e_text is not None:
            ek = f'data-key="{html.escape(e_key)}"' if e_key else f'data-se-of="{html.escape(k)}"'
            val = f'{val} ± <span {ek} data-value="{_attr(e_val)}">{e_text}</span>'
            if suffix:
                val = f"({val}){suffix}"
        else:
            val += suffix
        if r.method and r.method in numbers:
            flag = bool(numbers[r.method])
            word = r.words[0] if flag else r.words[1]
            val += (f' <span style="color:#666" data-key="{html.escape(r.method)}" data-value="{_attr(flag)}">'
                    f'({word})</span>')
        body.append(f"<tr><td {cell.format('left')}>{r.symbol}</td><td {cell.format('right')}>{val}</td>"
                    f"<td {cell.format('left')}><span style=\"color:#555\">{html.escape(r.meaning)}</span></td></tr>")
    head = ('<tr style="color:#666;font-size:11px"><th style="text-align:left;padding:0 8px">quantity</th>'
            '<th style="text-align:right;padding:0 8px">value</th>'
            '<th style="text-align:left;padding:0 8px">what it means</th></tr>')
    out.append('<table class="diffviz-readout" style="border-collapse:collapse;font-size:13px;margin:4px 0">'
               f"{head}{''.join(body)}</table>")
    return "".join(out)


def _control_text(w) -> str:
    """'description = value' of a control, the value as its label for dropdowns."""
    value = w.value
    label = getattr(w, "label", None)
    shown = label if isinstance(label, str) and label else (f"{value:.4g}" if isinstance(value, float) else str(value))
    return f"{w.description} = {shown}"


class Dashboard:
    """Base class. Subclasses define `controls()` -> dict of widgets, `make_figures()` -> dict of figures,
    `compute(values) -> dict` (numbers under "numbers", anything else for render) and `render(result)`."""

    title = "diffviz dashboard"
    readout: tuple = ()  # Row specs of the read-out table (numbers without a row are shown under their key)

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
        self._view = None
        self._se: dict = {}
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
            self._se = {}
            self.last_values = values
            self._show_status()
            return
        self.message = result.get("message", "")
        self.numbers = dict(result.get("numbers", {}))
        self._se = dict(result.get("se", {}))
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
        """The read-out as one plain line ("⚠ ..." first when there is a message): for logs and print()."""
        nums = "  ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in self.numbers.items())
        return (self.message + "  " if self.message else "") + nums

    def readout_html(self) -> str:
        """The read-out table (with the "⚠ ..." line when there is a message)."""
        return readout_html(self.numbers, self.readout, se=self._se, message=self.message)

    def _show_status(self):
        if self._status is not None:
            self._status.value = self.readout_html()

    def widget(self):
        """The ipywidgets layout: controls on top, the read-out, then the figures (built once, then reused)."""
        if self._view is not None:
            return self._view
        w = _ipw()
        self._status = w.HTML()
        self._show_status()
        ctrl = list(self.controls.values())
        rows = [w.HBox(ctrl[i:i + 3]) for i in range(0, len(ctrl), 3)]
        figs = [f for f in self.figures.values()]
        self._view = w.VBox([w.HTML(f"<b>{html.escape(self.title)}</b>"), *rows, self._status,
                             w.HBox(figs, layout=w.Layout(flex_flow="row wrap"))])
        return self._view

    def static_html(self, include_plotlyjs=None) -> str:
        """A static snapshot: title, the live-dashboard note, the settings, the read-out and the current figures.

        include_plotlyjs: True (inline plotly.js), False, "cdn", or None: inline for the first plotly output of
        this kernel, then not again (`plotting.take_plotlyjs`, policy $DIFFVIZ_STATIC_PLOTLYJS).
        """
        from . import plotting

        if include_plotlyjs is None:
            include_plotlyjs = plotting.take_plotlyjs()
        settings = " · ".join(html.escape(_control_text(c)) for c in self.controls.values()
                              if getattr(getattr(c, "layout", None), "display", None) != "none")  # hidden: state
        figs = [plotting.figure_html(fig, include_plotlyjs=include_plotlyjs if i == 0 else False)
                for i, fig in enumerate(self.figures.values())]
        return ('<div class="diffviz-static">'
                f"<p style=\"margin:2px 0\"><b>{html.escape(self.title)}</b></p>"
                f'<p class="diffviz-live-note" style="margin:2px 0;font-style:italic">{html.escape(LIVE_NOTE)}</p>'
                f'<p class="diffviz-settings" style="margin:2px 0;font-size:12px;color:#555">{settings}</p>'
                f"{self.readout_html()}"
                f'<div style="display:flex;flex-wrap:wrap;gap:4px">{"".join(figs)}</div></div>')

    def _repr_mimebundle_(self, include=None, exclude=None):
        """The live widget view and, for static renderers, a text/html snapshot of the current state."""
        bundle = dict(self.widget()._repr_mimebundle_())
        bundle["text/html"] = self.static_html()
        bundle["text/plain"] = f"<{type(self).__name__}: {self.status_text()}>"
        return bundle
