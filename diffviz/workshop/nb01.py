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
