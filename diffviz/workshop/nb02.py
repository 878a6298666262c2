"""Exercises of notebook 02 (initialization). Solutions: the cells tagged `solution` in notebooks/02_initialization.py."""
from __future__ import annotations

import math

from . import checkers as C
from .core import exercise, lazy


# --- 02.q1: the VE forward marginal ---------------------------------------------------------------------
def _marginal_cases():
    import torch

    gen = torch.Generator().manual_seed(3)
    x0 = 2 * torch.randn(8, generator=gen, dtype=torch.float64)
    z = torch.randn(8, generator=gen, dtype=torch.float64)
    return [(x0, t, z) for t in (0.05, 0.3, 0.6, 1.0)]


def _ve_marginal_ref(x0, t, z):
    from diffviz import VE

    ve = VE()
    return ve.mean_scale(t) * x0 + ve.std(t) * z  # x_t = x_0 + sigma(t) z (m = 1 for VE)


def _ve_marginal_slip(x0, t, z, *, power=1, sign=1.0):
    """power = 2: sigma(t)^2 where sigma(t) is due; sign = -1: the exponent's sign flipped."""
    from diffviz import VE

    ve = VE()
    sigma = ve.sigma_min * (ve.sigma_max / ve.sigma_min) ** (sign * t)
    return x0 + sigma ** power * z


exercise(
    id="02.q1", kind="code", title="The VE forward marginal",
    statement="""
    Write `ve_marginal(x0, t, z)`: the VE marginal $x_t = x_0 + \\sigma(t) z$ with the geometric noise level
    $\\sigma(t) = \\sigma_{\\min}(\\sigma_{\\max}/\\sigma_{\\min})^t$, $\\sigma_{\\min} = 0.01$, $\\sigma_{\\max} = 50$
    (diffviz's `VE()`). `x0` and `z` are float64 tensors of one shape, `t` a float in $[0, 1]$; use the `z` you
    are given (no noise of your own). The check compares it with `VE()` at several $t$.
    """,
    hints=("$\\sigma(t)$ is a standard deviation: it multiplies $z$ as it is, not squared.",
           "`0.01 * (50 / 0.01) ** t`: at $t = 0$ it is $\\sigma_{\\min}$ and it grows with $t$; "
           "`VE().std(t)` gives the same."),
    checker=C.function(_ve_marginal_ref, _marginal_cases, rtol=1e-9, what="your ve_marginal", alternatives={
        "σ(t)² where σ(t) is due": lambda x0, t, z: _ve_marginal_slip(x0, t, z, power=2),
        "the exponent's sign is flipped: σ(t) must grow with t": lambda x0, t, z: _ve_marginal_slip(x0, t, z, sign=-1.0)}),
    answer_name="ve_marginal",
    wrong_answers=[
        ("the variance for the standard deviation", lambda x0, t, z: _ve_marginal_slip(x0, t, z, power=2),
         "σ(t)² where σ(t) is due"),
        ("the sign of the exponent", lambda x0, t, z: _ve_marginal_slip(x0, t, z, sign=-1.0),
         "the exponent's sign is flipped: σ(t) must grow with t"),
        ("the noise subtracted", lambda x0, t, z: x0 - _ve_marginal_slip(x0, t, z) + x0, None),
        ("a tensor, not a function", lazy(lambda: _ve_marginal_ref(*_marginal_cases()[0])), "type"),
    ],
)


# --- 02.q2: simulate x_T ----------------------------------------------------------------------------------
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
    id="02.q2", kind="statistical", title="Simulate x_T of the VE process",
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


# --- 02.q3: the VE endpoint KL ---------------------------------------------------------------------------
KL_LAM, KL_MEAN = (3.0, 0.5), (1.0, 0.0)  # data N(μ, diag(λ)) of the exercise
KL_SIGMAS = [0.5, 2.0, 7.0, 80.0]


def _kl_ref(sigma_T):
    from diffviz import theory

    return theory.endpoint_kl_ve(list(KL_LAM), sigma_T, list(KL_MEAN))


def _kl_slip(sigma_T, *, half=0.5, power=2, mean_term=True):
    """half = 1: the ½ before the sum missing; power = 1: σ_T where σ_T² is due; mean_term = False: no mean term."""
    s = sigma_T ** power
    trace = half * sum(lam / s - math.log1p(lam / s) for lam in KL_LAM)
    return trace + (sum(m * m for m in KL_MEAN) / (2 * s) if mean_term else 0.0)


exercise(
    id="02.q3", kind="closed-form", title="The endpoint KL of the VE prior",
    statement="""
    Data $N(\\mu, \\mathrm{diag}(\\lambda))$ with $\\lambda = (3, 0.5)$ and $\\mu = (1, 0)$. Write
    `ve_endpoint_kl(sigma_T)`: $\\mathrm{KL}(p_T\\,\\|\\,p_\\infty)$ for the VE process stopped at noise level
    $\\sigma_T$, with $p_\\infty = N(0, \\sigma_T^2 I)$. The check compares it with diffviz at several $\\sigma_T$.
    """,
    hints=("$p_T = N(\\mu, \\mathrm{diag}(\\lambda) + \\sigma_T^2 I)$; KL of two Gaussians, one coordinate at a time.",
           "$\\tfrac12\\sum_i[r_i - \\ln(1 + r_i)]$ with $r_i = \\lambda_i/\\sigma_T^2$, plus the mean term "
           "$|\\mu|^2/(2\\sigma_T^2)$."),
    checker=C.function(_kl_ref, [(s,) for s in KL_SIGMAS], rtol=1e-8, what="your ve_endpoint_kl", alternatives={
        "the ½ before the sum is missing": lambda s: _kl_slip(s, half=1.0),
        "σ_T where σ_T² is due": lambda s: _kl_slip(s, power=1),
        "the mean term |μ|²/(2σ_T²) is missing": lambda s: _kl_slip(s, mean_term=False)}),
    answer_name="ve_endpoint_kl",
    wrong_answers=[
        ("the ½ forgotten", lambda s: _kl_slip(s, half=1.0), "the ½ before the sum is missing"),
        ("σ_T for σ_T²", lambda s: _kl_slip(s, power=1), "σ_T where σ_T² is due"),
        ("no mean term", lambda s: _kl_slip(s, mean_term=False), "the mean term |μ|²/(2σ_T²) is missing"),
        ("a sign error", lambda s: -_kl_ref(s), "sign"),
    ],
)
