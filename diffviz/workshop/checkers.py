"""Checkers: functions that build `answer -> Verdict` callables for `Exercise(checker=...)`.

Every expected value is computed at check time from diffviz (theory, processes, schedules, targets, experiments),
never stored as a literal. A failing verdict never shows the expected value; it names the mistake it sees:
a sign, a factor 2 or ½, a square or a square root (variance for standard deviation or the reverse), a reciprocal,
one step or one grid point off, a wrong shape or dtype, NaN, or the error a student's function raised.

- `number(expected_fn, ...)`              a float against a value computed at check time;
- `function(reference_fn, cases, ...)`    a student's function against a reference at several inputs;
- `score_function(target_fn, process_fn)` a student's score(x, t) against a target's exact score at random points;
- `sampler_step(method, ...)`             a student's step(x, t, t_next, score, xi) run on Gaussian data against
                                          the exact law after N steps (`theory.sampler_moments`);
- `statistical(exact_fn, statistic)`      samples whose mean/variance must lie within k standard errors (the SE
                                          is computed from the sample size); `se_verdict` is the bare test;
- `predict(choices, truth_fn)`            a prediction; the verdict answers with the exact figure;
- `dashboard(expected_fn, key, tol)`      a dashboard after the student moved it (or the number read off it).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from .core import MISTAKES, Unattempted, Verdict

# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
GENERIC = ("sign", "double", "half", "squared", "sqrt", "reciprocal")


def _transform(name: str, ref: np.ndarray):
    with np.errstate(all="ignore"):
        if name == "sign":
            return -ref
        if name == "double":
            return 2 * ref
        if name == "half":
            return ref / 2
        if name == "squared":
            return ref ** 2
        if name == "sqrt":
            return np.sqrt(ref) if np.all(ref >= 0) else None
        if name == "reciprocal":
            return 1 / ref if np.all(ref != 0) else None
    raise ValueError(name)


def as_array(x, what: str = "answer") -> np.ndarray:
    """A float64 numpy array from a number, list, numpy array or torch tensor; TypeError otherwise."""
    if isinstance(x, (str, bytes, dict, set)) or callable(x):
        raise TypeError(f"{what} must be a number or an array of numbers, got {type(x).__name__}")
    if hasattr(x, "detach"):  # torch
        x = x.detach().cpu().double().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{what} must be a number or an array of numbers, got {type(x).__name__}") from err
    return arr


def _dtype_name(x) -> str | None:
    if hasattr(x, "dtype"):
        return str(x.dtype).replace("torch.", "")
    return None


def _close(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> bool:
    if b is None or a.shape != b.shape:
        return False
    return bool(np.all(np.isfinite(b))) and bool(np.allclose(a, b, rtol=rtol, atol=atol))


def compare(got, ref, *, rtol: float = 1e-6, atol: float = 0.0, alternatives: dict | None = None,
            what: str = "your answer", generic: Sequence[str] = GENERIC):
    """Compare an answer with a reference value (both numbers/arrays/tensors, or tuples of them).

    Returns (ok, mistake, message). `alternatives`: {mistake name: the value that mistake would give}
    (a callable is called with no argument); they are tried after the generic transforms.
    """
    if isinstance(ref, tuple) or (isinstance(ref, list) and not _numeric_list(ref)):
        if not isinstance(got, (tuple, list)) or len(got) != len(ref):
            n = len(got) if isinstance(got, (tuple, list)) else 1
            return False, "shape", f"{what} must return {len(ref)} values, got {n}"
        for i, (g, r) in enumerate(zip(got, ref)):
            alts = None
            if alternatives:
                alts = {k: (v() if callable(v) else v)[i] for k, v in alternatives.items()}
            ok, mistake, msg = compare(g, r, rtol=rtol, atol=atol, alternatives=alts,
                                       what=f"value {i + 1} of {what}", generic=generic)
            if not ok:
                return ok, mistake, msg
        return True, None, ""
    try:
        a = as_array(got, what)
    except TypeError as err:
        return False, "type", str(err)
    r = as_array(ref, "reference")
    if a.size == r.size and a.shape != r.shape and (a.ndim == 0 or r.ndim == 0 or a.squeeze().shape == r.squeeze().shape):
        a = a.reshape(r.shape)
    if a.shape != r.shape:
        if a.ndim == r.ndim == 1 and abs(a.shape[0] - r.shape[0]) == 1:
            return False, "off-by-one", f"{what} has {a.shape[0]} entries where {r.shape[0]} are expected"
        return False, "shape", f"{what} has shape {a.shape}, expected {r.shape}"
    if np.isnan(a).any():
        return False, "nan", f"{what} contains NaN"
    if np.isinf(a).any() and not np.isinf(r).any():
        return False, "inf", f"{what} contains inf"
    if _close(a, r, rtol, atol):
        return True, None, ""
    dtype = _dtype_name(got)
    if dtype in ("float32", "float16", "bfloat16") and _close(a, r, max(rtol, 1e-3), atol):
        return False, "dtype", f"{what} is {dtype}: compute in float64 (torch.float64) for this precision"
    for name in generic:
        t = _transform(name, r)
        if t is not None and not _close(t, r, rtol, atol) and _close(a, t, rtol, atol):
            return False, name, f"{what} is not right"
    for name, alt in (alternatives or {}).items():
        v = alt() if callable(alt) else alt
        try:
            v = as_array(v, "alternative")
        except TypeError:
            continue
        if v.size == a.size and _close(a, v.reshape(a.shape), rtol, atol) and not _close(v.reshape(r.shape), r, rtol, atol):
            return False, name, f"{what} is not right"
    return False, None, f"{what} is not right"


def _numeric_list(x) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in x)


def call(fn, *args, what: str = "your function"):
    """Call a student's function: NotImplementedError or a result of ... / None mean "not attempted"
    (raises `Unattempted`); any other error comes back as a failing Verdict (returned, not raised)."""
    try:
        out = fn(*args)
    except NotImplementedError as err:
        raise Unattempted(f"{what} still raises NotImplementedError") from err
    except Exception as err:  # the student's code: report it, never crash the notebook
        msg = " ".join(str(err).split())[:200]
        return Verdict(False, message=f"{what} raised {type(err).__name__}: {msg}", mistake="raises")
    if out is Ellipsis or out is None:
        raise Unattempted(f"{what} returns {'...' if out is Ellipsis else 'None'}")
    if isinstance(out, (tuple, list)) and any(o is Ellipsis for o in out):
        raise Unattempted(f"{what} still returns ...")
    return out


def _fmt_args(args) -> str:
    def f(v):
        if isinstance(v, float):
            return f"{v:g}"
        if hasattr(v, "shape") and getattr(v, "ndim", 0) > 0:
            return f"<array {tuple(v.shape)}>"
        return repr(v) if not hasattr(v, "item") else f"{float(v):g}"

    return ", ".join(f(v) for v in args)


def _require_callable(answer, what="your answer"):
    if not callable(answer):
        return Verdict(False, message=f"{what} must be a function (def ...), got {type(answer).__name__}",
                       mistake="type")
    return None


# ------------------------------------------------------------------------------------------------
# closed form: a number
# ------------------------------------------------------------------------------------------------
def number(expected_fn: Callable[[], float], *, rtol: float = 1e-6, atol: float = 0.0,
           alternatives: dict | None = None, generic: Sequence[str] = GENERIC):
    """A float (or a small array) checked against `expected_fn()` computed at check time.

    `alternatives`: {mistake name: callable giving the value that mistake produces} (e.g. {"off-by-one":
    lambda: theory.sampler_moments(vp, 9, lam, method="em")[1]}).
    """
    def check(answer) -> Verdict:
        if callable(answer):
            return Verdict(False, message="this exercise wants a number, not a function (call it?)", mistake="type")
        ok, mistake, msg = compare(answer, expected_fn(), rtol=rtol, atol=atol, alternatives=alternatives,
                                   what="your number", generic=generic)
        if ok:
            return Verdict(True, message="matches the exact value" + (f" (relative tolerance {rtol:g})" if rtol else ""))
        return Verdict(False, message=msg, mistake=mistake)

    check.expected = expected_fn  # for the tests: a verdict must never show this value
    return check


# ------------------------------------------------------------------------------------------------
# closed form or code: a function at several inputs
# ------------------------------------------------------------------------------------------------
def function(reference_fn: Callable, cases, *, rtol: float = 1e-6, atol: float = 1e-12,
             alternatives: dict | None = None, off_by_one: int | None = None, dtype=None,
             generic: Sequence[str] = GENERIC, what: str = "your function"):
    """The student's function against `reference_fn` at every case (a tuple of arguments; `cases` may be a
    callable returning them, for random points drawn at check time).

    `alternatives`: {mistake name: function with the reference's signature that makes that mistake}.
    `off_by_one`: index of an integer argument (steps, points): a result equal to the reference at that
    argument ± 1 is reported as "off-by-one". `dtype`: a torch dtype the result must have (e.g. torch.float64).
    """
    def check(answer) -> Verdict:
        bad = _require_callable(answer)
        if bad is not None:
            return bad
        all_cases = cases() if callable(cases) else cases
        for args in all_cases:
            args = tuple(args) if isinstance(args, (tuple, list)) else (args,)
            out = call(answer, *args, what=what)
            if isinstance(out, Verdict):
                out.message += f" at ({_fmt_args(args)})"
                return out
            if dtype is not None and getattr(out, "dtype", None) != dtype:
                return Verdict(False, message=f"{what} returns dtype {_dtype_name(out)}, expected "
                                              f"{str(dtype).replace('torch.', '')}", mistake="dtype")
            alts = {k: (lambda f=f, a=args: f(*a)) for k, f in (alternatives or {}).items()}
            if off_by_one is not None:
                for delta in (-1, 1):
                    shifted = list(args)
                    shifted[off_by_one] = shifted[off_by_one] + delta
                    if shifted[off_by_one] >= 1:
                        alts.setdefault("off-by-one", lambda s=tuple(shifted): reference_fn(*s))
                        if delta == 1:
                            alts["off-by-one "] = lambda s=tuple(shifted): reference_fn(*s)
            ok, mistake, msg = compare(out, reference_fn(*args), rtol=rtol, atol=atol, alternatives=alts,
                                       what=f"{what}'s result", generic=generic)
            if not ok:
                mistake = mistake.strip() if mistake else mistake
                return Verdict(False, message=f"{msg} at ({_fmt_args(args)})", mistake=mistake)
        return Verdict(True, message=f"agrees with diffviz at all {len(all_cases)} test inputs")

    check.reference, check.cases = reference_fn, cases  # for the tests: a verdict must never show these values
    return check


def score_function(target_fn: Callable, process_fn: Callable, *, times=(0.05, 0.3, 0.7), n: int = 64,
                   seed: int = 0, rtol: float = 1e-6, atol: float = 1e-9, alternatives: dict | None = None):
    """A student's `score(x, t)` (x a float64 (n, d) tensor, t a float) against `target.score(x, t, process)`
    at n random points drawn from p_t at each time. `alternatives` as in `function`."""
    import torch

    def cases():
        target, process = target_fn(), process_fn()
        gen = torch.Generator().manual_seed(seed)
        out = []
        for t in times:
            x0 = target.sample(n, generator=gen, dtype=torch.float64)
            xt, _ = process.marginal(x0, float(t), generator=gen)
            out.append((xt, float(t)))
        return out

    def reference(x, t):
        return target_fn().score(x, t, process_fn())

    return function(reference, cases, rtol=rtol, atol=atol, alternatives=alternatives, what="your score")


# ------------------------------------------------------------------------------------------------
# code: a sampler step, checked through the exact law on Gaussian data
# ------------------------------------------------------------------------------------------------
def _affine_coefficients(step, process, grid, lam, mu):
    """Run the student's step on three probe states per step: returns (a, b, q) of shape (N, k) or a Verdict."""
    import torch

    lam_t = torch.as_tensor(lam, dtype=torch.float64)
    mu_t = torch.as_tensor(mu, dtype=torch.float64)
    k = lam_t.numel()
    x = torch.stack([torch.zeros(k), torch.ones(k), torch.zeros(k)]).double()
    xi = torch.stack([torch.zeros(k), torch.zeros(k), torch.ones(k)]).double()
    A, B, Q = [], [], []
    for i in range(grid.numel() - 1):
        t, t_next = float(grid[i]), float(grid[i + 1])

        def score(y, s, _lam=lam_t, _mu=mu_t):
            m, sd = process.mean_scale(float(s)), process.std(float(s))
            return -(y - m * _mu) / (m ** 2 * _lam + sd ** 2)

        out = call(step, x.clone(), t, t_next, score, xi.clone(), what="your step")
        if isinstance(out, Verdict):
            out.message += f" (step from t = {t:g} to t_next = {t_next:g})"
            return out
        try:
            y = as_array(out, "your step's result")
        except TypeError as err:
            return Verdict(False, message=str(err), mistake="type")
        if y.shape != (3, k):
            return Verdict(False, message=f"your step returns shape {y.shape} for x of shape {(3, k)}: it must "
                                          "return the new x, same shape as x", mistake="shape")
        if np.isnan(y).any():
            return Verdict(False, message="your step returns NaN", mistake="nan")
        A.append(y[1] - y[0])
        B.append(y[0])
        Q.append((y[2] - y[0]) ** 2)
    return np.array(A), np.array(B), np.array(Q)


def _step_variants(method, process, grid, lam, mu):
    """Per-step (a, q) of the typical slips for em / ode-euler: {mistake: (a, q or None)}."""
    out = {}
    if method not in ("em", "ode-euler"):
        return out
    ts = np.array([float(t) for t in grid])
    lam = np.asarray(lam, dtype=np.float64)

    def coef(t):
        m, s = float(process.mean_scale(t)), float(process.std(t))
        return float(process.f(t)), float(process.g2(t)), -1.0 / (m * m * lam + s * s)

    h = (ts[:-1] - ts[1:])[:, None]
    L = [coef(t) for t in ts[:-1]]
    R = [coef(t) for t in ts[1:]]
    f = np.array([c[0] for c in L])[:, None]
    g2 = np.array([c[1] for c in L])[:, None]
    c1 = np.array([c[2] for c in L])
    fr = np.array([c[0] for c in R])[:, None]
    g2r = np.array([c[1] for c in R])[:, None]
    c1r = np.array([c[2] for c in R])
    w = 1.0 if method == "em" else 0.5
    q = (h * g2) * np.ones_like(c1) if method == "em" else None
    out["sign"] = (1 - h * f - w * h * g2 * c1, q)
    out["sign "] = (1 + h * f + w * h * g2 * c1, q)
    out["off-by-one"] = (1 - h * fr + w * h * g2r * c1r, (h * g2r) * np.ones_like(c1) if method == "em" else None)
    if method == "em":
        out["half"] = (1 - h * f + 0.5 * h * g2 * c1, q)  # the PF-ODE's ½ on the score term
        out["squared"] = (None, (h * g2) ** 2 * np.ones_like(c1))  # noise h g² ξ: its variance where sqrt is due
        out["noise: h·g where √h·g is due"] = (None, h ** 2 * g2 * np.ones_like(c1))
        out["no noise: the ξ term is missing"] = (None, np.zeros_like(c1))
    else:
        out["double"] = (1 - h * f + h * g2 * c1, q)  # the reverse SDE's drift: the ½ is missing
    return out


def sampler_step(method: str, *, process_fn: Callable | None = None, eigvals=(0.25, 1.0, 4.0), mean=None,
                 n_steps=(5, 20), rtol: float = 1e-6, options: dict | None = None):
    """A student's `step(x, t, t_next, score, xi) -> x_next` (x a float64 (n, k) tensor, t > t_next floats,
    `score(x, t)` the exact score, `xi` standard normal noise of x's shape — use it, do not draw your own).

    The step is run with the exact score of Gaussian data N(mean, diag(eigvals)) on uniform grids of each
    N in `n_steps`; being affine in (x, xi), its output law after N steps follows from three probe states per
    step, and is compared with `theory.sampler_moments(process, N, eigvals, mean, method, init="prior")`. So
    any correct implementation passes. Typical slips (em, ode-euler) are named: a sign, the ½ on the score term,
    the noise's variance for its standard deviation, coefficients at t_next instead of t ("off-by-one").
    """
    import torch

    from .. import theory
    from ..processes import VP
    from ..schedules import uniform

    opts = dict(options or {})

    def check(answer) -> Verdict:
        bad = _require_callable(answer, "your step")
        if bad is not None:
            return bad
        process = (process_fn or VP)()
        lam = torch.as_tensor(eigvals, dtype=torch.float64)
        mu = torch.zeros_like(lam) if mean is None else torch.as_tensor(mean, dtype=torch.float64).expand_as(lam)
        for n in n_steps:
            grid = uniform(process, n)
            coeffs = _affine_coefficients(answer, process, grid, lam, mu)
            if isinstance(coeffs, Verdict):
                return coeffs
            a, b, q = coeffs
            mm = np.zeros(lam.numel())
            vv = np.full(lam.numel(), process.prior_std() ** 2)
            for i in range(a.shape[0]):
                mm, vv = a[i] * mm + b[i], a[i] ** 2 * vv + q[i]
            ref_m, ref_v = theory.sampler_moments(process, grid, lam, mu, method, init="prior", **opts)
            ok_v = _close(vv, ref_v.numpy(), rtol, 1e-12)
            ok_m = _close(mm, ref_m.numpy(), rtol, 1e-10)
            if ok_v and ok_m:
                continue
            what = "variance" if not ok_v else "mean"
            msg = f"after {n} steps on N(0, diag({', '.join(f'{v:g}' for v in lam.tolist())})) the output {what} " \
                  f"is not the exact one"
            ra, rb, rq = (x.numpy() for x in theory.sampler_steps(process, grid, lam, mu, method, **opts))
            for name, (va, vq) in _step_variants(method, process, grid, lam.numpy(), mu.numpy()).items():
                if (va is None or _close(a, va, 1e-6, 1e-12)) and (vq is None or _close(q, vq, 1e-6, 1e-12)) \
                        and not (_close(a, ra, 1e-6, 1e-12) and _close(q, rq, 1e-6, 1e-12)):
                    return Verdict(False, message=msg, mistake=name.strip())
            if _close(a, ra, 1e-6, 1e-12) and not _close(q, rq, 1e-6, 1e-12):
                return Verdict(False, message=msg + ": the deterministic part is right, the noise is not",
                               mistake="noise")
            if not _close(a, ra, 1e-6, 1e-12) and _close(q, rq, 1e-6, 1e-12):
                return Verdict(False, message=msg + ": the noise is right, the deterministic part is not")
            return Verdict(False, message=msg)
        return Verdict(True, message=f"the output law after {', '.join(map(str, n_steps))} steps is exactly "
                                     f"the one theory.sampler_moments gives for '{method}'")

    return check


# ------------------------------------------------------------------------------------------------
# statistical
# ------------------------------------------------------------------------------------------------
def se_verdict(simulated, exact, se, *, k: float = 5.0, what: str = "your estimate", n: int | None = None,
               alternatives: dict | None = None) -> Verdict:
    """Pass when every |simulated - exact| <= k se; the verdict says how many SE off the worst one was."""
    s, e, err = (np.atleast_1d(as_array(v)) for v in (simulated, exact, se))
    if np.isnan(s).any():
        return Verdict(False, message=f"{what} is NaN", mistake="nan")
    if s.shape != e.shape:
        return Verdict(False, message=f"{what} has shape {s.shape}, expected {e.shape}", mistake="shape")
    z = (s - e) / err
    i = int(np.argmax(np.abs(z)))
    zi = float(z[i])
    where = f" (entry {i + 1})" if s.size > 1 else ""
    nn = f", n = {n}" if n else ""
    side = "above" if zi > 0 else "below"
    if np.all(np.abs(z) <= k):
        return Verdict(True, message=f"{what} is {abs(zi):.1f} SE {side} the exact value{where}, within the "
                                     f"tolerance of {k:g} SE{nn}", details=f"z-scores: {np.round(z, 2).tolist()}")
    mistake = None
    for name in GENERIC:
        t = _transform(name, e)
        if t is not None and np.all(np.abs((s - t) / err) <= k) and not np.all(np.abs((t - e) / err) <= k):
            mistake = name
            break
    for name, alt in (alternatives or {}).items():
        if mistake:
            break
        v = np.atleast_1d(as_array(alt() if callable(alt) else alt))
        if v.shape == s.shape and np.all(np.abs((s - v) / err) <= k):
            mistake = name
    return Verdict(False, message=f"{what} is {abs(zi):.1f} SE {side} the exact value{where}: more than the "
                                  f"tolerance of {k:g} SE{nn}", mistake=mistake, details=f"z-scores: {np.round(z, 2).tolist()}")


def statistical(exact_fn: Callable, statistic: str = "var", *, k: float = 5.0, min_n: int = 100,
                shape: tuple | None = None, alternatives: dict | None = None):
    """Samples (n, ...) whose per-column `statistic` ("mean", "var" or "std") must lie within k standard
    errors of `exact_fn()`. The SE comes from the sample itself: mean sd/√n; var √((m₄ − v²)/n) (≈ v√(2/n) for
    a Gaussian); std SE(var)/(2 sd). `shape`: the sample shape per row, e.g. (3,) (None: anything that fits)."""
    if statistic not in ("mean", "var", "std"):
        raise ValueError(f"statistic must be 'mean', 'var' or 'std', got {statistic!r}")

    def check(answer) -> Verdict:
        if callable(answer):
            return Verdict(False, message="pass the samples (an array of shape (n, ...)), not a function", mistake="type")
        try:
            x = as_array(answer, "your samples")
        except TypeError as err:
            return Verdict(False, message=str(err), mistake="type")
        exact = np.atleast_1d(as_array(exact_fn(), "exact"))
        if x.ndim == 1 and exact.size > 1:
            return Verdict(False, message=f"your samples have shape {x.shape}: expected (n, {exact.size})", mistake="shape")
        if x.ndim == 0:
            return Verdict(False, message="pass the samples (an array of shape (n, ...)), not one number", mistake="shape")
        x = x.reshape(x.shape[0], -1)
        if shape is not None and tuple(x.shape[1:]) != (int(np.prod(shape)),):
            return Verdict(False, message=f"your samples have shape {tuple(np.shape(answer))}: expected (n, "
                                          f"{', '.join(map(str, shape))})", mistake="shape")
        n = x.shape[0]
        if n < min_n:
            return Verdict(False, message=f"only {n} samples: use at least {min_n}", mistake="size")
        if np.isnan(x).any():
            return Verdict(False, message="your samples contain NaN", mistake="nan")
        mean = x.mean(0)
        var = x.var(0, ddof=1)
        if statistic == "mean":
            est, se = mean, np.sqrt(var / n)
        else:
            m4 = ((x - mean) ** 4).mean(0)
            se_var = np.sqrt(np.maximum(m4 - var ** 2, 1e-300) / n)
            est, se = (var, se_var) if statistic == "var" else (np.sqrt(var), se_var / (2 * np.sqrt(var)))
        if exact.size != est.size:
            return Verdict(False, message=f"your samples have {est.size} coordinates, expected {exact.size}",
                           mistake="shape")
        word = {"mean": "mean", "var": "variance", "std": "standard deviation"}[statistic]
        return se_verdict(est, exact, se, k=k, what=f"the sample {word}", n=n, alternatives=alternatives)

    return check


# ------------------------------------------------------------------------------------------------
# predict, then check
# ------------------------------------------------------------------------------------------------
def predict(choices, truth_fn: Callable[[], tuple]):
    """A prediction among `choices` (strings; a dict {choice: [synonyms]} accepts other words too).

    `truth_fn() -> (right choice, sentence with the exact figure)`; the sentence is shown once a prediction is
    given, right or wrong. Answers are matched case-insensitively, by their first word.
    """
    syn = {c: [c] for c in choices} if not isinstance(choices, dict) else {c: [c, *v] for c, v in choices.items()}

    def norm(s):
        return " ".join(str(s).lower().replace("-", " ").replace("_", " ").split())

    def check(answer) -> Verdict:
        if not isinstance(answer, str):
            return Verdict(False, message=f"give your prediction as one of the words {', '.join(map(repr, syn))}",
                           mistake="type")
        a = norm(answer)
        picked = [c for c, words in syn.items() if any(a == norm(w) or a.startswith(norm(w) + " ") for w in words)]
        if len(picked) != 1:
            return Verdict(False, message=f"{answer!r} is not one of {', '.join(map(repr, syn))}", mistake="choice")
        right, figure = truth_fn()
        if picked[0] == right:
            return Verdict(True, message=f"right: {figure}")
        return Verdict(False, message=f"not this time: {figure}")

    return check


# ------------------------------------------------------------------------------------------------
# dashboard tasks
# ------------------------------------------------------------------------------------------------
def dashboard(expected_fn: Callable | None = None, key: str | None = None, *, tol: float = 0.0,
              where: str = "values", require: dict | None = None, task_fn: Callable | None = None,
              label: str | None = None):
    """A dashboard task: the student passes the dashboard after moving it (or the number they read off it).

    Reads `dash.values[key]` (a control) or `dash.numbers[key]` (a read-out) with `where`, and passes when it is
    within `tol` of `expected_fn(dash_values)` (e.g. one grid step). `require`: {control: value} the task fixes
    (checked only when a dashboard is passed). `task_fn(numbers, values) -> Verdict` replaces all that.
    """
    if where not in ("values", "numbers"):
        raise ValueError("where must be 'values' or 'numbers'")
    name = label or key

    def check(answer) -> Verdict:
        is_dash = hasattr(answer, "numbers") and hasattr(answer, "values")
        numbers = dict(answer.numbers) if is_dash else {}
        values = dict(answer.values) if is_dash else {}
        if task_fn is not None:
            if not is_dash:
                return Verdict(False, message="pass the dashboard itself (the object you displayed)", mistake="type")
            return task_fn(numbers, values)
        if is_dash:
            for c, v in (require or {}).items():
                if c not in values or not _matches(values[c], v):
                    return Verdict(False, message=f"set the control {c!r} to {v!r} first (it is {values.get(c)!r})",
                                   mistake="setting")
            got = (values if where == "values" else numbers).get(key)
        else:
            if isinstance(answer, (str, bytes)) or callable(answer):
                return Verdict(False, message="pass the dashboard, or the number you read from it", mistake="type")
            got = answer
        try:
            got = float(as_array(got, name))
        except (TypeError, ValueError):
            return Verdict(False, message=f"could not read a number for {name} from your answer", mistake="type")
        if math.isnan(got):
            return Verdict(False, message=f"{name} is NaN", mistake="nan")
        exp = float(expected_fn(values) if _takes_arg(expected_fn) else expected_fn())
        if abs(got - exp) <= tol * (1 + 1e-9) + 1e-12:
            return Verdict(True, message=f"{name} = {got:g} is right" + (f" (within {tol:g})" if tol else ""))
        side = "too high" if got > exp else "too low"
        return Verdict(False, message=f"{name} = {got:g} is {side}" + (f" by more than {tol:g}" if tol else ""))

    return check


def _matches(a, b) -> bool:
    if isinstance(b, (int, float)) and not isinstance(b, bool):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-9)
        except (TypeError, ValueError):
            return False
    return a == b


def _takes_arg(fn) -> bool:
    import inspect

    try:
        return len(inspect.signature(fn).parameters) >= 1
    except (TypeError, ValueError):
        return False


__all__ = ["MISTAKES", "as_array", "call", "compare", "dashboard", "function", "number", "predict", "sampler_step",
           "score_function", "se_verdict", "statistical"]
