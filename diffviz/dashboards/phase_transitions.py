"""Figures and the dashboard of notebook 4: VP/VE phase transitions in high dimension (Aranguri et al. 2025).

Figure builders take the dicts of `diffviz.experiments.phase_transitions` and return plotly figures;
`PhaseTransitionDashboard` samples the two-mode mixture with the exact posterior (nothing is trained) and shows
the histogram of the mode coordinate mu.X/d against the exact target, the within-mode coordinates against
N(0, sigma^2), and the feature errors of the Euler sampler (exact expectation over n_steps, derived) with
the simulated value and its 2-standard-error bar.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import plotly.graph_objects as go

from .. import plotting
from ..experiments import phase_transitions as pt
from ..widgets import Dashboard, Row, dropdown, slider

COLORS = {"vp/none": plotting.PALETTE[0], "vp/dilated": plotting.PALETTE[2],
          "ve/none": plotting.PALETTE[1], "ve/dilated": plotting.PALETTE[3]}
SCHEDULE_OPTIONS = {"VP interpolant, uniform": "vp/none", "VP interpolant, dilated": "vp/dilated",
                    "VE interpolant, uniform": "ve/none", "VE interpolant, dilated": "ve/dilated"}


def _label(key: str) -> str:
    kind, dilation = key.split("/")
    return pt.schedule_label(kind, dilation)


# --- notebook figures --------------------------------------------------------------------------------------
def features_vs_steps_figure(res: dict) -> go.Figure:
    """Two panels: p_hat and sigma2_hat vs n_steps per schedule (markers: simulation ± 2 SE; lines: exact Euler)."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("high-level: p̂ = P(μ·X > 0)",
                                                        "low-level: σ̂_w² = |X − sign(μ·X)μ|²/d"))
    steps = res["steps"]
    for key, rows in res["schedules"].items():
        color = COLORS[key]
        for col, (est, se, ex) in enumerate([("p_hat", "p_se", "p_exact"), ("sigma2_hat", "sigma2_se", "sigma2_exact")],
                                            start=1):
            fig.add_trace(go.Scatter(x=steps, y=rows[est], mode="markers", name=_label(key), legendgroup=key,
                                     showlegend=col == 1, marker=dict(color=color, size=8),
                                     error_y=dict(type="data", array=[2 * s for s in rows[se]], visible=True)),
                          row=1, col=col)
            if rows.get(ex):
                fig.add_trace(go.Scatter(x=steps, y=rows[ex], mode="lines", name=f"{_label(key)} (exact Euler)",
                                         legendgroup=key, showlegend=False, line=dict(color=color, dash="dot")),
                              row=1, col=col)
    for col, (val, name) in enumerate([(res["p_target"], "p"), (res["sigma2_target"], "σ_w²")], start=1):
        fig.add_hline(y=val, line=dict(color="black", dash="dash", width=1), row=1, col=col,
                      annotation_text=f"target {name} = {val:g}", annotation_position="bottom right")
    plotting.log_axes(fig, x=True)
    fig.update_xaxes(title="Euler steps N")
    fig.update_layout(title=f"Features of the samples vs number of steps (d = {res['d']}, n = {res['n']})",
                      template=plotting.TEMPLATE, height=420, width=940, legend=dict(orientation="h", y=-0.2))
    return fig


def steps_needed_figure(sim: dict, exact: dict | None = None) -> go.Figure:
    """Steps needed vs d, log-log: markers from simulations, lines from the exact Euler features, a sqrt(d) guide.

    `sim` / `exact`: {schedule key: `steps_needed` result}.
    """
    fig = plotting.base_figure("Euler steps needed to recover p and σ_w²", "dimension d", "steps needed",
                               log_x=True, log_y=True, width=620, height=420)
    for key, r in (exact or {}).items():
        ds = [d for d, s in zip(r["d"], r["steps_needed"]) if s is not None]
        ss = [s for s in r["steps_needed"] if s is not None]
        fig.add_trace(go.Scatter(x=ds, y=ss, mode="lines", name=f"{_label(key)} (exact Euler)",
                                 line=dict(color=COLORS[key], dash="dot", shape="hv"), legendgroup=key))
    for key, r in sim.items():
        ds = [d for d, s in zip(r["d"], r["steps_needed"]) if s is not None]
        ss = [s for s in r["steps_needed"] if s is not None]
        fig.add_trace(go.Scatter(x=ds, y=ss, mode="markers+lines", name=f"{_label(key)} (simulated)",
                                 marker=dict(color=COLORS[key], size=9), line=dict(color=COLORS[key]),
                                 legendgroup=key))
    ref = sim.get("ve/none") or next(iter(sim.values()))
    pairs = [(d, s) for d, s in zip(ref["d"], ref["steps_needed"]) if s is not None]
    all_d = sorted({d for r in list(sim.values()) + list((exact or {}).values()) for d in r["d"]})
    if pairs and all_d:
        d0, s0 = pairs[0]
        fig.add_trace(go.Scatter(x=all_d, y=[s0 * math.sqrt(d / d0) for d in all_d], mode="lines", name="∝ √d",
                                 line=dict(color="grey", dash="dash", width=1)))
    return fig


