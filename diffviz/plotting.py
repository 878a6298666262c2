"""Plotly figure builders shared by the notebooks and dashboards (plotly is imported only here).

Static HTML. In a Jupyter kernel plotly's default renderer is "plotly_mimetype": JupyterLab draws it, but
nbconvert (HTML, reveal.js slides) and Jupyter Book cannot, so an executed notebook converted to HTML shows no
figure. Importing this module in a kernel therefore adds an offline HTML view to every figure output
(renderer "plotly_mimetype+diffviz_html", see `use_offline_html`): JupyterLab still draws the plotly mimetype,
static renderers draw the HTML. plotly.js is embedded inline (no CDN) once per kernel, in the first plotly
output, figure or dashboard snapshot (`take_plotlyjs`); every later output relies on it. Set the environment
variable PLOTLY_RENDERER (plotly's own) or call `use_offline_html(False)` to keep plotly's default.
"""
from __future__ import annotations

import os

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.io._base_renderers import MimetypeRenderer

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

# Sampler code names as the notation page spells them ("EM" is never written alone).
SAMPLER_NAMES = {"em": "Euler–Maruyama", "ode-euler": "PF-ODE Euler", "heun": "Heun", "ddim": "DDIM",
                 "pc": "predictor–corrector"}

# --- axes: exponent tick labels, never SI prefixes -----------------------------------------------------------
# plotly's default exponentformat "B" labels small ticks with SI prefixes ("100μ", "1n"), which read as units.
# The template "diffviz_axes" writes powers of ten (10⁻⁴) on every axis (subplots included); it is added to
# plotly's default template when this module is imported, and TEMPLATE is the look of the diffviz figures.
AXIS_FORMAT = dict(exponentformat="power", showexponent="all")
pio.templates["diffviz_axes"] = go.layout.Template(layout=dict(xaxis=AXIS_FORMAT, yaxis=AXIS_FORMAT))
TEMPLATE = "plotly_white+diffviz_axes"
if "diffviz_axes" not in str(pio.templates.default):
    pio.templates.default = f"{pio.templates.default}+diffviz_axes" if pio.templates.default else "diffviz_axes"


def log_axes(fig, *, x: bool = False, y: bool = False, **selector):
    """Make the x and/or y axes logarithmic with exponent tick labels (`selector`: row=, col= of a subplot)."""
    if x:
        fig.update_xaxes(type="log", **AXIS_FORMAT, **selector)
    if y:
        fig.update_yaxes(type="log", **AXIS_FORMAT, **selector)
    return fig

# --- offline HTML for static renderers -----------------------------------------------------------------------
_plotlyjs_sent = False


def take_plotlyjs(policy: str | None = None):
    """What an HTML output should pass as `include_plotlyjs`: True (inline) for the first one of this kernel,
    False afterwards. `policy` (default: $DIFFVIZ_STATIC_PLOTLYJS or "once"): "once", "always" (inline every
    time), "cdn" (a <script src> to plotly's CDN: small, needs internet) or "none"."""
    global _plotlyjs_sent
    policy = (policy or os.environ.get("DIFFVIZ_STATIC_PLOTLYJS", "once")).lower()
    if policy in ("cdn", "none", "always"):
        return {"cdn": "cdn", "none": False, "always": True}[policy]
    if _plotlyjs_sent:
        return False
    _plotlyjs_sent = True
    return True


def figure_html(fig, *, include_plotlyjs=False) -> str:
    """A figure as an HTML fragment (a div and its Plotly.newPlot script), sized by its layout."""
    layout = fig.get("layout", {}) if isinstance(fig, dict) else fig.to_plotly_json().get("layout", {})
    width, height = layout.get("width"), layout.get("height")
    return pio.to_html(fig, full_html=False, include_plotlyjs=include_plotlyjs, include_mathjax=False,
                       validate=False, config={"displaylogo": False},
                       default_width=f"{width}px" if width else "100%", default_height=f"{height or 450}px")


