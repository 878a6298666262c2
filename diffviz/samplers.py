"""Reverse-time samplers over a decreasing time grid t_0 = T > t_1 > ... > t_N (N steps, N + 1 points).

A score is any callable `score(x, t) -> tensor like x` (t a Python float): exact target scores and trained
networks look the same. One step goes from t to t' = t - h, with the score evaluated at t:

- Euler–Maruyama (reverse SDE):  x' = x - h [f x - g^2 score] + sqrt(g^2 h) xi
- Euler (probability-flow ODE):  x' = x - h v(x, t),  v = f x - g^2 score / 2
- Heun (PF-ODE, 2nd order):      x' = x - h [v(x, t) + v(x - h v(x, t), t')] / 2
- DDIM(eta):                     x' = m' x0_hat + sqrt(s'^2 - s_eta^2) eps_hat + s_eta xi,
                                 x0_hat = (x + s^2 score)/m, eps_hat = -s score,
                                 s_eta^2 = eta^2 s'^2 (1 - (m s' / (m' s))^2)
- Predictor–corrector:           an Euler–Maruyama step to t', then Langevin at t':
                                 x <- x + e score + sqrt(2 e) xi, e = 2 snr^2 s(t')^2 (deterministic step)

Device and dtype follow `x_init`; randomness comes only from the keyword-only `generator`.
A non-finite state raises FloatingPointError naming the step and time where it appeared; a finite state that
runs away beyond RUNAWAY_FACTOR times the scale of the start and the process (`runaway_scale`) gives one
`DivergenceWarning` per run, naming the step and time; both cost one pass over x per checked step.
The score's output must match x in shape, dtype and device at every evaluation (metadata only, no pass over x).
Memory: `x_init` is never modified; after the first step the samplers update their own copy of x in place and
draw the noise into one reused buffer (the same numbers as fresh tensors), unless a user callback is given
(it may keep x). `sample(..., batch_size=B)` runs B particles at a time; `sample(..., fused=True)` uses the
row-blocked loop of `diffviz.fused` (em and ode-euler).
`diffviz.theory.sampler_moments` gives the exact law of each sampler on Gaussian data: the tests hold
every sampler against it.
"""
from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Callable

import torch

from .checks import DivergenceWarning, check_choice, check_int, check_positive, check_range
from .processes import check_process
from .rng import as_generator
from .schedules import check_grid, uniform

Score = Callable[[torch.Tensor, float], torch.Tensor]


def _check_x(x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = f"a tensor of dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x_init must be a floating-point torch.Tensor of shape (n, d) or (n, c, h, w), got {got}")
    if x.dim() < 2 or x.shape[0] < 1:
        raise ValueError(f"x_init must have a batch dimension first, shape (n, d) or (n, c, h, w); "
                         f"got shape {tuple(x.shape)}")
    return x


def _coefs(process, grid: torch.Tensor, method: str) -> dict:
    """f, g^2, m, s at every grid point, in float64, checked finite where the method needs them."""
    c = {"f": process.f(grid), "g2": process.g2(grid), "m": process.mean_scale(grid), "s": process.std(grid)}
    need = ("m", "s") if method == "ddim" else ("f", "g2")
    upto = grid.numel() - 1 if method in ("em", "ode-euler", "ddim") else grid.numel()
    for name in need:
        v = c[name][:upto]
        bad = ~torch.isfinite(v) | ((v <= 0) if name == "m" else torch.zeros_like(v, dtype=torch.bool))
        if bool(bad.any()):
            raise ValueError(f"the {type(process).__name__} process is singular at t={grid[:upto][bad][0].item():g} "
                             f"for method={method!r} ({name} = {v[bad][0].item():g}); start the grid below it, "
                             "or for an Interpolant use samplers.interpolant_ode")
    return {k: v.tolist() for k, v in c.items()}


RUNAWAY_FACTOR = 20.0  # see runaway_scale