def magnetization_figure(res: dict, title: str | None = None) -> go.Figure:
    """M_u = mu.X_u/d of a few particles over the sampling time u (`run_gm(..., record_magnetization=True)`)."""
    label = pt.schedule_label(res["kind"], res["dilation"])
    fig = plotting.base_figure(title or f"Mode coordinate along the ODE ({label}, d = {res['d']})",
                               "sampler clock u (noise → data)", "M_u = μ·X_u / d", width=620, height=380)
    u, mags = res["u"], res["magnetization"]
    for j in range(mags.shape[1]):
        final = mags[-1, j]
        fig.add_trace(go.Scatter(x=u, y=mags[:, j], mode="lines", showlegend=False,
                                 line=dict(color=plotting.PALETTE[0] if final > 0 else plotting.PALETTE[1], width=1.5)))
    fig.add_vline(x=0.5, line=dict(color="grey", dash="dot"), annotation_text="u = 1/2")
    for y in (-1, 1):
        fig.add_hline(y=y, line=dict(color="black", dash="dash", width=1))
    return fig


def feature_table(rows: dict) -> "object":
    """A pandas DataFrame from {row label: {column: value}} (feature tables of the notebook)."""
    import pandas as pd

    return pd.DataFrame(rows).T


# --- the dashboard -----------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def _error_curves(kind: str, dilation: str, d: int, p: float, sigma2: float, kappa: float, steps: tuple):
    """Exact Euler feature errors over `steps` (cached: they depend on neither n_steps nor the seed)."""
    rows = [pt.euler_features_exact(d, k, kind, dilation, p, sigma2, kappa, n_quad=801) for k in steps]
    return [r["p_err"] for r in rows], [r["sigma2_err"] for r in rows]


