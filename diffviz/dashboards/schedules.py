"""Dashboard for notebook 3: exact KL of DDIM against the step count, per time grid, on a Gaussian source."""
from __future__ import annotations

import math

import numpy as np
import torch

from .. import plotting
from ..experiments import schedules as E
from ..widgets import Dashboard, Row, dropdown, slider

STEP_COUNTS = np.unique(np.round(np.logspace(0, math.log10(300), 24)).astype(int))


class SchedulesDashboard(Dashboard):
    """Controls: eigenvalue lam, step count N, schedule, seed. Shows exact KL-vs-N curves for every grid with
    the current (N, KL) marked, the simulated KL beside it, the chosen grid's noise levels, and the output law."""

    title = "Scheduling on a Gaussian source (Sun, Poor, Zhang): exact KL after N DDIM steps"
    readout = (
        Row("kl_exact", "KL(N(0, λ) ‖ p̂)", "exact KL of the DDIM output after N steps on the chosen grid"),
        Row("kl_simulated", "KL̂(N(0, λ) ‖ p̂)", "the same KL estimated from the simulated samples",
            se="kl_simulated_se"),
        Row("kl_exact_tangent", "KL, tangent grid", "exact KL after N steps on the tangent-law grid (best for one λ)"),
        Row("N2_times_kl", "N² · KL", "levels off at the constant of the N⁻² law as N grows"),
    )

    def __init__(self, n_samples: int = 4000, **initial):
        self.n_samples = n_samples
        self.process = E.sun_process()
        self._curves_for = None
        super().__init__(**initial)

    def make_controls(self):
        return {
            "lam": slider("eigenvalue λ", 4.0, -2, 2, 0.05, log=True),
            "n_steps": slider("steps N", 10, 1, 300, integer=True),
            "schedule": dropdown("schedule", list(E.GRIDS), "uniform"),
            "seed": slider("seed", 0, 0, 99, integer=True),
        }

    def make_figures(self):
        return {
            "kl": plotting.base_figure("Exact KL(N(0, λ) ‖ p̂) after N DDIM steps", "DDIM steps N", "KL (nats)",
                                       log_x=True, log_y=True),
            "grid": plotting.base_figure("Noise-to-signal ratio along the grid", "i / N", "s(t_i) / m(t_i)",
                                         log_y=True),
            "law": plotting.base_figure("Output of DDIM (simulated) vs the data N(0, λ)", "x", "density"),
        }

    def compute(self, values):
        lam, n, name = float(values["lam"]), int(values["n_steps"]), values["schedule"]
        if self._curves_for != lam:  # the theory curves depend on lam only
            self._curves = E.kl_curves(lam, STEP_COUNTS, process=self.process)
            self._curves_for = lam
        gen = torch.Generator().manual_seed(int(values["seed"]))
        sim = E.simulate(name, n, lam, self.n_samples, process=self.process, generator=gen)
        grid = E.make_grid(name, self.process, n, lam)
        tangent = E.make_grid("tangent", self.process, n, lam)
        numbers = {
            "kl_exact": sim["kl_exact"],
            "kl_simulated": sim["kl_sim"],
            "kl_simulated_se": sim["kl_se"],
            "kl_exact_tangent": E.exact_kl("tangent", n, lam, self.process),
            "N2_times_kl": n ** 2 * sim["kl_exact"],
        }
        return {"numbers": numbers, "lam": lam, "n": n, "name": name, "sim": sim,
                "sigma": self.process.sigma(grid), "sigma_tangent": self.process.sigma(tangent)}

    def render(self, r):
        kl, gridfig, law = self.figures["kl"], self.figures["grid"], self.figures["law"]
        traces = [plotting.line(STEP_COUNTS, self._curves[g], name=g, color=plotting.PALETTE[i])
                  for i, g in enumerate(E.GRIDS)]
        traces.append(plotting.marker(r["n"], r["numbers"]["kl_exact"], name=f"{r['name']}, N={r['n']} (exact)"))
        sim_kl = max(r["numbers"]["kl_simulated"], 1e-12)
        traces.append(plotting.marker(r["n"], sim_kl, name="simulated", color="#d62728", symbol="circle-open"))
        plotting.replace_traces(kl, traces)
        u = np.linspace(0, 1, r["n"] + 1)
        plotting.replace_traces(gridfig, [
            plotting.line(u, r["sigma"], name=r["name"], mode="lines+markers", color=plotting.PALETTE[0]),
            plotting.line(u, r["sigma_tangent"], name="tangent law", dash="dot", color=plotting.PALETTE[4]),
        ])
        xs = np.linspace(-4, 4, 200) * math.sqrt(r["lam"])
        dens = np.exp(-xs ** 2 / (2 * r["lam"])) / math.sqrt(2 * math.pi * r["lam"])
        plotting.replace_traces(law, [
            plotting.histogram(r["sim"]["samples"], name="DDIM output", nbins=50),
            plotting.line(xs, dens, name="data N(0, λ)", color="black"),
        ])
