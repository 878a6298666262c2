"""Scheduling on a Gaussian source (Sun, Poor, Zhang): exact KL of DDIM after N steps for each time grid.

Data N(0, diag(lam)), the exact score, DDIM (eta = 0) started from the exact p_T on a VP process with
alpha_bar = m(t)^2 and a tiny t_min. Per eigendirection the output variance is lam * prod cos^2(dpsi_i),
psi = arctan(sigma / sqrt(lam)), so KL(data || output) = 1/2 (rho - 1 - ln rho), rho = prod sec^2(dpsi_i)
(`theory.ddim_kl_closed_form`), and KL ~ (int psi'^2 du)^2 / (4 N^2): the tangent grid (psi linear in u)
minimises it.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .. import schedules, theory
from ..checks import check_choice, check_int
from ..processes import VP
from ..samplers import ddim

GRIDS = ("uniform", "quadratic", "cosine", "karras", "tangent")


def sun_process(T: float = 1.0, t_min: float = 1e-5) -> VP:
    """VP with beta in [0.1, 20] ending at t_min = 1e-5 (sigma_min = 1e-3, alpha_bar_N = 1 - 1e-6).

    Sun et al. end at alpha_bar = 1 exactly; a tiny sigma_min keeps every grid's alpha_bar strictly increasing
    in float64 (Karras' grid otherwise puts its last points at sigma ~ 1e-14, where alpha_bar rounds to 1).
    """
    return VP(T=T, t_min=t_min)


def make_grid(name: str, process, n_steps: int, lam) -> torch.Tensor:
    """The grid `name` with n_steps steps; the tangent law uses the eigenvalue(s) `lam`."""
    check_choice("schedule", name, GRIDS)
    if name == "tangent":
        return schedules.tangent(process, n_steps, lam=lam)
    return schedules.make_grid(name, process, n_steps)


def alpha_bar(process, grid) -> torch.Tensor:
    """alpha_bar_i = m(t_i)^2 along a decreasing time grid (increasing alpha_bar: noisiest first)."""
    return process.mean_scale(grid) ** 2


def exact_kl(name: str, n_steps: int, lam, process=None, *, grid_lam=None) -> float:
    """Exact KL(data || DDIM output) summed over the eigenvalues `lam`, grid `name` (tangent tuned to grid_lam)."""
    process = process or sun_process()
    lam_t = torch.as_tensor(lam, dtype=torch.float64).reshape(-1)
    grid = make_grid(name, process, n_steps, lam_t if grid_lam is None else grid_lam)
    return float(torch.as_tensor(theory.ddim_kl_closed_form(alpha_bar(process, grid), lam_t)).sum())


def kl_curves(lam, step_counts, names=GRIDS, process=None) -> dict:
    """{grid name: array of exact KLs over step_counts}."""
    return {name: np.array([exact_kl(name, n, lam, process) for n in step_counts]) for name in names}


def asymptotic_constant(name: str, lam: float, process=None, *, n_fine: int = 20_000) -> float:
    """lim N^2 KL = (int_0^1 psi'(u)^2 du)^2 / 4 for the grid `name` (its continuum limit, u = i/N)."""
    process = process or sun_process()
    sig = process.sigma(make_grid(name, process, n_fine, lam))
    return theory.psi_action(sig, lam) ** 2 / 4


def simulate(name: str, n_steps: int, lam: float, n_samples: int, *, process=None, generator=None,
             device=None) -> dict:
    """Run DDIM with the exact score from the exact p_T; compare the sample variance with the closed form.

    Returns var_sim, var_exact, kl_sim (plug-in KL from the sample variance), kl_exact and kl_se, the
    delta-method standard error of kl_sim: |dKL/dv| v sqrt(2/n).
    """
    process = process or sun_process()
    n = check_int("n_samples", n_samples, 2)
    grid = make_grid(name, process, n_steps, lam)
    t0 = float(grid[0])
    v0 = float(process.mean_scale(t0)) ** 2 * lam + float(process.std(t0)) ** 2
    x = math.sqrt(v0) * torch.randn(n, 1, generator=generator, dtype=torch.float64,
                                    device=device if generator is None else generator.device)

    v = dict(zip(grid.tolist(), (process.mean_scale(grid) ** 2 * lam + process.var(grid)).tolist()))

    def score(y, t):  # exact score of N(0, m^2 lam + s^2), tabulated on the grid
        return -y / v[t]

    out = ddim(score, process, x, grid)
    var_sim = float(out.var())
    ab = alpha_bar(process, grid)
    var_exact = float(theory.ddim_variance_closed_form(ab, lam))
    kl_exact = float(theory.ddim_kl_closed_form(ab, lam))
    rho = lam / var_sim
    kl_sim = 0.5 * (rho - 1 - math.log(rho))
    dkl_dv = 0.5 * (-lam / var_sim ** 2 + 1 / var_sim)
    return {"var_sim": var_sim, "var_exact": var_exact, "kl_sim": kl_sim, "kl_exact": kl_exact,
            "kl_se": abs(dkl_dv) * var_sim * math.sqrt(2 / n), "samples": out[:, 0]}


def multi_eigen_table(eigvals, step_counts, process=None) -> dict:
    """Several eigenvalues: summed exact KL for uniform, cosine, Karras, tangent tuned to the mean eigenvalue,
    and the multi-eigenvalue tangent law Phi (derived)."""
    process = process or sun_process()
    lam = torch.as_tensor(eigvals, dtype=torch.float64)
    rows = {"uniform": [], "cosine": [], "karras": [], "tangent (mean λ)": [], "tangent Φ (all λ)": []}
    for n in step_counts:
        rows["uniform"].append(exact_kl("uniform", n, lam, process))
        rows["cosine"].append(exact_kl("cosine", n, lam, process))
        rows["karras"].append(exact_kl("karras", n, lam, process))
        rows["tangent (mean λ)"].append(exact_kl("tangent", n, lam, process, grid_lam=float(lam.mean())))
        rows["tangent Φ (all λ)"].append(exact_kl("tangent", n, lam, process, grid_lam=lam))
    return {k: np.array(v) for k, v in rows.items()}
