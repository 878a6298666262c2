"""Exercises of notebook 04 (phase transitions). Solutions: the cells tagged `solution` in notebooks/04_phase_transitions.py."""
from __future__ import annotations

import math

from . import checkers as C
from .core import Verdict, exercise, lazy

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


# --- 04.q2: the dilated schedule tau(u) ----------------------------------------------------------------------
KAPPA = 3.0
TAU_DIMS = (100, 1000, 10_000, 1_000_000)


def _tau_ref(u, kind, d):
    import diffviz

    return diffviz.Interpolant(kind, "dilated", d=d, kappa=KAPPA).tau(u)


def _tau_cases():
    import torch

    u = torch.cat([torch.linspace(0.0, 1.0, 41, dtype=torch.float64),
                   torch.tensor([0.5, 0.499, 0.501, 0.03, 0.97], dtype=torch.float64)])
    return [(u.clone(), kind, d) for d in TAU_DIMS for kind in ("vp", "ve")]


def _tau_pieces(u, first):
    """tau(u) = 2 first u on [0, 1/2], first + (1 - first)(2u - 1) on [1/2, 1]."""
    import torch

    return torch.where(u <= 0.5, 2 * first * u, first + (1 - first) * (2 * u - 1))


def _tau_window(u, kind, d, w):
    return _tau_pieces(u, w if kind == "vp" else 1 - w)


def _tau_swapped(u, kind, d):
    return _tau_ref(u, "ve" if kind == "vp" else "vp", d)


TAU_MISTAKES = {
    "window κ/d where κ/√d is due": lambda u, kind, d: _tau_window(u, kind, d, KAPPA / d),
    "the VP and VE halves are swapped": _tau_swapped,
    "the uniform schedule τ = u (no dilation)": lambda u, kind, d: u * 1.0,
}
JUMP = "the two halves do not meet at u = ½ (τ jumps there)"


def _tau_diagnose(answer, u, kind, d):
    """Where a wrong τ(u) goes wrong: a jump at u = ½, or only one half, or only u = ½ itself (None: unsure)."""
    import numpy as np
    import torch

    try:
        got = C.as_array(answer(u.clone(), kind, d))
        ref = C.as_array(_tau_ref(u, kind, d))
        edge = C.as_array(answer(torch.tensor([0.5 - 1e-10, 0.5, 0.5 + 1e-10], dtype=torch.float64), kind, d))
    except Exception:  # noqa: BLE001 - the student's function: no diagnosis
        return None
    if got.shape != ref.shape or edge.shape != (3,) or not np.all(np.isfinite(edge)):
        return None
    if abs(edge[2] - edge[0]) > 1e-6:
        return JUMP
    un = u.numpy()
    bad = ~np.isclose(got, ref, rtol=1e-9, atol=1e-12)
    if bad.any() and np.all(un[bad] == 0.5):
        return "off at u = ½ only"
    if bad.any() and np.all(un[bad] < 0.5):
        return "wrong on the first half u < ½ only"
    if bad.any() and np.all(un[bad] > 0.5):
        return "wrong on the second half u > ½ only"
    return None


def _tau_checker():
    import numpy as np

    base = C.function(_tau_ref, _tau_cases, rtol=1e-9, atol=1e-12, alternatives=TAU_MISTAKES, what="your τ(u)")

    def check(answer):
        v = base(answer)
        if v.passed or not v.attempted or v.mistake is not None or not callable(answer):
            return v
        try:
            for u, kind, d in _tau_cases():
                if not np.allclose(C.as_array(answer(u.clone(), kind, d)), C.as_array(_tau_ref(u, kind, d)),
                                   rtol=1e-9, atol=1e-12):
                    v.mistake = _tau_diagnose(answer, u, kind, d)
                    break
        except Exception:  # noqa: BLE001 - the student's function: keep the verdict as it is
            pass
        return v

    check.reference, check.cases = base.reference, base.cases  # for the tests: never shown in a verdict
    return check


def _tau_half_first(u, kind, d):  # the first half runs at half speed: τ(½) = w/2 for VP, then a jump
    import torch

    w = KAPPA / math.sqrt(d)
    first = w if kind == "vp" else 1 - w
    return torch.where(u <= 0.5, first * u, first + (1 - first) * (2 * u - 1))


