"""Figures and the dashboard of notebook 2: initialization mismatch in VE samplers (Fassina et al.).

Figure builders take the dicts of `diffviz.experiments.initialization` and return plotly figures. The quantile
plot puts the levels u on the axis log10(u / (1 - u)) (0.9 -> 1, 0.999999 -> 6) and the quantile values on an
asinh axis (linear near 0, logarithmic in the tails, signs kept), labelled in plain numbers.
`InitializationDashboard` runs Heun with the exact Student-t score from the chosen start; the learned starts
are fitted once per (sigma_T, df) at construction (or handed over from the notebook) and never refitted.
"""
from __future__ import annotations

import time

import numpy as np
import plotly.graph_objects as go

from .. import plotting
from ..experiments import initialization as E
from ..widgets import Dashboard, Row, dropdown, slider

COLORS = {"prior": plotting.PALETTE[1], "oracle": plotting.PALETTE[2], "learned": plotting.PALETTE[0],
          "true": "black"}
LABELS = {"prior": "prior p_∞ = N(0, σ_T² I)", "oracle": "oracle p_T", "learned": "learned q_φ (Student-t fit)"}
SHORT = {"prior": "prior p_∞", "oracle": "oracle p_T", "learned": "learned q_φ"}
SIGMA_DASH = {2.0: "solid", 7.0: "dash", 80.0: "dot"}
_Y_TICKS = (-100, -10, -3, -1, 0, 1, 3, 10, 30, 100, 300, 1000, 3000, 10000)


def level_x(levels) -> np.ndarray:
    """Axis position of quantile level u: log10(u / (1 - u)) (0.1 -> -0.95, 0.5 -> 0, 0.99 -> 2, 0.999999 -> 6)."""
    u = np.asarray(levels, dtype=np.float64)
    return np.log10(u) - np.log10(1.0 - u)


def _y(v) -> np.ndarray:
    return np.arcsinh(np.asarray(v, dtype=np.float64))


def _style_quantile_axes(fig, levels, row=None, col=None):
    kw = {} if row is None else dict(row=row, col=col)
    fig.update_xaxes(tickvals=level_x(levels).tolist(), ticktext=[f"{u:g}" for u in levels], **kw)
    fig.update_yaxes(tickvals=_y(_Y_TICKS).tolist(), ticktext=[f"{v:g}" for v in _Y_TICKS], **kw)


def quantile_traces(res: dict, *, inits=None, show_sim: bool = True, showlegend: bool = True,
                    group: str = "") -> list:
    """Traces for one panel: true quantiles, exact pushed quantiles (± std over coordinates) and the simulation.

    `res` as returned by `E.figure2` (keys levels, true, exact, sim). Simulated quantiles are drawn only at the
    levels the sample size supports; error bars are ± one std over coordinates.
    """
    levels = np.asarray(res["levels"])
    x = level_x(levels)
    traces = [go.Scatter(x=x, y=_y(res["true"]), mode="lines+markers", name="data (true Student-t)",
                         legendgroup="true", showlegend=showlegend, line=dict(color="black", width=3),
                         marker=dict(size=5), customdata=res["true"], hovertemplate="%{customdata:.4g}")]
    inits = list(res["exact"]) if inits is None else list(inits)
    for kind in inits:
        color = COLORS[kind]
        ex = res["exact"].get(kind)
        if ex is not None:
            mean, std = np.asarray(ex["mean"]), np.asarray(ex["std"])
            err = dict(type="data", symmetric=False, array=_y(mean + std) - _y(mean),
                       arrayminus=_y(mean) - _y(mean - std), visible=bool(np.any(std > 0)), thickness=1)
            traces.append(go.Scatter(x=x, y=_y(mean), mode="lines", name=f"{LABELS[kind]} → sampler (exact)",
                                     legendgroup=kind + group, showlegend=showlegend, line=dict(color=color),
                                     error_y=err, customdata=mean, hovertemplate="%{customdata:.4g}"))
        sim = res.get("sim", {}).get(kind)
        if show_sim and sim is not None:
            ok = np.asarray(sim["supported"], dtype=bool)
            mean, std = np.asarray(sim["mean"])[ok], np.asarray(sim["std"])[ok]
            traces.append(go.Scatter(
                x=x[ok], y=_y(mean), mode="markers",
                name=f"{SHORT[kind]}: simulated, mean ± std over {sim['d']} coords",
                legendgroup=kind + group, showlegend=showlegend, marker=dict(color=color, symbol="circle-open", size=9),
                error_y=dict(type="data", symmetric=False, array=_y(mean + std) - _y(mean),
                             arrayminus=_y(mean) - _y(mean - std), visible=True, thickness=1.5),
                customdata=mean, hovertemplate="%{customdata:.4g}"))
    return traces


