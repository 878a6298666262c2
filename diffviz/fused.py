"""Fused sampling loops for Euler–Maruyama and the Euler PF-ODE: the eager samplers' results with fewer memory passes.

The step is the eager one (`diffviz.samplers`), x' = a x + b score(x, t) + c xi, with a = 1 - h f and
b = h g^2, c = sqrt(g^2 h) (em) or b = h g^2 / 2, c = 0 (ode-euler); what changes is how it is scheduled:

- Affine scores (`_affine_update`): when the score says it is coef x + shift with a per-row shift (the two-mode
  mixture: `exact_score(target, process)` exposes `target.score_affine`), the PF-ODE step is one pass over x after
  the sums the score needs, x' = (a + b coef) x + b shift, and EM adds the noise block by block while the block
  is in cache. The coefficient a + b coef is formed in float64 once, so the result equals the eager sampler's to
  float rounding (not bit for bit).
- Any other score, CPU (`_score_update`; both updates run in `_row_block_loop`): x is copied once, then updated in
  place a block of rows at a time; a block (about `block_elements` numbers, cache-sized) is scored, updated and
  given its noise while it sits in cache, so a step reads and writes x about once from memory instead of once per
  elementwise operation, and allocates nothing large. Row blocks hold a multiple of 16 numbers (the last one at
  least 16): torch's CPU normal generator then produces exactly the numbers of one draw over the whole array, so
  the result equals the eager sampler's (checked by tests/test_fused.py). The score must act row by row (exact
  target scores, per-sample networks).
- CUDA (`_cuda_graph_loop`): one step, with its time and coefficients read from device tensors by a step
  counter, is captured once as a CUDA graph and replayed N times: one launch per step instead of one per
  kernel (and the affine one-pass update when the score has one). The score is called with t as a 0-dim
  float64 CUDA tensor (exact target scores accept it); a score that cannot be captured (host syncs,
  host-to-device copies) falls back to the in-place loop with a warning. Not run in CI (no GPU there).

Public: `sample_fused` (use it through `diffviz.sample(..., fused=True)`) and `exact_score`. The eager samplers stay the
reference. Importing this module never touches CUDA.
"""
from __future__ import annotations

import math
import warnings

import torch

from .checks import check_choice, check_int
from .samplers import (RUNAWAY_FACTOR, _aliases, _check_x, _coefs, _Stepper, abs_max, check_score_output,
                       runaway_scale, warn_runaway)
from .schedules import check_grid

FUSED_METHODS = ("em", "ode-euler")
DEFAULT_BLOCK_ELEMENTS = 1 << 16  # any score: 256 KiB of float32, so a block and the score's temporaries stay in L2
AFFINE_BLOCK_ELEMENTS = 1 << 20  # affine scores: no temporaries of block size; larger blocks, less overhead
_NAMES = {"em": "euler_maruyama (fused)", "ode-euler": "ode_euler (fused)"}