exercise(
    id="04.q2", kind="code", title="The dilated schedule τ(u)",
    statement="""
    Write `tau_dilated(u, kind, d)`: the dilated schedule $\\tau(u)$ of §3 with window $w = \\kappa/\\sqrt d$,
    $\\kappa = 3$, for `kind` "vp" or "ve", at a float64 tensor `u` of clock times in $[0, 1]$ (same shape
    back). Dilated VP: $\\tau$ runs over $[0, w]$ while $u \\in [0, \\tfrac12]$; dilated VE: over $[1 - w, 1]$
    while $u \\in [\\tfrac12, 1]$; linear on each half. It is checked at many $u$ (including $u = \\tfrac12$),
    both kinds, $d$ from $10^2$ to $10^6$.
    """,
    hints=("Both schedules have the form $\\tau = 2\\tau_{1/2}\\,u$ for $u \\le \\tfrac12$ and "
           "$\\tau = \\tau_{1/2} + (1 - \\tau_{1/2})(2u - 1)$ for $u \\ge \\tfrac12$; only $\\tau(\\tfrac12)$ differs.",
           "$\\tau(\\tfrac12) = w$ for VP (the mode window is the start of the path) and $1 - w$ for VE (the "
           "spread window is its end).",
           "`torch.where(u <= 0.5, first_half, second_half)` evaluates a piecewise formula on a tensor."),
    checker=_tau_checker(),
    answer_name="tau_dilated",
    wrong_answers=[
        ("window κ/d", TAU_MISTAKES["window κ/d where κ/√d is due"], "window κ/d where κ/√d is due"),
        ("VP and VE swapped", _tau_swapped, "the VP and VE halves are swapped"),
        ("first half without its factor 2", _tau_half_first, JUMP),
        ("uniform τ = u", TAU_MISTAKES["the uniform schedule τ = u (no dilation)"],
         "the uniform schedule τ = u (no dilation)"),
        ("a stub", lambda u, kind, d: ..., "not attempted"),
    ],
)


# --- 04.q3: predict, uniform steps at d = 10^4 ---------------------------------------------------------------
PRED_D, PRED_STEPS, TOL_P = 10_000, 20, 0.05


def _who_keeps_p():
    from diffviz.experiments import phase_transitions as pt

    p_hat = {k: pt.euler_features_exact(PRED_D, PRED_STEPS, k, "none", P, SIGMA2, KAPPA)["p_hat"] for k in ("vp", "ve")}
    ok = {k: abs(v - P) <= TOL_P for k, v in p_hat.items()}
    right = "both" if all(ok.values()) else "neither" if not any(ok.values()) else next(k for k in ok if ok[k])
    who = {"both": "both keep", "neither": "neither keeps"}.get(right, f"{right.upper()} keeps")
    return right, (f"with {PRED_STEPS} uniform Euler steps at d = 10⁴ the sampler gives p̂ = {p_hat['vp']:.4f} "
                   f"(VP) and {p_hat['ve']:.4f} (VE) against p = {P}: {who} p within {TOL_P} "
                   "(exact Euler expectation, reduced recursion of §4)")


exercise(
    id="04.q3", kind="predict", title="Which interpolant keeps the mode weight?",
    statement="""
    Before the sweep of §4: at $d = 10^4$, with 20 **uniform** Euler steps, which interpolant's sampler recovers
    the mode weight $p = 0.8$ within 0.05: "vp", "ve", "both" or "neither"? Set `prediction`.
    """,
    hints=("The mode is decided where $b\\,\\mu\\cdot x/\\Delta$ is of order one: for VP at $\\tau \\sim 1/\\sqrt d$, "
           "for VE at $\\tau = O(1)$.",
           "A uniform first step is $\\Delta\\tau = 1/20$; compare it with $1/\\sqrt{d} = 0.01$."),
    checker=C.predict({"vp": ["vp interpolant"], "ve": ["ve interpolant"], "both": ["all"],
                       "neither": ["none"]}, _who_keeps_p),
    answer_name="prediction",
    wrong_answers=[("the other one", "vp", None), ("both", "both", None), ("not a choice", "dilated", "choice"),
                   ("a number", 0.8, "type")],
)


# --- 04.q4: statistical, p_hat of the dilated VP sampler -----------------------------------------------------
SIM_D, SIM_STEPS, SIM_N, SIM_K = 1000, 5, 4000, 5.0


def _p_euler(kind="vp", dilation="dilated"):
    from diffviz.experiments import phase_transitions as pt

    return pt.euler_features_exact(SIM_D, SIM_STEPS, kind, dilation, P, SIGMA2, KAPPA)["p_hat"]


def _in_plus_checker(answer):
    """0/1 indicators of mu.x > 0, one per sample: p_hat against the exact Euler expectation within k SE."""
    import numpy as np

    if callable(answer):
        return Verdict(False, message="pass the indicators (an array of shape (n,)), not a function", mistake="type")
    try:
        x = C.as_array(answer, "your indicators")
    except TypeError as err:
        return Verdict(False, message=str(err), mistake="type")
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        more = " (these look like the samples themselves: reduce each to 1{μ·x > 0})" if x.ndim == 2 else ""
        return Verdict(False, message=f"your indicators have shape {x.shape}: expected one 0/1 value per sample, "
                                        f"shape (n,){more}", mistake="shape")
    n = x.shape[0]
    if n < 1000:
        return Verdict(False, message=f"only {n} samples: use the {SIM_N} the exercise asks for", mistake="size")
    if np.isnan(x).any():
        return Verdict(False, message="your indicators contain NaN", mistake="nan")
    if not np.all((x == 0) | (x == 1)):
        return Verdict(False, message="your indicators are not all 0 or 1 (True/False): pass 1{μ·x > 0} per sample, "
                                        "not μ·x itself", mistake="not 0/1 indicators")
    p_hat = float(x.mean())
    se = math.sqrt(max(p_hat * (1 - p_hat), 1.0 / n) / n)  # binomial SE from the sample (at least 1/n)
    exact = _p_euler()
    v = C.se_verdict(p_hat, exact, se, k=SIM_K, what="your p̂", n=n)
    if not v.passed:
        alts = {"samples of the data law (weight p), not of the 5-step sampler": P,
                "the −μ mode counted (μ·x < 0)": 1 - exact,
                "the uniform VP schedule (dilation 'none')": _p_euler("vp", "none")}
        for name, alt in alts.items():
            if abs(p_hat - alt) <= SIM_K * se and abs(alt - exact) > SIM_K * se:
                v.mistake = name
                break
    return v