def quantile_figure(res: dict | None = None, *, title: str = "", width: int = 560, height: int = 420) -> go.Figure:
    """One quantile plot (the dashboard's): levels on -log10(1 - u), values on an asinh axis."""
    fig = plotting.base_figure(title, "quantile level u", "quantile value (asinh scale)", width=width, height=height)
    _style_quantile_axes(fig, E.LEVELS)
    if res is not None:
        for tr in quantile_traces(res):
            fig.add_trace(tr)
    return fig


def figure2_panels(results: list, *, title: str = "") -> go.Figure:
    """The seed's Figure 2: one panel per sigma_T (results from `E.figure2`), shared legend."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(results), shared_yaxes=True,
                        subplot_titles=[f"σ_T = {r['sigma_T']:g}" for r in results])
    for col, res in enumerate(results, start=1):
        for tr in quantile_traces(res, showlegend=col == 1):
            fig.add_trace(tr, row=1, col=col)
        _style_quantile_axes(fig, res["levels"], row=1, col=col)
    fig.update_xaxes(title="quantile level u")
    fig.update_yaxes(title="quantile value", row=1, col=1)
    fig.update_layout(title=title, template=plotting.TEMPLATE, height=540, width=1100,
                      legend=dict(orientation="h", y=-0.28), margin=dict(l=55, r=15, t=60, b=150))
    return fig


def steps_figure(sweeps: dict, metric: str = "binned_kl", *, title: str = "", inits=E.INITS) -> go.Figure:
    """Exact quality against the step count: one curve per (sigma_T, start), dotted lines at the N -> inf limits.

    `sweeps` = {sigma_T: E.steps_sweep(...)}; metric "binned_kl" or "tail_error".
    """
    ylabel = {"binned_kl": "binned KL(data ‖ output) per coordinate",
              "tail_error": "tail error mean |ln Q_out/Q_true|"}[metric]
    fig = plotting.base_figure(title, "Heun steps N", ylabel, log_x=True, log_y=True, width=620, height=420)
    for s, sw in sweeps.items():
        for kind in inits:
            if kind not in sw:
                continue
            y = np.asarray(sw[kind][metric], dtype=np.float64)
            y = np.where(np.isfinite(y) & (y > 0), y, np.nan)
            fig.add_trace(go.Scatter(x=sw["steps"], y=y, mode="lines+markers", name=f"{SHORT[kind]}, σ_T = {s:g}",
                                     line=dict(color=COLORS[kind], dash=SIGMA_DASH.get(float(s), "dashdot"))))
    return fig


def gaussian_kl_figure(curves: dict, *, current=None, title: str = "Gaussian data: exact KL vs steps") -> go.Figure:
    """Exact KL(data ‖ output) of Heun on N(0, lam I_d) against N: solid = exact start p_T, dashed = prior p_∞.

    Dotted horizontal lines: the prior's N -> inf floor, the endpoint KL(p_T ‖ p_∞), p_∞ = N(0, σ_T²I).
    `current` = (n_steps, kl, label) marks the dashboard's setting.
    """
    fig = plotting.base_figure(title, "Heun steps N", f"KL (sum over d = {curves['d']})", log_x=True, log_y=True,
                               width=560, height=420)
    fig.add_traces(gaussian_kl_traces(curves, current=current))
    return fig


def gaussian_kl_traces(curves: dict, *, current=None) -> list:
    traces = []
    steps = curves["steps"]
    for i, s in enumerate(curves["prior"]):
        color = plotting.PALETTE[[1, 3, 4, 5, 6, 7][i % 6]]
        traces.append(plotting.line(steps, curves["exact"][s], name=f"σ_T = {s:g}, exact start p_T", color=color))
        traces.append(plotting.line(steps, curves["prior"][s], name=f"σ_T = {s:g}, prior p_∞", color=color,
                                    dash="dash"))
        if curves["endpoint"][s] > 1e-12:
            traces.append(plotting.line([steps[0], steps[-1]], [curves["endpoint"][s]] * 2, color=color, dash="dot",
                                        name=f"σ_T = {s:g}: KL(p_T ‖ p_∞)"))
    if current is not None:
        n, kl, label = current
        traces.append(plotting.marker(n, max(kl, 1e-300), name=label))
    return traces


def truncated_kl_figure(cutoffs, rows: dict, *, title: str = "", slope: float | None = None) -> go.Figure:
    """KL(p_T ‖ q) restricted to |x| ≤ X against X: rows = {label: values} (non-positive values left out).

    `slope`: a dotted reference line ∝ X^slope through the last point of the first row that grows.
    """
    fig = plotting.base_figure(title, "cutoff X", "∫_{|x|≤X} p_T ln(p_T/q) dx", log_x=True, log_y=True,
                               width=680, height=420)
    cutoffs = np.asarray(cutoffs, dtype=np.float64)
    for i, (label, vals) in enumerate(rows.items()):
        vals = np.asarray(vals, dtype=np.float64)
        fig.add_trace(plotting.line(cutoffs, np.where(vals > 0, vals, np.nan), name=label, color=plotting.PALETTE[i],
                                    mode="lines+markers"))
    if slope is not None and rows:
        last = np.asarray(next(iter(rows.values())), dtype=np.float64)[-1]
        ref = last * (cutoffs / cutoffs[-1]) ** slope
        fig.add_trace(plotting.line(cutoffs, ref, name=f"∝ X^{slope:g}", color="gray", dash="dot"))
    return fig


# --- the dashboard --------------------------------------------------------------------------------------------
class InitializationDashboard(Dashboard):
    """Controls: sigma_T, Heun steps N, start (prior / oracle / learned), df, seed.

    Shows the quantile plot (true Student-t quantiles, the exact output quantiles of the chosen start and the
    simulation: per-coordinate empirical quantiles of n samples x d coordinates, mean ± std over coordinates)
    and the exact KL-vs-N curves on Gaussian data N(0, lam I_d) with the current (sigma_T, N) marked.
    Numbers: binned_kl and tail_error of the output (exact, per coordinate), sim_tail_error (estimated),
    gauss_kl (exact, the Gaussian analogue of the current start: prior -> prior, oracle/learned -> exact start).

    The learned starts are StudentTInit fits, one per (sigma_T, df), made at construction or passed in
    `learned={(df, sigma_T): fitted}`; start samples are cached per (start, df, sigma_T, seed).
    """

    title = "Initialization mismatch in VE sampling (Fassina et al.): Student-t data, exact score, Heun"
    readout = (
        Row("binned_kl", "KL<sub>bin</sub>(data ‖ p̂)", "binned KL of the output per coordinate, exact"),
        Row("tail_error", "tail error", "mean |ln Q_out / Q_true| over the tail quantile levels, exact"),
        Row("sim_tail_error", "tail error (simulated)", "the same from the simulated samples"),
        Row("gauss_kl", "KL(N(0, λI) ‖ p̂)",
            "Gaussian data, the analogue of this start: exact KL after N Heun steps"),
        Row("gauss_kl_prior", "… from p<sub>∞</sub>", "the same from the prior p_∞ = N(0, σ_T² I)"),
        Row("gauss_kl_exact_start", "… from p<sub>T</sub>", "the same from the exact start p_T"),
        Row("learned_df_mean", "ν̂ (mean)",
            "degrees of freedom of the learned start q_φ (ECM fit), mean over coordinates"),
    )

    def __init__(self, *, n: int = 2000, d: int = 100, sigma_Ts=E.SIGMA_TS, dfs=E.DFS, learned=None,
                 n_fit: int = 1000, fit_seed: int = 0, max_steps: int = 100, gauss_lam: float = E.GAUSS_LAM,
                 **initial):
        from ..rng import make_generator

        self.n, self.d = int(n), int(d)
        self.sigma_Ts, self.dfs = tuple(float(s) for s in sigma_Ts), tuple(float(v) for v in dfs)
        self.max_steps = int(max_steps)
        self.learned = dict(learned or {})
        for df in self.dfs:
            for s in self.sigma_Ts:
                if (df, s) not in self.learned:
                    gen = make_generator(fit_seed, "cpu")
                    self.learned[(df, s)] = E.fit_learned(df, s, n_fit=n_fit, d=self.d, generator=gen)
                elif self.learned[(df, s)].dim != self.d:
                    raise ValueError(f"learned[({df:g}, {s:g})] was fitted on {self.learned[(df, s)].dim} "
                                     f"coordinates; the dashboard has d = {self.d}")
        steps = np.unique(np.round(np.logspace(np.log10(2), np.log10(max(self.max_steps, 256)), 18)).astype(int))
        self.gauss = E.gaussian_kl_curves(self.sigma_Ts, steps, lam=gauss_lam, d=self.d)
        self._starts: dict = {}
        self.timings: list = []  # (wall s, cpu s) per computed update
        super().__init__(**initial)

    def make_controls(self) -> dict:
        return {
            "sigma_T": dropdown("σ_T", list(self.sigma_Ts), self.sigma_Ts[0]),
            "n_steps": slider("Heun steps N", min(32, self.max_steps), 2, self.max_steps, integer=True),
            "init": dropdown("start q", {"prior p_∞ = N(0, σ_T² I)": "prior", "oracle p_T": "oracle",
                                         "learned q_φ (Student-t)": "learned"}, "learned"),
            "df": dropdown("Student-t ν", list(self.dfs), self.dfs[0]),
            "seed": slider("seed", 0, 0, 20, integer=True),
        }

    def make_figures(self) -> dict:
        return {"quantiles": quantile_figure(title="Output quantiles vs the data"),
                "gauss_kl": gaussian_kl_figure(self.gauss)}

    def _start(self, kind, df, sigma_T, seed):
        """The n x d start samples, drawn once per (start, df, sigma_T, seed)."""
        from ..rng import make_generator

        key = (kind, df, sigma_T, seed)
        if key not in self._starts:
            if len(self._starts) > 24:
                self._starts.pop(next(iter(self._starts)))
            gen = make_generator(seed, "cpu")
            self._starts[key] = E.draw_starts(df, sigma_T, self.n, self.d, inits=(kind,),
                                              learned=self.learned[(df, sigma_T)], generator=gen)[kind]
        return self._starts[key]

    def compute(self, values: dict) -> dict:
        wall, cpu = time.perf_counter(), time.process_time()
        df, s, kind = float(values["df"]), float(values["sigma_T"]), values["init"]
        n_steps, seed = int(values["n_steps"]), int(values["seed"])
        learned = self.learned[(df, s)]
        x = self._start(kind, df, s, seed)
        # one sampler batch, no refinement rounds: clusters 0.03 apart in asinh(x/c), interpolation error <~ 1e-3
        res = E.push_forward(df, s, n_steps, exact=(kind,), simulate={kind: x}, learned=learned, max_rounds=0,
                             cluster_step=0.03)
        res.update(levels=np.asarray(E.LEVELS), true=E.data_quantiles(df, E.LEVELS), sigma_T=s)
        gauss_init = "prior" if kind == "prior" else "exact"
        gauss_name = "prior p_∞" if kind == "prior" else "exact p_T"
        g_prior = E.gaussian_kl(s, n_steps, "prior", lam=self.gauss["lam"], d=self.d)
        g_exact = E.gaussian_kl(s, n_steps, "exact", lam=self.gauss["lam"], d=self.d)
        numbers = {
            "binned_kl": res["exact"][kind]["binned_kl"],
            "tail_error": res["exact"][kind]["tail_error"],
            "sim_tail_error": res["sim"][kind]["tail_error"],
            "gauss_kl": g_prior if gauss_init == "prior" else g_exact,
            "gauss_kl_prior": g_prior,
            "gauss_kl_exact_start": g_exact,
        }
        if kind == "learned":
            numbers["learned_df_mean"] = float(learned.df.mean())
        self.timings.append((time.perf_counter() - wall, time.process_time() - cpu))
        return {"numbers": numbers, "res": res, "df": df, "sigma_T": s, "n_steps": n_steps, "kind": kind,
                "gauss_label": f"σ_T = {s:g}, N = {n_steps}, start {gauss_name}"}

    def render(self, r: dict) -> None:
        fig = self.figures["quantiles"]
        plotting.replace_traces(fig, quantile_traces(r["res"]))
        fig.layout.title = (f"ν = {r['df']:g}, σ_T = {r['sigma_T']:g}, N = {r['n_steps']} Heun steps: "
                            f"start {SHORT[r['kind']]}")
        g = self.figures["gauss_kl"]
        plotting.replace_traces(g, gaussian_kl_traces(self.gauss, current=(r["n_steps"], r["numbers"]["gauss_kl"],
                                                                            r["gauss_label"])))

    def timing_summary(self) -> dict:
        """Median and max wall and CPU seconds of the computed updates (compute only, not the browser)."""
        if not self.timings:
            return {}
        w, c = np.array(self.timings).T
        return {"median_wall_s": float(np.median(w)), "max_wall_s": float(w.max()),
                "median_cpu_s": float(np.median(c)), "max_cpu_s": float(c.max()), "n": len(w)}