def runaway_scale(x_init: torch.Tensor, m: list, s: list) -> float:
    """R = max(max|x_init|, max_t s(t), 1) * max_t m(t) / m(t_0) over the grid (m, s: the process at its points).

    A legitimate state x_t = m(t) x_0 + s(t) z stays within a few R: the noise part is at most the largest
    s(t) (times a Gaussian maximum, already in max|x_init| at t_0), and data hidden at scale m(t_0)|x_0| <=
    max|x_init| at the start grow at most by m(t)/m(t_0) on the way back (VP: data heavy tails that the prior
    start does not show). Measured, max|x| / R over a run: <= 3.5 for Heun, Euler and DDIM down to one step
    (VE sigma_T = 2, 7, 80; Student-t nu = 3 and 1.5; prior and oracle starts), <= 2 for Euler-Maruyama with 8
    steps or more; unstable Euler-Maruyama steps (h > 1/log(sigma_max/sigma_min) on VE) multiply the state by
    |1 - 2 h log(sigma_max/sigma_min)| per step: 17 R for one step at sigma_T = 80, about 25 R for two, about
    100 R for two at sigma_T = 1000. RUNAWAY_FACTOR = 20 leaves more than 5x above every stable run and flags
    those (the output there is tens of prior widths wide). A start far narrower than the data (VE sigma_T
    below 1/20 of the spacing of the data's modes) can trip it too, which is worth a warning as well.
    inf (no bound) when m(t_0) is not positive. Raises FloatingPointError if x_init is not finite.
    """
    big = abs_max(x_init)
    if not math.isfinite(big):
        raise FloatingPointError(f"x_init holds NaN/inf (max|x_init| = {big}) at step 0 (the start)")
    m0 = m[0]
    m = [v for v in m if math.isfinite(v)]
    s = [v for v in s if math.isfinite(v)]
    if not (math.isfinite(m0) and m0 > 0):
        return math.inf
    return max(big, max(s, default=0.0), 1.0) * max(max(m) / m0, 1.0)


def check_score_output(out, x: torch.Tensor, name: str, where: str) -> None:
    """Raise ValueError unless the score's output `out` is a tensor like x (shape, dtype, device): metadata only."""
    if (not isinstance(out, torch.Tensor) or out.shape != x.shape or out.dtype != x.dtype
            or out.device != x.device):
        got = (f"shape {tuple(out.shape)}, {out.dtype} on {out.device}" if isinstance(out, torch.Tensor)
               else type(out).__name__)
        raise ValueError(f"{name}: score(x, t) at {where} must return a tensor shaped like x {tuple(x.shape)} ("
                         f"{x.dtype} on {x.device}), got {got}")


class _Stepper:
    """Shared loop bookkeeping: score output check, finite and runaway check every `check_every` steps, callback.

    With `x` (the start) and `c` (the process on the grid, from `_coefs`) the runaway bound RUNAWAY_FACTOR * R
    (`runaway_scale`) is set; without them only finiteness is checked.
    """

    def __init__(self, score, grid, callback, check_every, name, x=None, c=None):
        self.score, self.grid, self.callback, self.name = score, grid, callback, name
        self.check_every = check_int("check_every", check_every, 0)
        self.ts = grid.tolist()
        self.n = len(self.ts) - 1
        self.step = 1  # the step being computed (1-based), for messages
        self._last_ok = 0
        self.scale = math.inf
        if self.check_every and x is not None and c is not None:
            self.scale = runaway_scale(x, c["m"], c["s"])
        self.bound = RUNAWAY_FACTOR * self.scale
        self._warned = False

    @contextmanager
    def guard(self):
        """Around the loop: a step coefficient beyond x's dtype (torch: 'value cannot be converted to type ...
        without overflow', e.g. VE sigma_T = 1e30 in float32) becomes a FloatingPointError naming the step."""
        try:
            yield
        except RuntimeError as err:
            if "overflow" not in str(err):
                raise
            raise FloatingPointError(
                f"{self.name} diverged: a step coefficient overflows the samples' dtype at step {self.step} of "
                f"{self.n} (t = {self.ts[self.step - 1]:.6g} to {self.ts[self.step]:.6g}); use float64, a smaller "
                f"sigma_T, or more steps ({err})") from err

    def where(self, t) -> str:
        return f"step {self.step} of {self.n} (t = {float(t):.6g})"

    def eval(self, x, t):
        out = self.score(x, t)
        check_score_output(out, x, self.name, self.where(t))
        return out

    def done(self, i, x, amax=None):
        """After step i (1-based): check finiteness and runaway from max|x| (`amax` if the caller has it), then
        call the callback."""
        if self.check_every and (i % self.check_every == 0 or i == self.n):
            a = abs_max(x) if amax is None else amax
            if not math.isfinite(a):
                first = self._last_ok + 1
                where = f"step {i}" if first == i else f"steps {first}-{i}"
                what = "inf (overflow)" if a == math.inf else "NaN"
                raise FloatingPointError(
                    f"{self.name} diverged: NaN/inf in the samples at {where} of {self.n} "
                    f"(t = {self.ts[i]:.6g}; max|x| = {what}); try more steps, another grid, or check the score")
            if a > self.bound and not self._warned:
                self._warned = True
                warn_runaway(self.name, i, self.n, self.ts[i], a, self.scale)
            self._last_ok = i
        self.step = i + 1
        if self.callback is not None:
            self.callback(i, self.ts[i], x)


