"""Exercises of notebook 00 (the tour). Solutions: the cells tagged `solution` in notebooks/00_tour.py."""
from __future__ import annotations

import math

from . import checkers as C
from .core import exercise


def _vp():
    from diffviz import VP

    return VP()


def _vp_reference(t):
    vp = _vp()
    return float(vp.mean_scale(t)), float(vp.std(t))


def _B(t, b0=0.1, b1=20.0):
    return b0 * t + 0.5 * (b1 - b0) * t ** 2


exercise(
    id="00.q1", kind="code", title="The VP marginal m(t), s(t)",
    statement="""
    Write `vp_marginal(t)` returning the pair $(m(t), s(t))$ of the VP process (β_min = 0.1, β_max = 20) for a
    float $t$: $x_t = m(t)\\,x_0 + s(t)\\,z$. Use the formulas of §1, not `vp.mean_scale`.
    """,
    hints=("First the integrated noise rate $B(t) = \\int_0^t \\beta = \\beta_{\\min} t + \\tfrac12(\\beta_{\\max} - "
           "\\beta_{\\min}) t^2$.",
           "DDPM's $\\bar\\alpha$ is $m^2 = e^{-B}$; VP keeps the variance: $m^2 + s^2 = 1$.",
           "$m = e^{-B/2}$ and $s = \\sqrt{1 - e^{-B}}$ (a standard deviation, not a variance)."),
    checker=C.function(_vp_reference, [(0.05,), (0.3,), (0.7,), (1.0,)],
                       alternatives={"B without its ½": lambda t: (math.exp(-_B(t, 0.1, 39.9) / 2),
                                                                   math.sqrt(1 - math.exp(-_B(t, 0.1, 39.9))))}),
    answer_name="vp_marginal",
    context=lambda: {"vp": _vp()},
    wrong_answers=[
        ("m = e^{-B} (the ½ forgotten)", lambda t: (math.exp(-_B(t)), math.sqrt(1 - math.exp(-_B(t)))), "squared"),
        ("s given as the variance 1 - m²", lambda t: (math.exp(-_B(t) / 2), 1 - math.exp(-_B(t))), "squared"),
        ("sign in the exponent, m = e^{+B/2}", lambda t: (math.exp(_B(t) / 2), math.sqrt(1 - math.exp(-_B(t)))),
         "reciprocal"),
        ("a function that raises", lambda t: 1 / 0, "raises"),
        ("a number, not a function", 0.5, "type"),
    ],
)
