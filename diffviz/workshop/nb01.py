"""Exercises of notebook 01 (diffusion time). Solutions: the cells tagged `solution` in notebooks/01_diffusion_time.py."""
from __future__ import annotations

import math

from . import checkers as C
from .core import exercise, lazy

TOY_LAM, TOY_T = 4.0, 0.3  # the Gaussian toy of §1 (λ = LAM) at the small horizon T_SMALL of §4


def _endpoint_kl():
    from diffviz import theory

    return theory.franzese_bound_terms(TOY_T, TOY_LAM, 0.0)[0]


def _with_m_for_u():
    from diffviz import VP

    u, a = float(VP().mean_scale(TOY_T)), TOY_LAM - 1
    return 0.5 * (u * a - math.log1p(u * a))


exercise(
    id="01.q1", kind="closed-form", title="The endpoint KL of the Gaussian toy",
    statement="""
    Data $N(0, \\lambda)$ with $\\lambda = 4$, VP process stopped at $T = 0.3$. Compute the endpoint term
    $\\mathrm{KL}(p_T \\,\\|\\, p_\\infty)$ as a float `kl_endpoint`, from the closed form
    $\\tfrac12[ua - \\ln(1 + ua)]$ with $u = m(T)^2$ and $a = \\lambda - 1$.
    """,
    hints=("$p_T = N(0, m^2\\lambda + s^2)$ and $p_\\infty = N(0, 1)$; for VP, $m^2\\lambda + s^2 = 1 + ua$.",
           "$u = m(T)^2 = e^{-B(T)}$ with $B(T) = 0.1\\,T + \\tfrac12 (20 - 0.1)\\,T^2$."),
    checker=C.number(_endpoint_kl, rtol=1e-9, alternatives={"u = m(T) where u = m(T)² is due": _with_m_for_u}),
    answer_name="kl_endpoint",
    wrong_answers=[
        ("the ½ forgotten", lazy(lambda: 2 * _endpoint_kl()), "double"),
        ("the two terms swapped (a sign error)", lazy(lambda: -_endpoint_kl()), "sign"),
        ("u = m(T) instead of m(T)²", lazy(_with_m_for_u), "u = m(T) where u = m(T)² is due"),
        ("a string", "0.1", "type"),
    ],
)


# --- 01.q2: T* as a function of (λ, ε²) ---------------------------------------------------------------------
BETA_MIN, BETA_MAX = 0.1, 20.0  # the VP schedule of the notebook (diffviz.VP's defaults)
TSTAR_CASES = [(4.0, 0.01), (4.0, 0.0025), (9.0, 0.04), (2.0, 0.02), (0.25, 0.01)]  # all with an interior T*


def _t_star_ref(lam, eps2):
    from diffviz import VP, theory

    return theory.franzese_optimal_T_vp_closed_form(lam, eps2, VP())


def _t_star_slip(lam, eps2, *, g_factor=1.0, u_power=2, b_half=0.5):
    """T* with a typical slip: g_factor = 2 (the ½ of G forgotten), u_power = 1 (u = m(T)), b_half = 1 (B without ½)."""
    a, e2 = lam - 1.0, g_factor * eps2
    u = (e2 * a + abs(a) * math.sqrt(e2) * math.sqrt(e2 + 4)) / (2 * a * a)  # u* = m(T*)² (or m(T*) with the slip)
    B = -math.log(u) * 2 / u_power
    c = b_half * (BETA_MAX - BETA_MIN)
    return (-BETA_MIN + math.sqrt(BETA_MIN ** 2 + 4 * c * B)) / (2 * c)


exercise(
    id="01.q2", kind="closed-form", title="The optimal horizon T* in closed form",
    statement="""
    Write `optimal_T(lam, eps2)`: the optimal horizon $T^*$ of the Gaussian toy (data $N(0, \\lambda)$, constant
    squared score error $\\varepsilon^2$, VP with $\\beta$ from 0.1 to 20). Solve the stationary condition
    $a^2u^2 = \\varepsilon^2(1 + ua)$ for $u = m(T)^2 = e^{-B(T)}$ (the positive root), then invert
    $B(T) = 0.1\\,T + \\tfrac12(20 - 0.1)\\,T^2$. The check compares it with diffviz at several $(\\lambda, \\varepsilon^2)$,
    $\\lambda < 1$ included.
    """,
    hints=("A quadratic in $u$: $a^2u^2 - \\varepsilon^2 a\\,u - \\varepsilon^2 = 0$; take the root with $u > 0$.",
           "$u^* = \\big(\\varepsilon^2 a + |a|\\,\\varepsilon\\sqrt{\\varepsilon^2 + 4}\\big)/(2a^2)$; then "
           "$B^* = -\\ln u^*$.",
           "$B(T) = B^*$ is a quadratic in $T$: $T^* = \\big(-0.1 + \\sqrt{0.1^2 + 2(20 - 0.1)B^*}\\big)/(20 - 0.1)$."),
    checker=C.function(_t_star_ref, TSTAR_CASES, rtol=1e-8, what="your optimal_T", alternatives={
        "u = m(T) where u = m(T)² is due": lambda lam, e2: _t_star_slip(lam, e2, u_power=1),
        "the ½ of G = ½ε²B(T) is missing": lambda lam, e2: _t_star_slip(lam, e2, g_factor=2.0),
        "the ½ in B(T) = 0.1 T + ½(20 − 0.1) T² is missing": lambda lam, e2: _t_star_slip(lam, e2, b_half=1.0)}),
    answer_name="optimal_T",
    wrong_answers=[
        ("u = m(T) instead of m(T)²", lambda lam, e2: _t_star_slip(lam, e2, u_power=1),
         "u = m(T) where u = m(T)² is due"),
        ("the ½ of G forgotten", lambda lam, e2: _t_star_slip(lam, e2, g_factor=2.0), "the ½ of G = ½ε²B(T) is missing"),
        ("the ½ of B(T) forgotten", lambda lam, e2: _t_star_slip(lam, e2, b_half=1.0),
         "the ½ in B(T) = 0.1 T + ½(20 − 0.1) T² is missing"),
        ("a number, not a function", 0.58, "type"),
    ],
)