def warn_runaway(name, i, n, t, amax, scale):
    """One DivergenceWarning: the state ran away at step i (time t) to max|x| = amax > RUNAWAY_FACTOR * scale."""
    warnings.warn(
        f"{name}: the samples ran away at step {i} of {n} (t = {t:.6g}): max|x| = {amax:.4g} exceeds "
        f"{RUNAWAY_FACTOR:g} R = {RUNAWAY_FACTOR * scale:.4g}, R = {scale:.4g} the scale of the start and the process "
        "(diffviz.samplers.runaway_scale); the result is finite but not a sample of the target: try more steps or "
        "another grid, check the score, or widen a start much narrower than the data", DivergenceWarning, stacklevel=5)


def abs_max(x: torch.Tensor) -> float:
    """max|x| in one read of x (aminmax): NaN if x holds a NaN, inf if it holds an inf; 0 for an empty x."""
    if x.numel() == 0:
        return 0.0
    lo, hi = torch.aminmax(x)
    return torch.maximum(-lo, hi).item()


def all_finite(x: torch.Tensor) -> bool:
    """True iff every entry of x is finite: one read of x (max|x| is finite)."""
    return math.isfinite(abs_max(x))


def _noise(x, generator, out=None):
    """Standard normals shaped like x, drawn into `out` when given (the same numbers as a fresh tensor)."""
    if out is None:
        return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return out.normal_(generator=generator)


def _aliases(a: torch.Tensor, b: torch.Tensor) -> bool:
    """True when a and b share memory (a score that returns x itself or a view of it)."""
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def _owns_state(callback) -> bool:
    """In-place updates are safe when nobody else can hold the state: no callback, or one that copies it."""
    return callback is None or getattr(callback, "copies_state", False)


class _State:
    """x as the sampler holds it: the caller's x_init until the first step, then a private buffer updated in place."""

    def __init__(self, x, callback):
        self.x, self.own, self.can_own = x, False, _owns_state(callback)
        self.buf = None

    def scaled(self, a, *avoid):
        """a * x, in place when x is private and no tensor in `avoid` shares its memory."""
        if self.own and not any(_aliases(v, self.x) for v in avoid):
            self.x.mul_(a)
        else:
            self.x = self.x.mul(a)
            self.own = self.can_own
        return self.x

    def plus(self, s, alpha):
        """x + alpha s, in place when x is private and s does not share its memory."""
        if self.own and not _aliases(s, self.x):
            self.x.add_(s, alpha=alpha)
        else:
            self.x = self.x.add(s, alpha=alpha)
            self.own = self.can_own
        return self.x

    def noise(self, generator):
        """Standard normals like x, in one reused buffer (when x is private)."""
        if not self.can_own:
            return _noise(self.x, generator)
        if self.buf is None:
            self.buf = torch.empty(self.x.shape, device=self.x.device, dtype=self.x.dtype)
        return _noise(self.x, generator, self.buf)


@torch.no_grad()
def euler_maruyama(score: Score, process, x, grid, *, generator=None, callback=None, check_every=1):
    """Reverse SDE dx = [f x - g^2 score] dt + g dW (backwards), Euler–Maruyama on `grid`; returns x at grid[-1]."""
    x, grid = _check_x(x), check_grid(grid, process)
    generator = as_generator(generator, x.device)
    c = _coefs(process, grid, "em")
    run = _Stepper(score, grid, callback, check_every, "euler_maruyama", x, c)
    st = _State(x, callback)
    with run.guard():
        for i in range(run.n):
            t, h = run.ts[i], run.ts[i] - run.ts[i + 1]
            f, g2 = c["f"][i], c["g2"][i]
            s = run.eval(st.x, t)
            x = st.scaled(1 - h * f, s).add_(s, alpha=h * g2).add_(st.noise(generator), alpha=math.sqrt(g2 * h))
            del s
            run.done(i + 1, x)
    return st.x