class OfflineHtmlRenderer(MimetypeRenderer):
    """A text/html view of a figure for static renderers, plotly.js inline once per kernel (`take_plotlyjs`)."""

    def to_mimebundle(self, fig_dict):
        return {"text/html": figure_html(fig_dict, include_plotlyjs=take_plotlyjs())}


pio.renderers["diffviz_html"] = OfflineHtmlRenderer()


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__module__.startswith("ipykernel.")


def use_offline_html(enable: bool = True) -> None:
    """Give every figure output an offline HTML view next to plotly's mimetype (or go back to plotly_mimetype)."""
    pio.renderers.default = "plotly_mimetype+diffviz_html" if enable else "plotly_mimetype"


if _in_kernel() and not os.environ.get("PLOTLY_RENDERER") and pio.renderers.default == "plotly_mimetype":
    use_offline_html(True)


def _np(x):
    try:
        import torch

        if isinstance(x, torch.Tensor):
            return x.detach().to("cpu", dtype=torch.float64).numpy()
    except ImportError:  # pragma: no cover
        pass
    return np.asarray(x, dtype=float)


def base_figure(title: str = "", xaxis: str = "", yaxis: str = "", *, height: int = 360, width: int = 460,
                log_x: bool = False, log_y: bool = False) -> go.Figure:
    """An empty figure with the diffviz look; log axes carry exponent tick labels (10⁻⁴, not "100μ")."""
    fig = go.Figure()
    fig.update_layout(title=title, height=height, width=width, template=TEMPLATE,
                      margin=dict(l=55, r=15, t=45, b=45), legend=dict(orientation="h", y=-0.22))
    fig.update_xaxes(title=xaxis, **AXIS_FORMAT)
    fig.update_yaxes(title=yaxis, **AXIS_FORMAT)
    return log_axes(fig, x=log_x, y=log_y)


def scatter2d(x, *, name: str = "samples", color: str | None = None, size: float = 3, opacity: float = 0.5):
    """A 2-D scatter trace of samples x of shape (n, 2)."""
    x = _np(x)
    return go.Scattergl(x=x[:, 0], y=x[:, 1], mode="markers", name=name,
                        marker=dict(size=size, opacity=opacity, color=color))


def line(x, y, *, name: str = "", color: str | None = None, dash: str | None = None, mode: str = "lines"):
    """A line trace."""
    return go.Scatter(x=_np(x), y=_np(y), mode=mode, name=name, line=dict(color=color, dash=dash))


def marker(x, y, *, name: str = "current", color: str = "black", symbol: str = "x", size: int = 12):
    """A single highlighted point: marks the current slider value on a theory curve."""
    return go.Scatter(x=[float(x)], y=[float(y)], mode="markers", name=name,
                      marker=dict(color=color, symbol=symbol, size=size, line=dict(width=2)))


def histogram(x, *, name: str = "", nbins: int = 60, color: str | None = None, opacity: float = 0.55):
    """A normalized histogram trace (probability density)."""
    return go.Histogram(x=_np(x).ravel(), nbinsx=nbins, histnorm="probability density", name=name,
                        marker_color=color, opacity=opacity)


def replace_traces(fig, traces) -> None:
    """Swap the traces of a (widget) figure in place."""
    fig.data = ()
    for tr in traces:
        fig.add_trace(tr)


def image_grid(images, *, nrow: int = 8, title: str = "", pad: int = 1) -> go.Figure:
    """A grid of grey images from a tensor (n, 1, h, w) in [-1, 1]."""
    imgs = _np(images)
    n, _, h, w = imgs.shape
    ncol = min(nrow, n)
    nr = int(np.ceil(n / ncol))
    canvas = np.full((nr * (h + pad) + pad, ncol * (w + pad) + pad), 1.0)
    for k in range(n):
        r, c = divmod(k, ncol)
        canvas[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = imgs[k, 0]
    fig = go.Figure(go.Heatmap(z=canvas[::-1], colorscale="gray", zmin=-1, zmax=1, showscale=False))
    fig.update_layout(title=title, height=40 + 28 * nr * (h + pad) // 8, width=60 + 28 * ncol * (w + pad) // 8,
                      template=TEMPLATE, margin=dict(l=10, r=10, t=40, b=10))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    return fig