class PhaseTransitionDashboard(Dashboard):
    """Schedule (VP/VE x uniform/dilated), Euler steps, log10 d, seed -> samples of the two-mode mixture and their
    features p_hat (target p) and sigma2_hat (target sigma_w^2)."""

    title = "VP/VE phase transitions: does the sampler recover p (mode weights) and σ_w² (within-mode variance)?"
    readout = (
        Row("p_hat", "p̂", "fraction of samples in the + mode (μ·X > 0)", se="p_se"),
        Row("p", "p", "target: weight of the + mode"),
        Row("p_euler", "E[p̂], exact Euler", "what the Euler sampler gives on average at this N (derived)"),
        Row("sigma2_hat", "σ̂<sub>w</sub>²", "within-mode variance of the samples", se="sigma2_se"),
        Row("sigma2", "σ<sub>w</sub>²", "target: within-mode variance"),
        Row("sigma2_euler", "E[σ̂<sub>w</sub>²], exact Euler",
            "what the Euler sampler gives on average at this N (derived)"),
        Row("d", "d", "dimension", integer=True),
    )
    CURVE_STEPS = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)

    def __init__(self, n: int = 300, p: float = 0.8, sigma2: float = 0.25, kappa: float = 3.0, *, device=None,
                 **initial):
        self.n, self.p, self.sigma2, self.kappa, self.device = int(n), float(p), float(sigma2), float(kappa), device
        self.edges = np.linspace(-1.6, 1.6, 65)
        self.resid_edges = np.linspace(-4 * math.sqrt(self.sigma2), 4 * math.sqrt(self.sigma2), 61)
        super().__init__(**initial)

    def make_controls(self) -> dict:
        return {"schedule": dropdown("schedule", SCHEDULE_OPTIONS, "ve/none"),
                "n_steps": slider("Euler steps", 20, 2, 256, integer=True),
                "log10_d": slider("log₁₀ d", 3.0, 2.0, 4.0, 0.25),
                "seed": slider("seed", 0, 0, 99, integer=True)}

    def make_figures(self) -> dict:
        centers = 0.5 * (self.edges[1:] + self.edges[:-1])
        mode = plotting.base_figure("Mode coordinate μ·X/d", "μ·X / d", "fraction of samples", width=440)
        mode.add_trace(go.Bar(x=centers, y=np.zeros_like(centers), name="samples", marker_color=plotting.PALETTE[0],
                              opacity=0.6))
        mode.add_trace(go.Scatter(x=centers, y=np.zeros_like(centers), mode="lines", name="target (exact)",
                                  line=dict(color="black", shape="hvh")))
        rc = 0.5 * (self.resid_edges[1:] + self.resid_edges[:-1])
        resid = plotting.base_figure("Within-mode coordinates X_i − sign(μ·X) μ_i", "value", "density", width=440)
        resid.add_trace(go.Bar(x=rc, y=np.zeros_like(rc), name="samples", marker_color=plotting.PALETTE[2],
                               opacity=0.6))
        dens = np.exp(-rc ** 2 / (2 * self.sigma2)) / math.sqrt(2 * math.pi * self.sigma2)
        resid.add_trace(go.Scatter(x=rc, y=dens, mode="lines", name="N(0, σ_w²) (target)", line=dict(color="black")))
        err = plotting.base_figure("Feature errors of the Euler sampler", "Euler steps N", "error", log_x=True,
                                   log_y=True, width=440)
        err.add_trace(go.Scatter(x=[], y=[], mode="lines", name="|p̂ − p| (exact Euler)",
                                 line=dict(color=plotting.PALETTE[0], dash="dot")))
        err.add_trace(go.Scatter(x=[], y=[], mode="lines", name="|σ̂_w² − σ_w²|/σ_w² (exact Euler)",
                                 line=dict(color=plotting.PALETTE[1], dash="dot")))
        err.add_trace(go.Scatter(x=[], y=[], mode="markers", name="simulated ± 2 SE",
                                 marker=dict(color=[plotting.PALETTE[0], plotting.PALETTE[1]], size=10),
                                 error_y=dict(type="data", array=[], visible=True)))
        return {"mode": mode, "residuals": resid, "errors": err}

    def compute(self, values: dict) -> dict:
        kind, dilation = values["schedule"].split("/")
        d = int(round(10 ** values["log10_d"]))
        n_steps = int(values["n_steps"])
        r = pt.run_gm(d, self.n, n_steps, kind, dilation, self.p, self.sigma2, self.kappa, seed=int(values["seed"]),
                      device=self.device, return_samples=True)
        ex = pt.euler_features_exact(d, n_steps, kind, dilation, self.p, self.sigma2, self.kappa, n_quad=801)
        counts, _ = np.histogram(r["mode_coord"], bins=self.edges)
        rv = pt.within_mode_residuals(r["x"])
        rdens, _ = np.histogram(rv, bins=self.resid_edges, density=True)
        p_curve, s_curve = _error_curves(kind, dilation, d, self.p, self.sigma2, self.kappa, self.CURVE_STEPS)
        numbers = {"p_hat": r["p_hat"], "p": self.p, "sigma2_hat": r["sigma2_hat"], "sigma2": self.sigma2,
                   "p_se": r["p_se"], "p_euler": ex["p_hat"], "sigma2_euler": ex["sigma2_hat"], "d": d}
        return {"numbers": numbers, "se": {"sigma2_se": r["sigma2_se"]}, "mode_frac": counts / self.n,
                "target_frac": pt.mode_coord_bin_probs(self.edges, d, self.p, self.sigma2),
                "resid_density": rdens, "p_curve": p_curve, "s_curve": s_curve, "n_steps": n_steps,
                "sim_err": [r["p_err"], r["sigma2_err"]], "sim_se": [2 * r["p_se"], 2 * r["sigma2_se"] / self.sigma2],
                "title": f"{pt.schedule_label(kind, dilation)}, d = {d}, {n_steps} steps"}

    def render(self, res: dict) -> None:
        floor = 1e-4  # errors below this are drawn at the floor of the log axis
        mode, resid, err = self.figures["mode"], self.figures["residuals"], self.figures["errors"]
        mode.data[0].y = res["mode_frac"]
        mode.data[1].y = res["target_frac"]
        mode.layout.title.text = f"Mode coordinate μ·X/d — {res['title']}"
        resid.data[0].y = res["resid_density"]
        steps = list(self.CURVE_STEPS)
        err.data[0].x, err.data[0].y = steps, [max(v, floor) for v in res["p_curve"]]
        err.data[1].x, err.data[1].y = steps, [max(v, floor) for v in res["s_curve"]]
        err.data[2].x = [res["n_steps"], res["n_steps"]]
        err.data[2].y = [max(v, floor) for v in res["sim_err"]]
        err.data[2].error_y.array = res["sim_se"]