@torch.no_grad()
def ode_euler(score: Score, process, x, grid, *, generator=None, callback=None, check_every=1):
    """Probability-flow ODE dx/dt = f x - g^2 score / 2, explicit Euler backwards on `grid`."""
    x, grid = _check_x(x), check_grid(grid, process)
    c = _coefs(process, grid, "ode-euler")
    run = _Stepper(score, grid, callback, check_every, "ode_euler", x, c)
    st = _State(x, callback)
    with run.guard():
        for i in range(run.n):
            t, h = run.ts[i], run.ts[i] - run.ts[i + 1]
            s = run.eval(st.x, t)
            x = st.scaled(1 - h * c["f"][i], s).add_(s, alpha=0.5 * h * c["g2"][i])
            del s
            run.done(i + 1, x)
    return st.x


@torch.no_grad()
def ode_heun(score: Score, process, x, grid, *, generator=None, callback=None, check_every=1):
    """Probability-flow ODE with Heun's method (explicit trapezoid, 2nd order), backwards on `grid`."""
    x, grid = _check_x(x), check_grid(grid, process)
    c = _coefs(process, grid, "heun")
    run = _Stepper(score, grid, callback, check_every, "ode_heun", x, c)

    def velocity(y, j):
        return y.mul(c["f"][j]).add_(run.eval(y, run.ts[j]), alpha=-0.5 * c["g2"][j])

    with run.guard():
        for i in range(run.n):
            h = run.ts[i] - run.ts[i + 1]
            v1 = velocity(x, i)
            v2 = velocity(x - h * v1, i + 1)
            x = x - (0.5 * h) * (v1 + v2)
            run.done(i + 1, x)
    return x


@torch.no_grad()
def ddim(score: Score, process, x, grid, *, eta: float = 0.0, generator=None, callback=None, check_every=1):
    """DDIM (Song et al. 2021a) for any process x_t = m x_0 + s z; eta = 0 deterministic, eta = 1 DDPM-like."""
    eta = check_range("eta", eta, 0.0, 1.0)
    x, grid = _check_x(x), check_grid(grid, process)
    generator = as_generator(generator, x.device)
    c = _coefs(process, grid, "ddim")
    run = _Stepper(score, grid, callback, check_every, "ddim", x, c)
    st = _State(x, callback)
    with run.guard():
        for i in range(run.n):
            m, s, m1, s1 = c["m"][i], c["s"][i], c["m"][i + 1], c["s"][i + 1]
            sc = run.eval(st.x, run.ts[i])
            ratio = (m * s1) / (m1 * s) if s > 0 else 0.0
            s_eta2 = max(eta ** 2 * s1 ** 2 * (1 - ratio ** 2), 0.0)
            # x' = m' (x + s^2 sc)/m + sqrt(s'^2 - s_eta^2) (-s sc) + s_eta xi
            x = st.scaled(m1 / m, sc).add_(sc, alpha=m1 * s ** 2 / m - math.sqrt(max(s1 ** 2 - s_eta2, 0.0)) * s)
            del sc
            if s_eta2 > 0:
                x.add_(st.noise(generator), alpha=math.sqrt(s_eta2))
            run.done(i + 1, x)
    return st.x


@torch.no_grad()
def predictor_corrector(score: Score, process, x, grid, *, snr: float = 0.16, n_corrector: int = 1,
                        generator=None, callback=None, check_every=1):
    """Euler–Maruyama predictor + `n_corrector` Langevin steps of size 2 snr^2 s(t')^2 (Song et al. 2021)."""
    snr = check_positive("snr", snr)
    n_corrector = check_int("n_corrector", n_corrector, 0)
    x, grid = _check_x(x), check_grid(grid, process)
    generator = as_generator(generator, x.device)
    c = _coefs(process, grid, "pc")
    run = _Stepper(score, grid, callback, check_every, "predictor_corrector", x, c)
    st = _State(x, callback)
    with run.guard():
        for i in range(run.n):
            t, t1, h = run.ts[i], run.ts[i + 1], run.ts[i] - run.ts[i + 1]
            f, g2 = c["f"][i], c["g2"][i]
            s = run.eval(st.x, t)
            x = st.scaled(1 - h * f, s).add_(s, alpha=h * g2).add_(st.noise(generator), alpha=math.sqrt(g2 * h))
            del s
            e = 2 * snr ** 2 * c["s"][i + 1] ** 2
            for _ in range(n_corrector if e > 0 else 0):
                s = run.eval(x, t1)
                x = st.plus(s, e).add_(st.noise(generator), alpha=math.sqrt(2 * e))
                del s
            run.done(i + 1, x)
    return st.x


