"""Example sweeps shipped with diffviz: small, closed-form or seconds-long stand-ins for the notebooks' experiments.

Each example is a plain function `f(**parameters) -> {figure name: float}` plus a default grid, runnable as
`diffviz sweep <name> --out results.parquet` (see `diffviz.sweep`). They are deliberately small and
self-contained (only `diffviz.processes`, `diffviz.schedules`, `diffviz.rng`); the notebooks hold the full
experiments (trained scores, learned initializations, plots), and these functions may later call
`diffviz.theory` / `diffviz.samplers` instead of their inline formulas.

- "diffusion-time"   (Franzese et al., docs/theory.md §5): the closed-form toy bound on a VP horizon T for data
                     N(0, lam) and a constant score error eps2 (derived).
- "initialization"   (Fassina et al., docs/theory.md §6 with §4.3's exact recursion): KL(data || VE Euler PF-ODE
                     output) for Gaussian data, started from the prior N(0, sigma_T^2) or from the exact p_T.
- "phase-transition" (Aranguri et al., docs/theory.md §8): a two-mode Gaussian mixture sampled with the exact
                     posterior means along an interpolant, uniform vs dilated schedule; returns p_hat, sigma2_hat.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .checks import check_choice, check_int, check_positive, check_range
from .processes import VE, VP, Interpolant
from .rng import make_generator, randn
from .schedules import make_grid


@dataclass(frozen=True)
class Example:
    """A shipped sweep: the function as "module:function", its default grid and a one-line description."""

    function: str
    grid: dict = field(default_factory=dict)
    description: str = ""


def diffusion_time(T: float, lam: float = 4.0, eps2: float = 0.01, beta_min: float = 0.1,
                   beta_max: float = 20.0) -> dict:
    """Toy bound on KL(data || model) for data N(0, lam), VP horizon T, score error eps2 (docs/theory.md §5.2, derived).

    bound = ½[u a - ln(1 + u a)] + ½ eps2 B(T), u = m(T)^2 = exp(-B(T)), a = lam - 1 (per dimension).
    """
    lam = check_positive("lam", lam)
    eps2 = check_range("eps2", eps2, 0.0)
    process = VP(beta_min=beta_min, beta_max=beta_max, T=T)
    B = float(process.B(process.T))
    ua = math.exp(-B) * (lam - 1.0)
    kl_prior = 0.5 * (ua - math.log1p(ua))
    score_term = 0.5 * eps2 * B
    return {"bound": kl_prior + score_term, "kl_prior": kl_prior, "score_term": score_term, "B_T": B}


def _kl_gauss_1d(var_p: float, var_q: float) -> float:
    """KL(N(0, var_p) || N(0, var_q)) = ½[r - 1 - ln r], r = var_p / var_q."""
    r = var_p / var_q
    return 0.5 * (r - 1.0 - math.log(r))


def initialization(sigma_T: float, steps: int = 30, init: str = "prior", lam: float = 1.0, d: int = 100,
                   schedule: str = "uniform") -> dict:
    """KL(N(0, lam I_d) || output of the VE Euler PF-ODE with the exact score), started from `init`.

    Exact per-eigenvalue recursion (docs/theory.md §4.3): from t to t - h, a = 1 - h(f + ½ g^2 / v_t), V <- a^2 V,
    v_t = m^2 lam + s^2 (the PF-ODE drift f x - ½ g^2 score with score = -x / v_t). init = "prior" starts
    from N(0, sigma_T^2) (diffviz's VE prior), "exact" from p_T = N(0, lam + sigma_T^2).
    """
    init = check_choice("init", init, {"prior", "exact"})
    lam = check_positive("lam", lam)
    d = check_int("d", d)
    process = VE(sigma_T=sigma_T)
    ts = make_grid(schedule, process, check_int("steps", steps))
    v = process.mean_scale(ts) ** 2 * lam + process.var(ts)  # marginal variance along the grid
    f, g2 = process.f(ts), process.g2(ts)
    V = float(v[0]) if init == "exact" else process.sigma_T ** 2
    kl_init = d * _kl_gauss_1d(float(v[0]), V)
    for i in range(len(ts) - 1):
        h = float(ts[i] - ts[i + 1])
        a = 1.0 - h * (float(f[i]) + 0.5 * float(g2[i]) / float(v[i]))
        V = a * a * V
    return {"kl": d * _kl_gauss_1d(lam, V), "kl_init": kl_init, "var_out": V, "T": process.T}


def phase_transition(d: int = 1000, steps: int = 30, schedule: str = "uniform", kind: str = "vp",
                     n: int = 400, p: float = 0.7, sigma2: float = 1.0, kappa: float = 3.0, seed: int = 0) -> dict:
    """Two-mode mixture x_1 = s mu + sigma eta (P(s = +1) = p, mu = 1 vector) sampled by the interpolant PF-ODE.

    Euler in Aranguri's time u (noise -> data): X <- X + du tau'(u) [alpha' E[z|X] + beta' E[x_1|X]] with the
    exact posterior means (docs/theory.md §8.2): D = alpha^2 + sigma^2 beta^2, E[s|x] = tanh(h + beta mu.x / D),
    E[x_1|x] = (beta sigma^2 / D) x + (alpha^2 / D) mu E[s|x], E[z|x] = (alpha / D)(x - beta mu E[s|x]).
    Returns p_hat = P(mu.X > 0) (target p) and sigma2_hat = mean |X - sign(mu.X) mu|^2 / d (target sigma2).
    """
    d = check_int("d", d)
    n = check_int("n", n)
    p = check_range("p", p, 0.0, 1.0, low_open=True, high_open=True)
    sigma2 = check_positive("sigma2", sigma2)
    schedule = check_choice("schedule", schedule, {"uniform", "dilated"})
    process = Interpolant(kind=kind, dilation="none" if schedule == "uniform" else "dilated", d=d, kappa=kappa)
    h_field = 0.5 * math.log(p / (1.0 - p))
    gen = make_generator(seed)
    x = process.prior_std() * randn((n, d), generator=gen, dtype=torch.float64)
    us = torch.linspace(0.0, 1.0, check_int("steps", steps) + 1, dtype=torch.float64)
    for i in range(len(us) - 1):
        u, du = us[i], float(us[i + 1] - us[i])
        tau = process.tau(u)
        alpha, beta = float(process.alpha(tau)), float(process.beta(tau))
        D = alpha ** 2 + sigma2 * beta ** 2
        proj = x.sum(dim=1, keepdim=True)  # mu . x with mu the all-ones vector
        s_hat = torch.tanh(h_field + beta * proj / D)
        x1_hat = (beta * sigma2 / D) * x + (alpha ** 2 / D) * s_hat
        eps_hat = (alpha / D) * (x - beta * s_hat)
        x = x + du * process.velocity(eps_hat, x1_hat, u)
    proj = x.sum(dim=1)
    sign = torch.where(proj > 0, 1.0, -1.0).to(x.dtype)
    sigma2_hat = ((x - sign[:, None]) ** 2).sum(dim=1).mean() / d
    return {"p_hat": float((proj > 0).double().mean()), "sigma2_hat": float(sigma2_hat), "p": p, "sigma2": sigma2}


EXAMPLES: dict[str, Example] = {
    "diffusion-time": Example(
        "diffviz.sweeps_examples:diffusion_time",
        {"T": [round(0.1 * k, 1) for k in range(1, 11)], "lam": [0.25, 4.0], "eps2": [0.001, 0.01, 0.1]},
        "Franzese toy bound vs VP horizon T, data variance lam and score error eps2 (closed form)"),
    "initialization": Example(
        "diffviz.sweeps_examples:initialization",
        {"sigma_T": [2.0, 7.0, 80.0], "steps": [10, 30, 100], "init": ["prior", "exact"]},
        "KL of the VE Euler PF-ODE output on Gaussian data vs sigma_T, steps and initialization (exact recursion)"),
    "phase-transition": Example(
        "diffviz.sweeps_examples:phase_transition",
        {"d": [100, 1000], "steps": [10, 30, 100], "schedule": ["uniform", "dilated"], "kind": ["vp", "ve"]},
        "p_hat and sigma2_hat of a two-mode mixture, uniform vs dilated interpolant schedules (simulation)"),
}
