"""Exercises of notebook 03 (schedules). Solutions: the cells tagged `solution` in notebooks/03_schedules.py."""
from __future__ import annotations

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
    id="03.q1", kind="predict", title="Does PF-ODE Euler under-disperse too?",
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
    id="03.q2", kind="dashboard", title="How many DDIM steps on the uniform grid?",
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