SAMPLERS = {
    "em": euler_maruyama,
    "ode-euler": ode_euler,
    "heun": ode_heun,
    "ddim": ddim,
    "pc": predictor_corrector,
}


@dataclass
class Trajectory:
    """Stored states: `ts` (k,) float64 times, `xs` (k, n_kept, ...) on the CPU, `steps` (k,) step indices."""

    ts: torch.Tensor
    xs: torch.Tensor
    steps: list


class _Recorder:
    """Keeps at most `max_points` evenly spaced states of the first particles, within `max_elements` numbers."""

    def __init__(self, x0, t0, n_steps, max_points, max_elements):
        per_particle = x0[0].numel()
        n_points = min(n_steps + 1, check_int("max_points", max_points, 2))
        n_keep = min(x0.shape[0], max(1, check_int("max_elements", max_elements, 1) // (n_points * per_particle)))
        if n_keep * n_points * per_particle > max_elements:
            n_points = max(2, max_elements // (n_keep * per_particle))
        if n_keep < x0.shape[0]:
            warnings.warn(f"trajectory: storing the first {n_keep} of {x0.shape[0]} particles at {n_points} times "
                          f"to stay within max_elements={max_elements}", stacklevel=3)
        self.keep = set(round(j * n_steps / (n_points - 1)) for j in range(n_points))
        self.n_keep = n_keep
        self.ts, self.xs, self.steps = [], [], []
        self(0, t0, x0)

    def __call__(self, i, t, x):
        if i in self.keep:
            self.steps.append(i)
            self.ts.append(t)
            self.xs.append(x[: self.n_keep].detach().to("cpu", copy=True))

    def result(self):
        return Trajectory(torch.tensor(self.ts, dtype=torch.float64), torch.stack(self.xs), self.steps)


def sample(score: Score, process, x_init, grid, method: str = "em", *, generator=None, trajectory: bool = False,
           max_points: int = 101, max_elements: int = 2 ** 25, callback=None, check_every: int = 1,
           batch_size: int | None = None, fused: bool = False, **options):
    """Run the reverse process from `x_init` at grid[0] to grid[-1] with `method` (see SAMPLERS).

    `grid`: a decreasing time grid (see `diffviz.schedules`) or an int N for the uniform N-step grid.
    `generator`: a torch.Generator, or an int seed (a generator on x_init's device seeded with it).
    `trajectory=True` also returns a `Trajectory` of at most `max_points` states, holding at most
    `max_elements` numbers (first particles only if needed). `callback(i, t, x)` runs after every step.
    Method options: `eta` (ddim), `snr` and `n_corrector` (pc).
    `batch_size=B`: run the particles B at a time (rows B k .. B (k+1) - 1 of x_init in turn, into one output
    tensor), so the run holds the output plus one batch's working memory. Deterministic methods give the same
    result as one batch; stochastic ones draw from `generator` batch after batch (batch 0 for all steps, then
    batch 1, ...), reproducible for a given B. With batches, the trajectory keeps particles of the first batch
    and the callback sees each batch in turn.
    `fused=True` (em, ode-euler): the loop of `diffviz.fused.sample_fused`, the same result with fewer memory
    passes on the CPU and one CUDA graph per step on a GPU; the callback then sees the live state (copy it).
    """
    if not callable(score):
        raise TypeError(f"score must be a callable score(x, t) -> tensor like x, e.g. "
                        f"lambda x, t: target.score(x, t, process) or a trained ScoreModel; got {score!r}")
    check_process(process)
    check_choice("method", method, SAMPLERS.keys())
    if isinstance(grid, Integral) and not isinstance(grid, bool):
        grid = uniform(process, check_int("grid (an int N: n_steps of the uniform grid)", grid, 1))
    elif isinstance(grid, Real) and not isinstance(grid, bool):
        hint = f"grid={int(grid)}" if float(grid).is_integer() and float(grid) >= 1 else "an int N >= 1"
        raise ValueError(f"grid must be a decreasing sequence of times or an int N (the uniform N-step grid), "
                         f"got the float {grid!r}; pass {hint}")
    allowed = {"ddim": {"eta"}, "pc": {"snr", "n_corrector"}}.get(method, set())
    unknown = set(options) - allowed
    if unknown:
        raise ValueError(f"method={method!r} takes options {sorted(allowed) or 'none'}, got {sorted(unknown)}")
    grid = check_grid(grid, process)
    x_init = _check_x(x_init)
    generator = as_generator(generator, x_init.device)  # once, so batches continue one stream
    n = x_init.shape[0]
    bs = n if batch_size is None else min(check_int("batch_size", batch_size, 1), n)
    if fused:
        from .fused import FUSED_METHODS, sample_fused

        check_choice("method (with fused=True)", method, FUSED_METHODS)
        run_method = lambda *a, **k: sample_fused(*a, method=method, **k)  # noqa: E731
    else:
        run_method = SAMPLERS[method]
    rec = None
    if trajectory:
        rec = _Recorder(x_init[:bs], grid[0].item(), grid.numel() - 1, max_points, max_elements)

    def make_hook(first_batch):
        if (rec is None or not first_batch) and callback is None:
            return None
        if callback is None:
            def hook(i, t, x):
                rec(i, t, x)
            hook.copies_state = True  # the recorder copies what it keeps: the sampler may update x in place
            return hook
        if rec is None or not first_batch:
            return callback

        def hook(i, t, x):
            rec(i, t, x)
            callback(i, t, x)
        return hook

    def run(xb, first_batch):
        return run_method(score, process, xb, grid, generator=generator, callback=make_hook(first_batch),
                          check_every=check_every, **options)

    if bs >= n:
        x = run(x_init, True)
    else:
        x = None
        for start in range(0, n, bs):
            xb = run(x_init[start:start + bs], start == 0)
            if x is None:
                x = torch.empty((n, *xb.shape[1:]), dtype=xb.dtype, device=xb.device)
            x[start:start + bs] = xb
            del xb  # free this batch before the next one starts
    return (x, rec.result()) if trajectory else x


@torch.no_grad()
def interpolant_ode(posterior, interp, x_init, n_steps: int, *, generator=None, callback=None, check_every=1):
    """Euler for the interpolant PF-ODE dX/du = tau'(u) [alpha'(tau) E[z|X] + beta'(tau) E[x_1|X]], u: 0 -> 1.

    `posterior(x, tau) -> (eps_hat, x1_hat)`, e.g. `lambda x, tau: target.posterior_interpolant(x, tau, interp)`.
    The dilation lives in tau(u), so a uniform grid in u is the dilated schedule (Aranguri et al. 2025).
    Each step moves tau by tau(u_{i+1}) - tau(u_i) (Euler in tau on the dilated grid), which is exact across
    the kink of a piecewise-linear dilation for any step count.
    X_0 ~ N(0, c^2 I), i.e. `interp.prior(d).sample(n)`. callback(i, u, x) runs after every step.
    """
    x = _check_x(x_init)
    n = check_int("n_steps", n_steps, 1)
    us = torch.linspace(0.0, 1.0, n + 1, dtype=torch.float64)
    taus = interp.tau(us).tolist()
    run = _Stepper(lambda y, u: y, 1 - us, None, check_every, "interpolant_ode")
    us = us.tolist()
    own, can_own, buf = False, _owns_state(callback), None
    for i in range(n):
        tau, dtau = taus[i], taus[i + 1] - taus[i]
        eps_hat, x1_hat = posterior(x, tau)
        c1, c2 = dtau * float(interp.dalpha(tau)), dtau * float(interp.dbeta(tau))
        if own and not (_aliases(eps_hat, x) or _aliases(x1_hat, x)):
            # x + c1 eps_hat + c2 x1_hat, the same operations in place (one scratch buffer, outputs untouched)
            if buf is None:
                buf = torch.empty_like(x)
            x.add_(torch.mul(eps_hat, c1, out=buf))
            x.add_(torch.mul(x1_hat, c2, out=buf))
        else:
            x = x + c1 * eps_hat + c2 * x1_hat
            own = can_own
        del eps_hat, x1_hat
        run.done(i + 1, x)
        if callback is not None:
            callback(i + 1, us[i + 1], x)
    return x
