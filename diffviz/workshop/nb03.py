"""Exercises of notebook 03 (schedules). Solutions: the cells tagged `solution` in notebooks/03_schedules.py."""
from __future__ import annotations

import torch

from . import checkers as C
from .core import exercise

SMALL_LAM, N_EULER = 0.01, 5
DASH_LAM, DASH_KL = 1.0, 1e-2


def _euler_ratio():
    from diffviz import schedules, theory
    from diffviz.experiments import schedules as E

    process = E.sun_process()
    _, var = theory.sampler_moments(process, schedules.uniform(process, N_EULER), [SMALL_LAM], method="ode-euler",
                                    init="exact")
    r = float(var[0]) / SMALL_LAM
    word = "over" if r > 1 else "under"
    return word, (f"{N_EULER} PF-ODE Euler steps give λ̂/λ = {r:.3f} on N(0, {SMALL_LAM:g}): they "
                  f"{word}-disperse (exact, theory.sampler_moments)")


exercise(
    id="03.q3", kind="predict", title="Does PF-ODE Euler under-disperse too?",
    statement=f"""
    DDIM always under-disperses. Predict, before the table below: do {N_EULER} PF-ODE Euler steps on the uniform
    grid, started from the exact $p_T$, **over**- or **under**-disperse Gaussian data $N(0, {SMALL_LAM:g})$?
    Set `prediction` to "over" or "under".
    """,
    hints=("Euler reads the contraction rate of the ODE at the noisy end of each step.",
           "For small λ the variance of $p_t$ falls to λ only in the last stretch near the data."),
    checker=C.predict({"over": ["over-disperse", "overdisperse", "wider"],
                       "under": ["under-disperse", "underdisperse", "narrower"]}, _euler_ratio),
    answer_name="prediction",
    wrong_answers=[("the other choice", "under", None), ("not a choice", "sideways", "choice"),
                   ("a number", 3.4, "type")],
)


def _first_n_below():
    from diffviz.experiments import schedules as E

    process = E.sun_process()
    n = 1
    while E.exact_kl("uniform", n, DASH_LAM, process) >= DASH_KL:
        n += 1
    return n


def _dashboard():
    from diffviz.dashboards.schedules import SchedulesDashboard

    return SchedulesDashboard(n_samples=200, lam=4.0, n_steps=32)


exercise(
    id="03.q4", kind="dashboard", title="How many DDIM steps on the uniform grid?",
    statement=f"""
    On the dashboard of §6 set λ = {DASH_LAM:g} and the **uniform** grid, and move N to the smallest step count
    whose exact KL is below {DASH_KL:g}. Set `answer` to the dashboard itself; within one step counts.
    """,
    hints=("Read the row KL(N(0, λ) ‖ p̂) of the read-out while you move N.",
           "`dash.set(lam=1.0, schedule='uniform', n_steps=...)` moves it from code; "
           "`dash.numbers['kl_exact']` reads the KL."),
    checker=C.dashboard(_first_n_below, "n_steps", tol=1, require={"lam": DASH_LAM, "schedule": "uniform"},
                        label="N"),
    answer_name="answer",
    context=lambda: {"dash": _dashboard()},
    wrong_answers=[("N far too small", 5, None), ("N far too large", 80, None)],
)


# --- 03.q1: the N⁻² constant of the tangent law, as a function of λ (§2) ----------------------------
CONST_LAMS = (4.0, 0.01, 1.0, 100.0)


def _psi_ends(lam, *, sqrt_lam=True, sigma_min=True):
    import math

    from diffviz.experiments import schedules as E

    process = E.sun_process()
    r = math.sqrt(lam) if sqrt_lam else lam
    s_max, s_min = float(process.sigma(process.T)), float(process.sigma(process.t_min))
    return math.atan(s_max / r), (math.atan(s_min / r) if sigma_min else 0.0)


def _tangent_constant(lam):
    from diffviz.experiments import schedules as E

    return E.asymptotic_constant("tangent", lam, E.sun_process())


def _const_slip(lam, power=4, **kw):
    hi, lo = _psi_ends(lam, **kw)
    return 0.25 * (hi - lo) ** power


_SQUARE_ONLY = "the constant is ¼(ψ₀ − ψ_N)⁴: (∫ψ′² du)² with ∫ψ′² du = (ψ₀ − ψ_N)², a fourth power"
_LAM_NOT_SQRT = "ψ = arctan(σ/√λ): λ where √λ is due"
_PSI_N_ZERO = "ψ_N is not 0 here: σ_N = σ(t_min) > 0"