def _sim_in_plus(dilation="dilated", seed=1):
    from diffviz.experiments import phase_transitions as pt

    x = pt.run_gm(SIM_D, SIM_N, SIM_STEPS, "vp", dilation, P, SIGMA2, KAPPA, seed=seed, return_samples=True)["x"]
    return x.sum(-1) > 0


def _data_in_plus():
    import torch

    gen = torch.Generator().manual_seed(3)
    return torch.rand(SIM_N, generator=gen, dtype=torch.float64) < P


exercise(
    id="04.q4", kind="statistical", title="Simulate p̂ of the dilated VP sampler",
    statement="""
    Run 4000 samples of the **dilated VP** sampler with 5 Euler steps at $d = 1000$ ($p = 0.8$, $\\sigma_w^2 =
    0.25$, $\\kappa = 3$) and set `in_plus` to the 0/1 indicator of $\\mu\\cdot X > 0$ for each sample (shape
    (n,)). The check compares $\\hat p$ = the mean of `in_plus`, with its binomial standard error
    $\\sqrt{\\hat p(1 - \\hat p)/n}$, against the *exact* expectation of $\\hat p$ for this 5-step Euler sampler
    (the reduced recursion of the mode coordinate, §4), not against $p$: 5 steps leave an Euler bias.
    """,
    hints=("`pt.run_gm(d, n, n_steps, kind, dilation, p, sigma2, kappa, seed=..., return_samples=True)` returns "
           "the samples as `['x']`, shape (n, d).",
           "With $\\mu = (1, \\dots, 1)$, $\\mu\\cdot X$ is the sum of the coordinates: `x.sum(-1) > 0`."),
    checker=_in_plus_checker,
    answer_name="in_plus",
    context=lambda: {"pt": __import__("diffviz.experiments.phase_transitions", fromlist=["pt"])},
    wrong_answers=[
        ("data-law indicators", lazy(_data_in_plus), "samples of the data law (weight p), not of the 5-step sampler"),
        ("−μ mode", lazy(lambda: ~_sim_in_plus()), "the −μ mode counted (μ·x < 0)"),
        ("uniform VP", lazy(lambda: _sim_in_plus("none")), "the uniform VP schedule (dilation 'none')"),
        ("μ·x, not the indicator", lazy(lambda: _sim_in_plus().double() * 3.0 - 1.0), "not 0/1 indicators"),
        ("too few", lazy(lambda: _sim_in_plus()[:100]), "size"),
    ],
)


# --- 04.q5: closed form, the mean-field magnetization --------------------------------------------------------
CW_BETA, CW_H, CW_D = 2.0, 0.7, 1000


def _m_cw(beta=CW_BETA, h=CW_H):
    from diffviz.targets import CurieWeiss

    return CurieWeiss(CW_D, beta, h).mean_field_m()


exercise(
    id="04.q5", kind="closed-form", title="The mean-field magnetization m_CW",
    statement="""
    Compute $m_{CW}$ for $\\beta_{CW} = 2$, $h = 0.7$, $d = 1000$: the largest root of
    $m = \\tanh(\\beta_{CW}\\,m + h/d)$, as a float `m_cw` (relative tolerance $10^{-9}$).
    """,
    hints=("Iterate $m \\leftarrow \\tanh(\\beta_{CW}\\,m + h/d)$ from $m = 1$: it decreases to the largest root.",
           "The per-spin field of the energy $hS/d$ is $h/d$, not $h$; the slope $\\beta_{CW}(1 - m^2) < 1$ at the "
           "root, so a few dozen iterations reach machine precision."),
    checker=C.number(_m_cw, rtol=1e-9, alternatives={
        "the field h where h/d is due": lambda: _m_cw(h=CW_H * CW_D),
        "the negative root (the mode s = −1)": lambda: -_m_cw(h=-CW_H),
        "β_CW/2 where β_CW is due": lambda: _m_cw(beta=CW_BETA / 2)}),
    answer_name="m_cw",
    wrong_answers=[
        ("field h", lazy(lambda: _m_cw(h=CW_H * CW_D)), "the field h where h/d is due"),
        ("negative root", lazy(lambda: -_m_cw(h=-CW_H)), "the negative root (the mode s = −1)"),
        ("β/2", lazy(lambda: _m_cw(beta=CW_BETA / 2)), "β_CW/2 where β_CW is due"),
        ("the h = 0 root", lazy(lambda: _m_cw(h=0.0)), None),
    ],
)
