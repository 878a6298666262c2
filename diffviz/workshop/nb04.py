"""Exercises of notebook 04 (phase transitions). Solutions: the cells tagged `solution` in notebooks/04_phase_transitions.py."""
from __future__ import annotations

import math

from . import checkers as C
from .core import exercise

P, SIGMA2, D = 0.8, 0.25, 5


def _target():
    from diffviz.targets import TwoModeMixture

    return TwoModeMixture(D, p=P, sigma2=SIGMA2)


def _process():
    import diffviz

    return diffviz.Interpolant("vp", d=D)


def _score(x, t, *, std_for_var=False, h=None, sign=1.0):
    """The exact score, or one of its typical slips (for the tests and the checker's mistake names)."""
    import torch

    proc = _process()
    b, a = float(proc.mean_scale(t)), float(proc.std(t))
    delta = a * a + SIGMA2 * b * b
    if std_for_var:
        delta = math.sqrt(delta)
    h = 0.5 * math.log(P / (1 - P)) if h is None else h
    es = torch.tanh(h + b * x.sum(-1, keepdim=True) / delta)
    return -sign * (x - b * es) / delta


exercise(
    id="04.q1", kind="code", title="The exact score of the two-mode mixture",
    statement="""
    Write `two_mode_score(x, t)`: the exact score $\\nabla\\ln p_t(x)$ of the two-mode mixture ($p = 0.8$,
    $\\sigma_w^2 = 0.25$, $\\mu = (1, \\dots, 1)$) under the VP interpolant `vp` of §1 at diffusion time $t$
    ($b = m(t)$, $a = s(t)$), for a batch `x` of shape (n, d).
    """,
    hints=("Given the mode $s$, $x \\sim N(b\\,s\\,\\mu, \\Delta I)$ with $\\Delta = a^2 + \\sigma_w^2 b^2$.",
           "The score is $-(x - b\\,\\mu\\,E[s|x])/\\Delta$; $E[s|x]$ is in §2.",
           "$E[s|x] = \\tanh(\\tfrac12\\ln\\frac{p}{1-p} + b\\,\\mu\\cdot x/\\Delta)$, and $\\mu\\cdot x$ is "
           "`x.sum(-1, keepdim=True)`."),
    checker=C.score_function(_target, _process, times=(0.1, 0.5, 0.9),
                             alternatives={"sqrt": lambda x, t: _score(x, t, std_for_var=True),
                                           "the mode weight p is missing": lambda x, t: _score(x, t, h=0.0)}),
    answer_name="two_mode_score",
    context=lambda: {"vp": _process()},
    wrong_answers=[
        ("sign flipped", lambda x, t: _score(x, t, sign=-1.0), "sign"),
        ("√Δ where Δ is due", lambda x, t: _score(x, t, std_for_var=True), "sqrt"),
        ("p = ½ assumed", lambda x, t: _score(x, t, h=0.0), "the mode weight p is missing"),
        ("a stub", lambda x, t: ..., "not attempted"),
    ],
)