exercise(
    id="03.q1", kind="closed-form", title="The N⁻² constant of the tangent law",
    statement="""
    Write `tangent_constant(lam)`: the limit of $N^2\\,\\mathrm{KL}$ for the tangent law, $\\frac14(\\psi_0 -
    \\psi_N)^4$, as a function of the eigenvalue $\\lambda$, for this notebook's `process` (its grids run from
    $t_0 = T$ to $t_N = t_{\\min}$). It is checked at several $\\lambda$.
    """,
    hints=("$\\psi_i = \\arctan(\\sigma_i/\\sqrt\\lambda)$; the ends are $\\sigma_0 = \\sigma(T)$ and "
           "$\\sigma_N = \\sigma(t_{\\min})$: `process.sigma(process.T)`, `process.sigma(process.t_min)`.",
           "The tangent law has $\\psi$ linear in $u$, so $\\int_0^1\\psi'^2 du = (\\psi_0 - \\psi_N)^2$ and the "
           "constant $\\frac14(\\int\\psi'^2)^2$ is $\\frac14(\\psi_0 - \\psi_N)^4$."),
    checker=C.function(_tangent_constant, [(lam,) for lam in CONST_LAMS], rtol=1e-8, what="your constant",
                       alternatives={_SQUARE_ONLY: lambda lam: _const_slip(lam, power=2),
                                     _LAM_NOT_SQRT: lambda lam: _const_slip(lam, sqrt_lam=False),
                                     _PSI_N_ZERO: lambda lam: _const_slip(lam, sigma_min=False)}),
    answer_name="tangent_constant",
    context=lambda: {"process": _sun()},
    wrong_answers=[
        ("½ for ¼", lambda lam: 2 * _const_slip(lam), "double"),
        ("(ψ₀ − ψ_N)² only", lambda lam: _const_slip(lam, power=2), _SQUARE_ONLY),
        ("arctan(σ/λ)", lambda lam: _const_slip(lam, sqrt_lam=False), _LAM_NOT_SQRT),
        ("ψ_N = 0", lambda lam: _const_slip(lam, sigma_min=False), _PSI_N_ZERO),
        ("a number, not a function", 1.47, "type"),
    ],
)


# --- 03.q2: the tangent-law grid, as a function of N and λ (§2) ------------------------------------
GRID_CASES = ((4, 4.0), (16, 4.0), (7, 0.01), (32, 100.0))


def _sun():
    from diffviz.experiments import schedules as E

    return E.sun_process()


def _tangent_grid(n, lam):
    from diffviz.experiments import schedules as E

    return E.make_grid("tangent", _sun(), n, lam)


def _grid_slip(n, lam, *, points=None, sqrt_lam=True, reverse=False):
    """The tangent grid with `points` points (N + 1 by default), or with λ for √λ, or in increasing order."""
    import math

    import torch

    process = _sun()
    r = math.sqrt(lam) if sqrt_lam else lam
    s_max, s_min = float(process.sigma(process.T)), float(process.sigma(process.t_min))
    psi = torch.linspace(math.atan(s_max / r), math.atan(s_min / r), n + 1 if points is None else points,
                         dtype=torch.float64)
    t = process.t_of_sigma(r * torch.tan(psi))
    t[0], t[-1] = process.T, process.t_min
    return t.flip(0) if reverse else t


_REVERSED = "the grid runs the wrong way: t_0 = T (the noisiest) first, t_N = t_min last"
_GRID_LAM = "σ_i = √λ tan ψ_i with ψ = arctan(σ/√λ): λ where √λ is due"

exercise(
    id="03.q2", kind="code", title="The tangent-law grid",
    statement="""
    Write `tangent_grid(n, lam)`: the $N$-step tangent-law grid of `process` for the eigenvalue $\\lambda$, as a
    float64 tensor of times $t_0 = T > t_1 > \\dots > t_N = t_{\\min}$ ($N$ steps, so $N + 1$ points), built from
    $\\psi_i$ evenly spaced between $\\psi_0 = \\arctan(\\sigma(T)/\\sqrt\\lambda)$ and
    $\\psi_N = \\arctan(\\sigma(t_{\\min})/\\sqrt\\lambda)$. Use `process.sigma` and `process.t_of_sigma` (σ to time),
    not `schedules.tangent`. It is checked at several $N$ and $\\lambda$.
    """,
    hints=("$N$ steps have $N + 1$ points: `torch.linspace(psi_0, psi_N, n + 1, dtype=torch.float64)`.",
           "Back from angles to noise levels, $\\sigma_i = \\sqrt\\lambda\\tan\\psi_i$, then to times with "
           "`process.t_of_sigma(sigma)`."),
    checker=C.function(_tangent_grid, GRID_CASES, rtol=1e-9, atol=1e-12, off_by_one=0, dtype=torch.float64,
                       what="your grid", alternatives={_REVERSED: lambda n, lam: _grid_slip(n, lam, reverse=True),
                                                       _GRID_LAM: lambda n, lam: _grid_slip(n, lam, sqrt_lam=False)}),
    answer_name="tangent_grid",
    context=lambda: {"process": _sun()},
    wrong_answers=[
        ("N points instead of N + 1", lambda n, lam: _grid_slip(n, lam, points=n), "off-by-one"),
        ("N + 2 points", lambda n, lam: _grid_slip(n, lam, points=n + 2), "off-by-one"),
        ("increasing times", lambda n, lam: _grid_slip(n, lam, reverse=True), _REVERSED),
        ("λ for √λ", lambda n, lam: _grid_slip(n, lam, sqrt_lam=False), _GRID_LAM),
        ("float32", lambda n, lam: _tangent_grid(n, lam).float(), "dtype"),
    ],
)