# --- 01.q3: predict how T* moves with ε -------------------------------------------------------------------
def _t_star_moves():
    from diffviz import VP, theory

    eps_a, eps_b = 0.1, 0.05
    a, b = (theory.franzese_optimal_T_vp_closed_form(TOY_LAM, e ** 2, VP()) for e in (eps_a, eps_b))
    return ("up" if b > a else "down"), (f"for λ = {TOY_LAM:g}, T* goes from {a:.4f} (ε = {eps_a:g}) to {b:.4f} "
                                         f"(ε = {eps_b:g}): a better score makes a longer horizon worth its cost "
                                         "(exact, closed form)")


exercise(
    id="01.q3", kind="predict", title="T* and a better score",
    statement="""
    Before the next figure: the score improves, ε goes from 0.1 to 0.05 ($\\lambda = 4$). Does the optimal
    horizon $T^*$ move **up** or **down**? Set `prediction` to "up" or "down". The check answers with the exact
    $T^*$ at both ε.
    """,
    hints=("The score term $G = \\tfrac12\\varepsilon^2 B(T)$ is what stops a long horizon from paying off.",
           "In $a^2u^2 = \\varepsilon^2(1 + ua)$ a smaller ε asks for a smaller $u = e^{-B(T^*)}$."),
    checker=C.predict({"up": ["longer", "larger", "increases", "grows"], "down": ["shorter", "smaller", "decreases"]},
                      _t_star_moves),
    answer_name="prediction",
    wrong_answers=[("the other choice", "down", None), ("not a choice", "sideways", "choice"),
                   ("a number", 0.6, "type")],
)


# --- 01.q4: T* on the dashboard -------------------------------------------------------------------------
DASH_EPS = 0.2  # the dashboard's score error ε (norm of a constant error vector in d = 2)
DASH_SETTINGS = {"target": "gaussian", "init": "prior", "eps": DASH_EPS}
SMALL_GRID = (0.1, 0.2, 0.3, 0.5, 1.0)  # the FAST grid of the notebook's dashboard


def _dashboard_t_star(lam, eps):
    """T* of the dashboard's bound: d = 2 coordinates share ε², so each is the toy with ε²/2 (exact)."""
    from diffviz import VP, theory

    return theory.franzese_optimal_T_vp_closed_form(lam, eps ** 2 / 2, VP())


def _check_dashboard(answer):
    from .core import Verdict

    if not (hasattr(answer, "numbers") and hasattr(answer, "values") and hasattr(answer, "T_grid")):
        return Verdict(False, message="pass the dashboard itself (the object you displayed and moved)",
                       mistake="type")
    values = dict(answer.values)
    for c, v in DASH_SETTINGS.items():
        if c not in values or not C._matches(values[c], v):
            return Verdict(False, message=f"set the control {c!r} to {v!r} first (it is {values.get(c)!r})",
                           mistake="setting")
    grid = sorted(float(t) for t in answer.T_grid)
    T = float(values["T"])
    t_star = _dashboard_t_star(float(getattr(answer, "lam", TOY_LAM)), DASH_EPS)
    below, above = [t for t in grid if t <= t_star], [t for t in grid if t >= t_star]
    near = ([max(below)] if below else []) + ([min(above)] if above else [])  # the grid values next to T*
    if any(math.isclose(T, t, rel_tol=1e-9) for t in near):
        return Verdict(True, message=f"T = {T:g} is within one grid step of T*, the horizon with the smallest "
                                     "bound KL + G (exact)")
    side = "too high" if T > t_star else "too low"
    return Verdict(False, message=f"T = {T:g} is {side}: more than one grid step from the smallest bound KL + G")


def _small_dashboard(**settings):
    from diffviz.dashboards.diffusion_time import DiffusionTimeDashboard

    dash = DiffusionTimeDashboard(targets=("gaussian",), inits=("prior",), T_grid=SMALL_GRID, lam=TOY_LAM,
                                  n=100, n_ref=200)
    if settings:
        dash.set(**settings)
    return dash


exercise(
    id="01.q4", kind="dashboard", title="Find T* on the dashboard",
    statement=f"""
    On the dashboard set the **Gaussian** target, the **prior** start and score error ε = {DASH_EPS:g}. Move $T$
    to the horizon with the smallest bound KL + G, then set `answer` to the dashboard itself; within one grid
    step of $T^*$ counts.
    """,
    hints=("Read the row KL + G of the read-out while you move $T$ (or watch the black curve of the right panel).",
           f"`dashboard.set(target='gaussian', init='prior', eps={DASH_EPS:g}, T=...)` moves it from code; "
           "`dashboard.numbers['bound']` reads KL + G and `dashboard.T_grid` lists the slider's values."),
    checker=_check_dashboard,
    answer_name="answer",
    context=lambda: {"dashboard": _small_dashboard()},
    wrong_answers=[
        ("T left at its start value", lazy(lambda: _small_dashboard(**DASH_SETTINGS, T=0.3)), None),
        ("the smallest T", lazy(lambda: _small_dashboard(**DASH_SETTINGS, T=0.1)), None),
        ("ε left at 0.3", lazy(lambda: _small_dashboard(target="gaussian", init="prior", T=0.5)), "setting"),
        ("the number read off", 0.5, "type"),
    ],
)
