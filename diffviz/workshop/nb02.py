"""Exercises of notebook 02 (initialization). Solutions: the cells tagged `solution` in notebooks/02_initialization.py."""
from __future__ import annotations

from . import checkers as C
from .core import exercise, lazy


def _ve_T_var():
    from diffviz import VE

    ve = VE()
    return 1.0 + float(ve.std(ve.T)) ** 2


def _samples(n, scale_noise_by_variance=False):
    import torch

    from diffviz import VE

    ve = VE()
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(n, generator=gen, dtype=torch.float64)
    s = float(ve.std(ve.T))
    return x0 + (s * s if scale_noise_by_variance else s) * torch.randn(n, generator=gen, dtype=torch.float64)


exercise(
    id="02.q1", kind="statistical", title="Simulate x_T of the VE process",
    statement="""
    Data $x_0 \\sim N(0, 1)$ (one coordinate). Draw `x_T`, 20 000 samples of the VE marginal at $t = T$,
    $x_T = x_0 + \\sigma_T z$, as a 1-D tensor. The check compares their variance with the exact
    $1 + \\sigma_T^2$, within 5 standard errors computed from your sample size.
    """,
    hints=("`ve = VE()`; $\\sigma_T$ is `ve.std(ve.T)` (a standard deviation).",
           "`x0 = torch.randn(n, dtype=torch.float64)`, then `ve.marginal(x0, ve.T)` returns `(x_T, z)`."),
    checker=C.statistical(_ve_T_var, "var", k=5, min_n=1000),
    answer_name="x_T",
    context=lambda: {"SEED": 0},
    wrong_answers=[
        ("noise scaled by σ_T² instead of σ_T", lazy(lambda: _samples(20_000, True)), "squared"),
        ("too few samples", lazy(lambda: _samples(50)), "size"),
        ("a function instead of samples", lambda: None, "type"),
    ],
)