def row_blocks(n: int, d: int, block_elements: int) -> list[tuple[int, int]]:
    """Row ranges [r0, r1) covering n rows of d numbers, about `block_elements` numbers each.

    Every block but the last holds a multiple of 16 numbers and the last one at least 16 (or it is the only
    block), so that drawing torch CPU normals block by block gives the numbers of one draw over all rows.
    """
    q = 16 // math.gcd(d, 16)  # rows * d is a multiple of 16 iff rows is a multiple of q
    rows = max(q, (max(1, block_elements // max(d, 1)) // q) * q)
    blocks = [(r, min(r + rows, n)) for r in range(0, n, rows)]
    if len(blocks) > 1 and (blocks[-1][1] - blocks[-1][0]) * d < 16:
        blocks[-2:] = [(blocks[-2][0], n)]
    return blocks


class exact_score:  # noqa: N801 - used like a function: exact_score(target, process)
    """score(x, t) = target.score(x, t, process), plus `affine(x, t)` = target.score_affine(x, t, process) when the
    target has one (score = coef x + shift), which `sample_fused` uses for its one-pass step."""

    def __init__(self, target, process):
        self.target, self.process = target, process
        if hasattr(target, "score_affine"):
            self.affine = lambda x, t: target.score_affine(x, t, process)

    def __call__(self, x, t):
        return self.target.score(x, t, self.process)

    def __repr__(self) -> str:
        return f"exact_score({self.target!r}, {self.process!r})"


def _step_coefficients(c: dict, ts: list, method: str) -> list[tuple[float, float, float]]:
    """(a, b, c) of x' = a x + b score + c xi for every step, as the eager samplers compute them."""
    out = []
    for i in range(len(ts) - 1):
        h, f, g2 = ts[i] - ts[i + 1], c["f"][i], c["g2"][i]
        if method == "em":
            out.append((1 - h * f, h * g2, math.sqrt(g2 * h)))
        else:
            out.append((1 - h * f, 0.5 * h * g2, 0.0))
    return out


@torch.no_grad()
def sample_fused(score, process, x_init, grid, *, method: str = "em", generator=None, callback=None,
                 check_every: int = 1, block_elements: int | None = None, cuda_graph: bool = True) -> torch.Tensor:
    """Euler–Maruyama (`method="em"`) or Euler PF-ODE (`"ode-euler"`) from x_init over `grid`, fused (see module).

    Same arguments and result as `diffviz.samplers.euler_maruyama` / `ode_euler` (x_init is not modified);
    `callback(i, t, x)` sees the live state, which later steps overwrite: copy what you keep.
    `block_elements`: numbers per row block on the CPU (default 2^16, 2^20 for affine scores; one block on a GPU);
    `cuda_graph=False` skips the CUDA graph.
    """
    check_choice("method", method, FUSED_METHODS)
    x_init, grid = _check_x(x_init), check_grid(grid, process)
    c = _coefs(process, grid, method)
    if x_init.device.type == "cuda" and cuda_graph:
        try:
            return _cuda_graph_loop(score, process, x_init, grid, c, method, generator, callback, check_every)
        except FloatingPointError:
            raise
        except Exception as err:  # noqa: BLE001 - any capture failure: run the in-place loop instead
            warnings.warn(f"sample_fused: CUDA graph capture failed ({type(err).__name__}: {err}); "
                          "running the in-place loop instead", RuntimeWarning, stacklevel=2)
    affine = callable(getattr(score, "affine", None))
    if block_elements is None:
        if x_init.device.type != "cpu":
            block_elements = x_init.numel()
        else:
            block_elements = AFFINE_BLOCK_ELEMENTS if affine else DEFAULT_BLOCK_ELEMENTS
    block_elements = check_int("block_elements", block_elements, 1)
    return _row_block_loop(score, grid, c, x_init, method, generator, callback, check_every, block_elements, affine)


def check_affine_output(coef, shift, x, name: str, where: str) -> None:
    """Raise ValueError unless coef x + shift is shaped like x (coef, shift broadcast to x's shape, not beyond it)
    and the tensors among coef, shift have x's dtype and device: metadata only."""
    parts = [v for v in (coef, shift) if isinstance(v, torch.Tensor)]
    try:
        full = torch.broadcast_shapes(*(v.shape for v in parts), x.shape)
    except RuntimeError:
        full = None
    if (not isinstance(shift, torch.Tensor) or full != x.shape
            or any(v.dtype != x.dtype or v.device != x.device for v in parts)):
        got = ", ".join(f"{k} {tuple(v.shape)} {v.dtype} on {v.device}" if isinstance(v, torch.Tensor)
                        else f"{k} {type(v).__name__}" for k, v in (("coef", coef), ("shift", shift)))
        raise ValueError(f"{name}: score.affine(x, t) at {where} must return (coef, shift) broadcasting to x "
                         f"(shape {tuple(x.shape)}, {x.dtype} on {x.device}), got {got}")


def _affine_update(score, run):
    """x_b <- a x_b + b score(x_b) in one pass, score = coef x + shift (rows independent; reads the block once)."""
    def update(xb, t, a, b):
        coef, shift = score.affine(xb, t)
        check_affine_output(coef, shift, xb, run.name, run.where(t))
        scale = a + b * coef  # x' = (a + b coef) x + b shift, while the block is in cache
        if isinstance(scale, torch.Tensor):
            torch.addcmul(shift * b, xb, scale, out=xb)
        else:
            torch.add(shift * b, xb, alpha=scale, out=xb)
    return update


def _score_update(score, run):
    """x_b <- a x_b + b score(x_b), the score evaluated on the block before it changes."""
    def update(xb, t, a, b):
        sb = run.eval(xb, t)
        if _aliases(sb, xb):
            sb = sb.clone()
        xb.mul_(a).add_(sb, alpha=b)
    return update


def _row_block_loop(score, grid, c, x_init, method, generator, callback, check_every, block_elements, affine):
    """A copy of x updated in place a row block at a time: drift step, then the block's noise, while in cache."""
    run = _Stepper(score, grid, callback, check_every, _NAMES[method], x_init, c)
    update = (_affine_update if affine else _score_update)(score, run)
    coefs = _step_coefficients(c, run.ts, method)
    x = torch.empty_like(x_init, memory_format=torch.contiguous_format).copy_(x_init)
    n, d = x.shape[0], x[0].numel()
    blocks = row_blocks(n, d, block_elements)
    noise = None
    if method == "em":
        noise = torch.empty((max(r1 - r0 for r0, r1 in blocks), *x.shape[1:]), dtype=x.dtype, device=x.device)
    with run.guard():
        for i in range(run.n):
            t = run.ts[i]
            a, b, sd = coefs[i]
            check = bool(run.check_every) and ((i + 1) % run.check_every == 0 or i + 1 == run.n)
            amax = 0.0  # max|x| over the blocks, while each is in cache; NaN/inf stops the search
            for r0, r1 in blocks:
                xb = x[r0:r1]
                update(xb, t, a, b)
                if noise is not None:
                    xb.add_(noise[: r1 - r0].normal_(generator=generator), alpha=sd)
                if check and math.isfinite(amax):
                    v = abs_max(xb)
                    amax = v if not math.isfinite(v) else max(amax, v)
            run.done(i + 1, x, amax=amax if check else None)
    return x


class _CounterStep:
    """One EM/Euler step whose time and coefficients are read from device tensors by a step counter, so the
    same call does step 0, 1, 2, ... in turn without any host work: what a CUDA graph can capture once.
    With `check`, max|x| is taken once per step (one pass): `first_bad` records the first step that left a
    non-finite value, `first_far` the first that left max|x| above RUNAWAY_FACTOR * runaway_scale (-1: none)
    and `far_amax` its max|x|. Score outputs are checked (shape, dtype, device) at every call, capture included."""

    def __init__(self, score, x_init, grid, c, method, generator, check):
        dev = x_init.device
        self.score, self.generator, self.check = score, generator, check
        self.affine = getattr(score, "affine", None)
        self.coef = torch.tensor(_step_coefficients(c, grid.tolist(), method), dtype=x_init.dtype, device=dev)
        self.t_dev = grid.to(device=dev, dtype=torch.float64)
        self.idx = torch.zeros(1, dtype=torch.long, device=dev)
        self.first_bad = torch.full((1,), -1, dtype=torch.long, device=dev)
        self.first_far = torch.full((1,), -1, dtype=torch.long, device=dev)
        self.far_amax = torch.zeros(1, dtype=torch.float64, device=dev)
        self.scale = runaway_scale(x_init, c["m"], c["s"]) if check else math.inf
        self.bound = torch.tensor(RUNAWAY_FACTOR * self.scale, dtype=torch.float64, device=dev)
        self.x = x_init.clone(memory_format=torch.contiguous_format)
        self.noise = torch.empty_like(self.x) if method == "em" else None

    def __call__(self):
        x, idx = self.x, self.idx
        t = self.t_dev.index_select(0, idx).squeeze(0)  # a 0-dim float64 tensor on x's device
        k = self.coef.index_select(0, idx).squeeze(0)  # (a, b, c) of this step
        if callable(self.affine):  # x' = (a + b coef) x + b shift: one pass
            c_x, shift = self.affine(x, t)
            check_affine_output(c_x, shift, x, "score.affine", "the captured step")
            torch.addcmul(shift * k[1], x, k[0] + k[1] * c_x, out=x)
        else:
            s = self.score(x, t)  # before x changes
            check_score_output(s, x, "score", "the captured step")
            if _aliases(s, x):
                s = s.clone()
            x.mul_(k[0]).addcmul_(s, k[1])
        if self.noise is not None:
            x.addcmul_(self.noise.normal_(generator=self.generator), k[2])
        if self.check:
            lo, hi = torch.aminmax(x)
            amax = torch.maximum(-lo, hi).reshape(1).to(torch.float64)  # NaN if any NaN, inf if any inf
            bad = ~torch.isfinite(amax)
            self.first_bad.copy_(torch.where(bad & (self.first_bad < 0), idx, self.first_bad))
            far = (amax > self.bound) & ~bad & (self.first_far < 0)
            self.far_amax.copy_(torch.where(far, amax, self.far_amax))
            self.first_far.copy_(torch.where(far, idx, self.first_far))
        idx.add_(1)

    def raise_if_diverged(self, ts, name):
        """FloatingPointError at the first non-finite step, else one DivergenceWarning at the first runaway step."""
        bad_step, far_step = int(self.first_bad.item()), int(self.first_far.item())
        if bad_step >= 0:
            raise FloatingPointError(
                f"{name} diverged: NaN/inf in the samples at step {bad_step + 1} of {len(ts) - 1} "
                f"(t = {ts[bad_step + 1]:.6g}); try more steps, another grid, or check the score")
        if far_step >= 0:
            warn_runaway(name, far_step + 1, len(ts) - 1, ts[far_step + 1], float(self.far_amax.item()), self.scale)


def _cuda_graph_loop(score, process, x_init, grid, c, method, generator, callback, check_every):
    """One `_CounterStep` captured as a CUDA graph, replayed once per step."""
    check_every = check_int("check_every", check_every, 0)
    dev = x_init.device
    ts = grid.tolist()
    step = _CounterStep(score, x_init, grid, c, method, generator, bool(check_every))

    # warm up the score (allocator, library handles) on a side stream, on a scratch copy, and check its shape
    side = torch.cuda.Stream(device=dev)
    side.wait_stream(torch.cuda.current_stream(dev))
    with torch.cuda.stream(side):
        scratch = step.x.clone()
        out = score(scratch, step.t_dev[:1].squeeze(0))
        check_score_output(out, scratch, _NAMES[method], f"step 1 of {len(ts) - 1} (t = {ts[0]:.6g})")
        del scratch, out
    torch.cuda.current_stream(dev).wait_stream(side)
    torch.cuda.synchronize(dev)

    graph = torch.cuda.CUDAGraph()
    if step.noise is not None and generator is not None:
        graph.register_generator_state(generator)
    with torch.cuda.graph(graph):
        step()
    step.idx.zero_()  # capture records the step without running it; the counter starts at 0 either way
    for i in range(len(ts) - 1):
        graph.replay()
        if callback is not None:
            callback(i + 1, ts[i + 1], step.x)
    if check_every:
        step.raise_if_diverged(ts, _NAMES[method])
    return step.x
