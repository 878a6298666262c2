"""Figures and the dashboard of notebook 1: the diffusion-time trade-off (Franzese et al. 2023).

Figure builders take the dicts of `diffviz.experiments.diffusion_time` and return plotly figures.
`DiffusionTimeDashboard` samples a 2-D target from a chosen start nu at a chosen horizon T with the target's
exact score plus an optional constant error eps (so G = 1/2 eps^2 B(T) is exact and nothing is ever trained):
the samples update, beside the bound KL(p_T || nu) + G against T with the current T marked. The starts are
fitted once, on a grid of T values, when the dashboard is built; the T slider snaps to that grid.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .. import plotting
from ..checks import check_choice, check_int
from ..experiments import diffusion_time as E
from ..metrics import kl_knn
from ..rng import make_generator
from ..samplers import sample
from ..schedules import uniform
from ..widgets import Dashboard, Row, dropdown, slider

T_GRID = (0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)
TARGET_LABELS = {"moons": "two moons", "8gaussians": "8 Gaussians", "rings": "rings", "checkerboard": "checkerboard",
                 "swissroll": "swiss roll", "gaussian": "Gaussian"}
SAMPLER_OPTIONS = {"Euler–Maruyama (SDE)": "em", "Euler (PF-ODE)": "ode-euler", "Heun (PF-ODE)": "heun",
                   "DDIM (η = 0)": "ddim"}
# Names of the starts q (the notation page's: the prior p_∞; "GMM" is fitted by expectation–maximisation).
START_LABELS = {"prior": "prior p_∞ = N(0, I)", "gaussian": "moment-matched Gaussian", "gmm": "GMM",
                "flow": "RealNVP flow"}
INIT_COLORS = {"prior": plotting.PALETTE[1], "gaussian": plotting.PALETTE[3], "gmm": plotting.PALETTE[2],
               "flow": plotting.PALETTE[4]}
FLOOR = 1e-4  # KL values below this are drawn at the floor of the log axis


def _floor(values):
    return [max(float(v), FLOOR) for v in values]


# --- notebook figures --------------------------------------------------------------------------------------
def gaussian_bound_figure(res: dict) -> go.Figure:
    """The exact toy bound against T: endpoint term, score term, their sum, T* marked; the exact-score bound."""
    fig = plotting.base_figure(f"Exact bound on the Gaussian toy (λ = {res['lam']:g}, ε² = {res['eps2']:g})",
                               "diffusion time T", "nats", width=640, height=400, log_y=True)
    T = res["T"]
    fig.add_trace(plotting.line(T, _floor(res["kl"]), name="KL(p_T ‖ p_∞) = bound with the exact score",
                                color=plotting.PALETTE[1], dash="dash"))
    fig.add_trace(plotting.line(T, _floor(res["gap"]), name="G(s_θ, T) = ½ε²B(T)", color=plotting.PALETTE[0],
                                dash="dot"))
    fig.add_trace(plotting.line(T, _floor(res["bound"]), name="bound = KL + G", color="black"))
    fig.add_trace(plotting.marker(res["T_star"], res["bound_star"], name=f"T* = {res['T_star']:.3f} (derived)",
                                  color=plotting.PALETTE[2], symbol="star", size=14))
    fig.add_vline(x=res["T_star"], line=dict(color=plotting.PALETTE[2], dash="dot", width=1))
    fig.update_yaxes(range=[-4, 0.5])
    return fig


def optimal_T_figure(res: dict, lam: float) -> go.Figure:
    """T*(λ, ε) against ε (closed form, derived): the better the score, the longer the optimal horizon."""
    fig = plotting.base_figure(f"Optimal horizon T* against the score error ε (λ = {lam:g})", "ε", "T*",
                               log_x=True, width=520, height=360)
    fig.add_trace(plotting.line(res["eps"], res["T_star"], name="T*(λ, ε) (derived)", color=plotting.PALETTE[2]))
    return fig


def trained_bound_figure(res: dict) -> go.Figure:
    """Estimated terms for trained scores against T: KL(p_T ‖ q) per start q, G, and the bound, ± 2 SE."""
    fig = plotting.base_figure("Trained scores: both terms estimated (± 2 SE)", "diffusion time T", "nats",
                               width=640, height=400, log_y=True)
    T = res["T"]

    def add(y, se, name, color, dash=None, symbol="circle"):
        fig.add_trace(go.Scatter(x=T, y=_floor(y), mode="lines+markers", name=name,
                                 line=dict(color=color, dash=dash), marker=dict(symbol=symbol, size=8),
                                 error_y=dict(type="data", array=[2 * s for s in se], visible=True)))

    add(res["score_gap"], res["score_gap_se"], "G(s_θ, T)", plotting.PALETTE[0], "dot", "diamond")
    for name in res["kl"]:
        c = INIT_COLORS[name]
        add(res["kl"][name], res["kl_se"][name], f"KL(p_T ‖ q), q = {START_LABELS[name]}", c, "dash")
        add(res["bound"][name], res["bound_se"][name], f"bound with q = {START_LABELS[name]}", c, None, "square")
    return fig


def cost_figure(res: dict) -> go.Figure:
    """Score evaluations counted while sampling at a fixed step size, against T."""
    fig = plotting.base_figure(f"Sampling cost at a fixed step size h = {res['step_size']:g}", "diffusion time T",
                               "score evaluations (NFE)", width=520, height=360)
    for i, (m, nfe) in enumerate(res["nfe"].items()):
        fig.add_trace(plotting.line(res["T"], nfe, name=plotting.SAMPLER_NAMES.get(m, m), color=plotting.PALETTE[i],
                                    mode="lines+markers"))
    return fig


def samples_figure(res: dict, *, extra: dict | None = None, max_points: int = 1500) -> go.Figure:
    """Scatter panels: the data, then the samples from each start (`compare_inits`), titled with their KLs.

    `extra`: more panels {title: samples (n, 2)} appended at the end (e.g. the long-horizon reference).
    """
    from plotly.subplots import make_subplots

    panels = [("data", res["data"])]
    for name in res["inits"]:
        kl = res["kl_pT"][name]
        panels.append((f"{START_LABELS.get(name, name)}: KL(p_T ‖ q) = {kl:.3f}", res["samples"][name]))
    for title, x in (extra or {}).items():
        panels.append((title, x))
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[p[0] for p in panels],
                        horizontal_spacing=0.02)
    colors = ["#555555"] + [INIT_COLORS.get(n, plotting.PALETTE[0]) for n in res["inits"]] + \
             [plotting.PALETTE[5]] * len(extra or {})
    for j, ((title, x), c) in enumerate(zip(panels, colors), start=1):
        fig.add_trace(plotting.scatter2d(x[:max_points], name=title, color=c, size=2.5, opacity=0.5), row=1, col=j)
        fig.update_xaxes(range=[-5.2, 5.2], showticklabels=False, row=1, col=j)
        fig.update_yaxes(range=[-5.2, 5.2], showticklabels=False, scaleanchor=f"x{j if j > 1 else ''}", row=1, col=j)
    fig.update_layout(title=f"Samples at T = {res['T']:g} ({res['n_steps']} steps) from each start q",
                      template=plotting.TEMPLATE, height=300, width=230 * len(panels), showlegend=False,
                      margin=dict(l=10, r=10, t=70, b=10))
    fig.update_annotations(font_size=11)
    return fig


# --- the dashboard -----------------------------------------------------------------------------------------------
def _selection_slider(description, options, value):
    import ipywidgets as w

    return w.SelectionSlider(options=[(f"{v:g}", v) for v in options], value=value, description=description,
                             continuous_update=False, style={"description_width": "initial"},
                             layout=w.Layout(width="340px"))


class DiffusionTimeDashboard(Dashboard):
    """Target, T (snapped to a grid), steps, start q, sampler, score error eps, seed -> samples and the bound.

    Exact and instant: the score is the target's exact score plus a constant vector of norm eps, so the score
    term G = 1/2 eps^2 (B(T) - B(t_min)) is exact; KL(p_T || nu) was computed once per (target, T, nu) when the
    dashboard was built (exact for the Gaussian target with a Gaussian nu, Monte Carlo with exact log p_T
    otherwise). A control change samples n points and estimates KL(p_data || samples) by nearest neighbours.
    """

    title = "The diffusion-time trade-off (Franzese et al.): KL(p_T ‖ q) + G against T"
    readout = (
        Row("T", "T", "diffusion time (horizon): the sampler starts at t = T"),
        Row("n_steps", "N", "sampler steps from T down to t_min", integer=True),
        Row("nfe", "NFE", "score evaluations this run used", integer=True),
        Row("kl_pT_nu", "KL(p<sub>T</sub> ‖ q)", "endpoint term: how far the start q is from p_T, the law of x_T",
            se="kl_pT_nu_se", method="kl_exact"),
        Row("G", "G(s<sub>θ</sub>, T)", "score-gap term ½ε²(B(T) − B(t_min)), exact"),
        Row("bound", "KL + G", "the bound on KL(p_data ‖ p̂): the quantity T trades off", se="bound_se"),
        Row("sample_kl", "KL̂(p_data ‖ p̂)", "nearest-neighbour estimate from the samples shown"),
    )

    def __init__(self, *, targets=("moons", "gaussian"), scale: float = 2.0, lam: float = E.LAM,
                 T_grid=T_GRID, inits=E.INITS, n: int = 500, n_ref: int = 1000, n_fit: int = 3000,
                 n_kl: int = 3000, flow_steps: int = 300, fit_seed: int = 0, **initial):
        self.target_names = [check_choice("target", t, set(E.TARGETS)) for t in targets]
        self.T_grid = sorted(float(t) for t in T_grid)
        self.init_names = [check_choice("init", i, set(E.INITS)) for i in inits]
        self.n = check_int("n", n, 10)
        self.scale, self.lam = float(scale), float(lam)
        self.targets = {t: E.make_target(t, scale, lam) for t in self.target_names}
        self.fits, self.kl, self.kl_se, self.kl_exact, self.ref = {}, {}, {}, {}, {}
        for tname, target in self.targets.items():
            self.ref[tname] = target.sample(n_ref, generator=make_generator(fit_seed + 11, "cpu"))
            for iname in self.init_names:
                rows = []
                for T in self.T_grid:
                    init = E.fit_init(iname, target, T, n_fit=n_fit, seed=fit_seed, flow_steps=flow_steps)
                    self.fits[tname, iname, T] = init
                    rows.append(E.init_kl(target, T, init, n=n_kl, seed=fit_seed + 1))
                self.kl[tname, iname] = [r[0] for r in rows]
                self.kl_se[tname, iname] = [r[1] for r in rows]
                self.kl_exact[tname, iname] = all(r[2] for r in rows)
        self.fine_T = np.linspace(0.02, max(self.T_grid), 120)
        self._ref_np = {t: r.numpy() for t, r in self.ref.items()}
        self._shown_ref = None
        super().__init__(**initial)

    def make_controls(self) -> dict:
        targets = {(f"Gaussian N(0, {self.lam:g} I)" if t == "gaussian" else
                    f"{TARGET_LABELS[t]} ×{self.scale:g} (bead mixture)"): t for t in self.target_names}
        inits = {START_LABELS[i]: i for i in self.init_names}
        T0 = min(self.T_grid, key=lambda t: abs(t - 0.3))
        return {"target": dropdown("target", targets, self.target_names[0]),
                "T": _selection_slider("horizon T", self.T_grid, T0),
                "n_steps": slider("steps", 30, 2, 200, integer=True),
                "init": dropdown("start q", inits, self.init_names[0]),
                "sampler": dropdown("sampler", SAMPLER_OPTIONS, "em"),
                "eps": slider("score error ε", 0.3, 0.0, 1.0, 0.05),
                "seed": slider("seed", 0, 0, 99, integer=True)}

    def make_figures(self) -> dict:
        samples = plotting.base_figure("Samples", "x₁", "x₂", width=420, height=420)
        ref = self.ref[self.target_names[0]]
        samples.add_trace(plotting.scatter2d(ref, name="data", color="#999999", size=2, opacity=0.35))
        samples.add_trace(plotting.scatter2d(ref[:0], name="samples", color=plotting.PALETTE[0], size=3,
                                             opacity=0.6))
        samples.update_layout(title_font_size=14, margin_t=60)  # a two-line title: target and T, then the run
        samples.update_xaxes(range=[-5.2, 5.2])
        samples.update_yaxes(range=[-5.2, 5.2], scaleanchor="x")
        bound = plotting.base_figure("Bound against T (current T marked)", "diffusion time T", "nats",
                                     width=520, height=420, log_y=True)
        bound.add_trace(go.Scatter(x=[], y=[], mode="lines+markers", name="KL(p_T ‖ q)",
                                   error_y=dict(type="data", array=[], visible=True)))
        bound.add_trace(go.Scatter(x=[], y=[], mode="lines", name="G(s_θ, T) = ½ε²B(T) (exact)",
                                   line=dict(color=plotting.PALETTE[0], dash="dot")))
        bound.add_trace(go.Scatter(x=[], y=[], mode="lines+markers", name="bound = KL + G",
                                   line=dict(color="black")))
        bound.add_trace(go.Scatter(x=[], y=[], mode="lines", name="KL(p_T ‖ p_∞)",
                                   line=dict(color=INIT_COLORS["prior"], dash="dash", width=1)))
        bound.add_trace(plotting.marker(self.T_grid[0], 1.0, name="current T"))
        bound.update_yaxes(range=[-3.5, 1])
        return {"samples": samples, "bound": bound}

    def compute(self, values: dict) -> dict:
        tname, T, iname = values["target"], float(values["T"]), values["init"]
        n_steps, method, eps = int(values["n_steps"]), values["sampler"], float(values["eps"])
        target = self.targets[tname]
        process = E.make_process(T)
        gen = make_generator(int(values["seed"]), "cpu")
        x_init = self.fits[tname, iname, T].sample(self.n, generator=gen)
        score = E.CountingScore(E.score_of(target, process, eps))
        x = sample(score, process, x_init, uniform(process, n_steps), method, generator=gen)
        i = self.T_grid.index(T)
        kl = self.kl[tname, iname]
        G_grid = [E.score_gap_constant(E.make_process(t), eps) for t in self.T_grid]
        G_fine = [0.5 * eps ** 2 * float(process.B(t)) for t in self.fine_T]
        numbers = {"T": T, "n_steps": n_steps, "nfe": score.calls, "kl_pT_nu": kl[i],
                   "kl_pT_nu_se": self.kl_se[tname, iname][i], "kl_exact": self.kl_exact[tname, iname],
                   "G": G_grid[i], "bound": kl[i] + G_grid[i], "sample_kl": kl_knn(self.ref[tname], x)}
        return {"numbers": numbers, "se": {"bound_se": self.kl_se[tname, iname][i]},
                "x": x.numpy(), "ref": self._ref_np[tname], "kl": kl,
                "kl_se": self.kl_se[tname, iname], "kl_prior": self.kl[tname, "prior"] if "prior" in self.init_names
                else None, "G_grid": G_grid, "G_fine": G_fine, "i": i, "iname": iname,
                "title": f"{TARGET_LABELS.get(tname, tname)}, T = {T:g}:<br>{n_steps} "
                         f"{plotting.SAMPLER_NAMES.get(method, method)} steps from {START_LABELS[iname]}"}

    def render(self, res: dict) -> None:
        samples, bound = self.figures["samples"], self.figures["bound"]
        if self._shown_ref is not res["ref"]:  # the data cloud changes only with the target
            samples.data[0].x, samples.data[0].y = res["ref"][:, 0], res["ref"][:, 1]
            self._shown_ref = res["ref"]
        samples.data[1].x, samples.data[1].y = res["x"][:, 0], res["x"][:, 1]
        samples.data[1].marker.color = INIT_COLORS[res["iname"]]
        samples.layout.title.text = res["title"]
        Tg = list(self.T_grid)
        b = [k + g for k, g in zip(res["kl"], res["G_grid"])]
        bound.data[0].x, bound.data[0].y = Tg, _floor(res["kl"])
        bound.data[0].error_y.array = [2 * s for s in res["kl_se"]]
        bound.data[0].line.color = INIT_COLORS[res["iname"]]
        bound.data[0].name = f"KL(p_T ‖ q), q = {START_LABELS[res['iname']]}"
        bound.data[1].x, bound.data[1].y = list(self.fine_T), _floor(res["G_fine"])
        bound.data[2].x, bound.data[2].y = Tg, _floor(b)
        prior = res["kl_prior"] if res["kl_prior"] is not None and res["iname"] != "prior" else []
        bound.data[3].x, bound.data[3].y = (Tg if prior else []), _floor(prior)
        bound.data[4].x, bound.data[4].y = [Tg[res["i"]]], [max(b[res["i"]], FLOOR)]
