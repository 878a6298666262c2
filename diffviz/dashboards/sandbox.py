"""The sandbox of notebook 6: draw a 2-D target, pick every knob, read exact and estimated numbers, copy as code.

Every update runs `diffviz.sandbox.run` on the current scenario (the same function `to_code()`'s printed code
calls, so the numbers agree by construction). The data: beads (isotropic Gaussians of one width w, each with a
weight), a toy as editable beads, or a Student-t with ν degrees of freedom. Clicking on the left plot:
- mode "add / remove": a click adds a bead there; a click within max(w, 0.15) of a bead removes it;
- mode "select": a click on a bead selects it (red); the weight slider then sets its weight.
Driven from code: `dash.click(x, y)`, `dash.add_bead(x, y)`, `dash.remove_bead(i)`, `dash.select(i)`,
`dash.clear()`, `dash.set(process="ve", n_steps=8, ...)`, `dash.numbers`, `dash.scenario`, `dash.to_code()`,
`dash.save(path)` / `dash.load(path)` (a JSON scenario, see `diffviz.sandbox.check_scenario`).
"""
from __future__ import annotations

import html
import json
import math
import time

import numpy as np
import plotly.graph_objects as go
import torch

from .. import plotting
from .. import sandbox as S
from ..targets.toys import TOY_NAMES
from ..widgets import Dashboard, Row, _ipw, dropdown, fill_batch_edits, slider

HELP = ("Click on the left plot: in mode “add / remove” a click adds a Gaussian bead there and a click on a bead "
        "removes it; in mode “select” a click on a bead selects it (red) and the weight slider sets its weight. "
        "The width slider sets every bead's width w. Pick a toy or a Student-t to start from; “clear” empties the "
        "plot. Dots: the sampler's output p̂; lines: a few trajectories from the start q (circles) to t_min.")
GRID_N = 61  # density grid points per axis on [-VIEW, VIEW]
SAMPLER_OPTIONS = {"Euler–Maruyama (SDE)": "em", "Euler (PF-ODE)": "ode-euler", "Heun (PF-ODE)": "heun",
                   "DDIM": "ddim", "predictor–corrector": "pc"}
DATA_OPTIONS = {"drawn beads": "drawn", "two moons": "moons", "rings": "rings", "checkerboard": "checkerboard",
                "swiss roll": "swissroll", "8 Gaussians": "8gaussians", "Student-t (heavy tails)": "student-t"}
VIEW_ONLY = ("mode", "weight", "t_frac")  # controls that never change the samples


class SandboxDashboard(Dashboard):
    """Controls: click mode, bead width and the selected bead's weight, data, Student-t ν, process, T / σ_T, schedule,
    sampler, steps N, start q, score error ε, seed, and the time t of the marginal plot (as a fraction of T).

    Figures: "data" (the data's density contours, the samples p̂, trajectories, the beads; clickable) and
    "marginal" (the exact noised density p_t at the time slider, with the tracked particles at the nearest
    grid time). Numbers: see `diffviz.sandbox` and the read-out rows.
    """

    title = "Sandbox: your data, every knob, exact scores"
    readout = (
        Row("n_beads", "K", "beads in the target (0: Student-t)", integer=True),
        Row("kl_start", "KL(p<sub>T</sub> ‖ q)", "how far the start q is from the true noised law p_T",
            se="kl_start_se", method="kl_start_exact"),
        Row("kl_samples", "KL(p̂ ‖ p<sub>data</sub>)", "the samples' KL to the data (k-nearest-neighbour entropy)",
            se="kl_samples_se", method="kl_samples_exact", words=("exact", "estimated")),
        Row("nfe", "score evaluations", "per sample: the network calls a trained model would pay", integer=True),
        Row("mean_along_e", "mean of e·x̂", "sample mean along the score error's direction e = (1, 1)/√2",
            se="mean_along_e_se"),
    )

    def __init__(self, n_samples: int = 2000, n_paths: int = 8, **initial):
        self.n_samples = int(n_samples)
        self.n_paths = int(n_paths)
        self.selected: int | None = None
        self._syncing = False
        self._held = False
        self._run_key = None
        self._run = None
        self._density_key = None
        self._code_out = None
        self._last_click = -1.0
        toy_data = initial.pop("data", None) if initial.get("data") in TOY_NAMES else None
        super().__init__(**initial)
        self._attach_clicks()
        if toy_data is not None:
            self.set(data=toy_data)  # loads the toy's beads

    # --- controls and figures ------------------------------------------------------------------------------
    def make_controls(self) -> dict:
        w = _ipw()
        d = S.DEFAULTS
        mode = w.ToggleButtons(options=[("add / remove", "add"), ("select", "select")], value="add",
                               description="click", style={"description_width": "initial", "button_width": "120px"})
        beads = w.Text(value=json.dumps(d["beads"]), description="beads", layout=w.Layout(display="none"))
        return {
            "mode": mode,
            "data": dropdown("data", DATA_OPTIONS, d["data"]),
            "width": slider("bead width w", d["width"], 0.05, 1.5, 0.01),
            "weight": slider("weight of the selected bead", 1.0, -1, 1, 0.05, log=True),
            "df": slider("Student-t ν", d["df"], 1.0, 30.0, 0.5),
            "process": dropdown("process", {"VP": "vp", "sub-VP": "subvp", "VE": "ve"}, d["process"]),
            "T": slider("T (VP, sub-VP)", d["T"], 0.1, 3.0, 0.05),
            "sigma_T": slider("σ_T (VE)", d["sigma_T"], math.log10(0.5), math.log10(200), 0.05, log=True),
            "schedule": dropdown("schedule", list(S.SCHEDULES), d["schedule"]),
            "sampler": dropdown("sampler", SAMPLER_OPTIONS, d["sampler"]),
            "n_steps": slider("steps N", d["n_steps"], 1, 200, integer=True),
            "start": dropdown("start q", {v: k for k, v in S.STARTS.items()}, d["start"]),
            "eps": slider("score error ε (0: exact)", d["eps"], 0.0, 2.0, 0.05),
            "seed": slider("seed", d["seed"], 0, 99, integer=True),
            "t_frac": slider("time t / T of p_t", 0.5, 0.0, 1.0, 0.05),
            "beads": beads,
        }

    def make_figures(self) -> dict:
        v = S.VIEW
        data = plotting.base_figure("Data density, samples p̂ and trajectories", "x₁", "x₂", width=520, height=520)
        data.update_xaxes(range=[-v, v], constrain="domain")
        data.update_yaxes(range=[-v, v], scaleanchor="x")
        data.update_layout(legend=dict(orientation="h", y=-0.15), clickmode="event", hovermode="closest")
        marg = plotting.base_figure("Exact marginal p_t", "x₁", "x₂", width=460, height=520)
        marg.update_yaxes(scaleanchor="x")
        marg.update_layout(legend=dict(orientation="h", y=-0.15))
        return {"data": data, "marginal": marg}

    def _attach_clicks(self):
        """Clicks on the density or the beads (traces 0 and 4 of "data") call `click(x, y)`."""
        fig = self.figures["data"]
        if not hasattr(fig, "batch_update") or len(fig.data) < 5:
            return  # a plain Figure (no frontend): clicks come from code only
        for i in (0, 4):
            fig.data[i].on_click(self._on_click)

    def _on_click(self, trace, points, state):
        """A browser click: plotly may report it on several traces at once (the density and a bead under the
        mouse); act once per click, on its first point (a density grid node: within 0.07 of the mouse)."""
        if not points.xs:
            return
        now = time.monotonic()
        if now - self._last_click < 0.3:
            return
        self._last_click = now
        self.click(float(points.xs[0]), float(points.ys[0]))
        self._last_click = time.monotonic()

    # --- state --------------------------------------------------------------------------------------------------
    @property
    def values(self) -> dict:
        """The control values that change the computation (the click mode and the weight slider act on beads)."""
        return {k: w.value for k, w in self.controls.items() if k not in ("mode", "weight")}

    @property
    def beads(self) -> list:
        """The drawn beads [[x, y, weight], ...] (a toy's beads while a toy is shown)."""
        return json.loads(self.controls["beads"].value)

    @property
    def scenario(self) -> dict:
        """The current state as a scenario dict (diffviz.sandbox.DEFAULTS's fields)."""
        v = {k: w.value for k, w in self.controls.items()}
        out = {k: v[k] for k in S.DEFAULTS if k in v and k != "beads"}
        out.update(beads=self.beads, n_samples=self.n_samples, n_steps=int(v["n_steps"]), seed=int(v["seed"]))
        return {k: out[k] for k in S.DEFAULTS}

    def _set_control(self, name, value):
        if name == "beads" and not isinstance(value, str):
            value = json.dumps([[float(c) for c in p] for p in value])
        super()._set_control(name, value)

    def _on_change(self, change):
        if self._syncing:
            return
        name = next((k for k, w in self.controls.items() if w is change.owner), None)
        self._syncing = True
        try:
            self._side_effects(name, change.new)
        finally:
            self._syncing = False
        if name == "weight" and self.selected is None:
            return
        if not self._held:
            self.update()

    def _side_effects(self, name, new):
        c = self.controls
        if name == "data" and new in TOY_NAMES:
            pts, width = S.toy_beads(new)
            c["beads"].value, c["width"].value = json.dumps(pts), round(width, 2)
            self.selected = None
        elif name == "width" and c["data"].value in TOY_NAMES:
            c["data"].value = "drawn"  # an edited toy is a drawing
        elif name == "beads":
            if c["data"].value != "drawn":
                c["data"].value = "drawn"
            if self.selected is not None and self.selected >= len(self.beads):
                self.selected = None
        elif name == "weight" and self.selected is not None:
            b = self.beads
            b[self.selected][2] = float(new)
            c["beads"].value = json.dumps(b)
            if c["data"].value != "drawn":
                c["data"].value = "drawn"

    def _set_beads(self, b):
        with self._hold():
            self._set_control("beads", b)
        self.update()

    def add_bead(self, x: float, y: float, weight: float = 1.0) -> dict:
        """Add a bead at (x, y) (rounded to 3 decimals, inside the view); update; return the numbers."""
        v = S.VIEW
        if not (-v <= x <= v and -v <= y <= v):
            raise ValueError(f"a bead must lie in [-{v:g}, {v:g}]², got ({x:g}, {y:g})")
        b = self.beads if self.controls["data"].value != "student-t" else []
        b.append([round(float(x), 3), round(float(y), 3), float(weight)])
        self._set_beads(b)
        return dict(self.numbers)

    def remove_bead(self, i: int) -> dict:
        """Remove bead i; update; return the numbers."""
        b = self.beads
        if not 0 <= i < len(b):
            raise ValueError(f"bead index must lie in [0, {len(b) - 1}], got {i}")
        del b[i]
        if self.selected is not None:
            self.selected = None if self.selected == i else self.selected - (self.selected > i)
        self._set_beads(b)
        return dict(self.numbers)

    def select(self, i: int | None) -> None:
        """Select bead i (None: no selection); the weight slider then shows and sets its weight."""
        b = self.beads
        if i is not None and not 0 <= i < len(b):
            raise ValueError(f"bead index must lie in [0, {len(b) - 1}], got {i}")
        self.selected = i
        if i is not None:
            self._syncing = True
            try:
                w = self.controls["weight"]
                w.value = min(max(b[i][2], 10 ** w.min), 10 ** w.max)
            finally:
                self._syncing = False
        self._render_beads()

    def nearest_bead(self, x: float, y: float) -> int | None:
        """Index of the bead within max(w, 0.15) of (x, y), the nearest one; None if there is none."""
        if self.controls["data"].value == "student-t":
            return None
        b = np.asarray(self.beads, dtype=float).reshape(-1, 3)
        if not len(b):
            return None
        dist = np.hypot(b[:, 0] - x, b[:, 1] - y)
        i = int(dist.argmin())
        return i if dist[i] <= max(float(self.controls["width"].value), 0.15) else None

    def click(self, x: float, y: float) -> dict:
        """What a click on the data plot at (x, y) does in the current mode (see the module docstring)."""
        i = self.nearest_bead(x, y)
        if self.controls["mode"].value == "select":
            self.select(i)
        elif i is not None:
            self.remove_bead(i)
        else:
            self.add_bead(x, y)
        return dict(self.numbers)

    def clear(self) -> None:
        """Remove every bead (the read-out then asks for a click)."""
        self.selected = None
        with self._hold():
            self.controls["data"].value = "drawn"
            self.controls["beads"].value = "[]"
        self.update()

    def load_scenario(self, scenario: dict) -> dict:
        """Set every control from a scenario dict (checked first); update once; return the numbers."""
        s = S.check_scenario(scenario)
        if s["data"] in TOY_NAMES:  # a toy's beads and width are the toy's (the file's are not used)
            s["beads"], s["width"] = S.toy_beads(s["data"])
            s["width"] = round(s["width"], 2)
        self.n_samples = s["n_samples"]
        self.selected = None
        values = {k: s[k] for k in S.DEFAULTS if k in self.controls}
        with self._hold():
            self._syncing = True
            try:
                for k, v in values.items():
                    self._set_control(k, v)
            finally:
                self._syncing = False
        self.update()
        return dict(self.numbers)

    def save(self, path):
        """Write the current scenario as JSON (diffviz.sandbox.save_scenario); returns the path."""
        return S.save_scenario(self.scenario, path)

    def load(self, path) -> dict:
        """Read a scenario JSON file (a bad file raises ValueError naming the field) and show it."""
        return self.load_scenario(S.load_scenario(path))

    def to_code(self) -> str:
        """A few lines of plain diffviz calls that reproduce the current numbers (same seed)."""
        return S.to_code(self.scenario)

    # --- computing and drawing -----------------------------------------------------------------------------------
    def compute(self, values: dict) -> dict:
        s = S.check_scenario(self.scenario)
        key = json.dumps(s, sort_keys=True)
        if key != self._run_key:
            self._run_key, self._run = None, None
            target, process, grid = S.scenario_parts(s)
            run = S.run(target, process, grid, sampler=s["sampler"], start=s["start"], eps=s["eps"],
                        n_samples=s["n_samples"], seed=s["seed"], n_paths=self.n_paths)
            run.update(target=target, process=process, scenario=s)
            self._run_key, self._run = key, run
        r = self._run
        numbers = dict(r["numbers"])
        numbers["kl_samples_exact"] = False
        t = float(values["t_frac"]) * float(r["process"].T)
        return {"numbers": numbers, "run": r, "t": t}

    def _density(self, target, process, t, half):
        g = np.linspace(-half, half, GRID_N)
        xx, yy = np.meshgrid(g, g)
        pts = torch.tensor(np.stack([xx.ravel(), yy.ravel()], 1), dtype=torch.float64)
        lp = target.log_prob(pts) if t is None else target.log_prob_t(pts, max(t, 1e-4), process)
        return g, np.exp(lp.to(torch.float64).numpy()).reshape(GRID_N, GRID_N)

    def render(self, r: dict) -> None:
        self._last = r
        run, t = r["run"], r["t"]
        target, process, s = run["target"], run["process"], run["scenario"]
        dkey = json.dumps([s["data"], s["beads"], s["width"], s["df"]])
        if dkey != self._density_key:
            self._data_density = self._density(target, process, None, S.VIEW)
            self._density_key = dkey
        g, z = self._data_density
        x = run["samples"].numpy()
        p = run["paths"].numpy()  # (N + 1, n_paths, 2)
        px = np.concatenate([np.append(p[:, j, 0], np.nan) for j in range(p.shape[1])])
        py = np.concatenate([np.append(p[:, j, 1], np.nan) for j in range(p.shape[1])])
        plotting.replace_traces(self.figures["data"], [
            go.Contour(x=g, y=g, z=z, colorscale="Blues", showscale=False, ncontours=14,
                       contours=dict(coloring="fill", showlines=True), line=dict(width=0.5), name="p_data",
                       hovertemplate="(%{x:.2f}, %{y:.2f})<extra>click</extra>"),
            # samples and paths take no hover: a click anywhere reaches the density (or a bead) under the mouse
            go.Scatter(x=x[:, 0], y=x[:, 1], mode="markers", name="samples p̂", hoverinfo="skip",
                       marker=dict(size=3, color="#d62728", opacity=0.45)),
            go.Scatter(x=px, y=py, mode="lines", name="trajectories", line=dict(color="#ff7f0e", width=1),
                       hoverinfo="skip"),
            go.Scatter(x=p[0, :, 0], y=p[0, :, 1], mode="markers", name="starts", hoverinfo="skip",
                       marker=dict(size=6, color="#ff7f0e", symbol="circle-open")),
            self._bead_trace(),
        ])
        self._attach_clicks()
        sampler = plotting.SAMPLER_NAMES.get(s["sampler"], s["sampler"])
        self.figures["data"].layout.title = (
            f"Data, samples p̂, trajectories<br><sup>{s['n_steps']} {sampler} steps, {s['schedule']} grid, "
            f"{S.PROCESSES[s['process']]}, start {S.STARTS[s['start']]}"
            + (f", ε = {s['eps']:g}" if s["eps"] else ", exact score") + "</sup>")
        tt = max(t, 1e-4)
        sigma = float(process.sigma(tt))
        half = max(S.VIEW, 3.0 * float(process.std(tt)))
        g, z = self._density(target, process, t, half)
        times = run["times"].numpy()
        i = int(np.abs(times - t).argmin())
        marg = self.figures["marginal"]
        plotting.replace_traces(marg, [
            go.Contour(x=g, y=g, z=z, colorscale="Purples", showscale=False, ncontours=14,
                       contours=dict(coloring="fill"), line=dict(width=0.5), name="p_t"),
            go.Scatter(x=p[i, :, 0], y=p[i, :, 1], mode="markers", name="tracked particles at the nearest grid time",
                       marker=dict(size=7, color="#ff7f0e")),
        ])
        marg.layout.title = (f"Exact marginal p_t at t = {t:.3g} (σ(t) = {sigma:.3g})<br>"
                             f"<sup>particles at grid time t_{i} = {times[i]:.3g}</sup>")
        marg.update_xaxes(range=[-half, half])
        marg.update_yaxes(range=[-half, half])

    def _bead_trace(self):
        if self.controls["data"].value == "student-t":
            b = np.zeros((0, 3))
        else:
            b = np.asarray(self.beads, dtype=float).reshape(-1, 3)
        px_per_unit = 420 / (2 * S.VIEW)
        size = float(np.clip(2 * float(self.controls["width"].value) * px_per_unit, 6, 60))
        colors = ["#d62728" if i == self.selected else "black" for i in range(len(b))]
        return go.Scatter(x=b[:, 0], y=b[:, 1], mode="markers", name="beads (click to remove)",
                          marker=dict(symbol="circle-open", color=colors, size=size, line=dict(width=2)))

    def _render_beads(self):
        """Redraw the bead markers (after a selection, which changes no number)."""
        if getattr(self, "_last", None) is None:
            return
        fig = self.figures["data"]
        if hasattr(fig, "batch_update"):
            with fig.batch_update():
                self.render(self._last)
                fill_batch_edits(fig)
        else:
            self.render(self._last)

    # --- display -------------------------------------------------------------------------------------------------
    def widget(self):
        """Controls in groups (data, process, sampler), buttons (clear, copy as code, save / load), the read-out,
        the two figures."""
        if self._view is not None:
            return self._view
        w = _ipw()
        c = self.controls
        self._status = w.HTML()
        self._show_status()
        clear = w.Button(description="clear", tooltip="remove every bead")
        copy = w.Button(description="copy as code", tooltip="print the diffviz calls of this state")
        path = w.Text(value="scenario.json", description="file", layout=w.Layout(width="240px"))
        save, load = w.Button(description="save"), w.Button(description="load")
        self._code_out = w.Output()

        def show(text):
            self._code_out.clear_output()
            with self._code_out:
                print(text)

        def on_clear(_):
            self.clear()

        def on_copy(_):
            show(self.to_code())

        def on_save(_):
            show(f"saved {self.save(path.value)}")

        def on_load(_):
            try:
                self.load(path.value)
                show(f"loaded {path.value}")
            except (OSError, ValueError) as err:
                show(f"⚠ {err}")

        clear.on_click(on_clear)
        copy.on_click(on_copy)
        save.on_click(on_save)
        load.on_click(on_load)
        rows = [
            w.HBox([c["mode"], clear, copy, path, save, load]),
            w.HBox([c["data"], c["width"], c["weight"], c["df"]]),
            w.HBox([c["process"], c["T"], c["sigma_T"], c["schedule"]]),
            w.HBox([c["sampler"], c["n_steps"], c["start"], c["eps"]]),
            w.HBox([c["seed"], c["t_frac"], c["beads"]]),
        ]
        self._view = w.VBox([w.HTML(f"<b>{html.escape(self.title)}</b>"),
                             w.HTML(f'<span style="font-size:12px;color:#555">{html.escape(HELP)}</span>'),
                             *rows, self._status, self._code_out,
                             w.HBox(list(self.figures.values()), layout=w.Layout(flex_flow="row wrap"))])
        return self._view
