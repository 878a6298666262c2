"""Denoising score matching: fit a `ScoreModel` to a target (or a data tensor) under a forward process.

Loss (Vincent 2011; Song et al. 2021), with x_t = m x0 + s z, t ~ U[t_min, T] and grad log p(x_t | x0) = -z/s:

    L = E_t lambda(t) E ||score_theta(x_t, t) + z/s||^2 = E_t (lambda(t)/s^2) E ||eps_theta(x_t, t) - z||^2

(averaged over coordinates), with the weighting lambda(t):
    "eps"        lambda = s^2  (Song's score-matching weighting = the plain noise-prediction loss; default)
    "likelihood" lambda = g^2  (bounds the KL / negative ELBO, Song et al. 2021b; high variance at small t for VP)
    "score"      lambda = 1    (raw score error; dominated by the smallest times).

Reproducible: with a given `seed`, the network initialisation (on CPU, under `torch.random.fork_rng`) and all
training randomness (a `torch.Generator` on the training device) are fixed, so the same seed twice gives
identical weights on the CPU. Threads are left to the caller: on a small shared CPU (2 cores) use one thread
(`diffviz.interactive_threads(1)` or OMP_NUM_THREADS=1); for these small networks two threads on two busy
cores were 10-15x slower per step than one (ScoreMLP, batch 512: 29 ms vs 290-480 ms).

Results are cached (`diffviz.cache`) under a key holding everything that defines them; see `train_score`.
"""
from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .cache import Cache, CacheError, CacheWarning, _jsonable
from .checks import check_choice, check_int, check_positive, check_range
from .device import resolve_device
from .models import PARAMETRIZATIONS, ScoreModel, default_net
from .processes import as_time
from .rng import make_generator

TRAIN_CODE_VERSION = 1  # bump whenever training or network code changes results: invalidates cached models
WEIGHTINGS = ("eps", "likelihood", "score")


@dataclass
class TrainingHistory:
    """What `train_score` did: per-step losses (steps,), seconds spent training, where the weights came from."""

    losses: torch.Tensor
    elapsed: float
    from_cache: bool
    key: dict = field(repr=False)
    cache_path: Path | None = None
    device: str = "cpu"


def loss_weight(process, t, weighting: str = "eps") -> torch.Tensor:
    """lambda(t)/s(t)^2, the factor of ||eps_theta - z||^2: 1 ("eps"), g^2/s^2 ("likelihood"), 1/s^2 ("score")."""
    check_choice("weighting", weighting, WEIGHTINGS)
    t = as_time(t)
    if weighting == "eps":
        return torch.ones_like(t, dtype=torch.float64)
    var = process.var(t).to(torch.float64)
    if weighting == "score":
        return 1.0 / var
    return process.g2(t).to(torch.float64) / var


def dsm_loss(model: ScoreModel, x0: torch.Tensor, t: torch.Tensor, weighting: str = "eps", *,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Weighted denoising score-matching loss on one batch x0 (n, ...) at times t (n,), a scalar tensor."""
    xt, z = model.process.marginal(x0, t, generator=generator)
    eps_hat = model.predict(xt, t, "eps")
    w = loss_weight(model.process, t, weighting).to(x0.dtype)
    return (w * (eps_hat - z).pow(2).flatten(1).mean(1)).mean()


class Adam:
    """Adam (Kingma & Ba 2015), bias-corrected: m <- b1 m + (1 - b1) g,  v <- b2 v + (1 - b2) g^2,
    p <- p - lr (m / (1 - b1^k)) / (sqrt(v / (1 - b2^k)) + eps).

    Written out (same update as torch.optim.Adam) because torch.optim imports torch._dynamo on first use,
    which costs several seconds per process: too slow for a notebook cell or a test.
    """

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = [p for p in params if p.requires_grad]
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.k = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.k += 1
        c1, c2 = 1 - self.b1 ** self.k, 1 - self.b2 ** self.k
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            m.lerp_(p.grad, 1 - self.b1)
            v.mul_(self.b2).addcmul_(p.grad, p.grad, value=1 - self.b2)
            p.addcdiv_(m, (v / c2).sqrt_().add_(self.eps), value=-self.lr / c1)


def init_parameters(net: nn.Module, seed: int) -> nn.Module:
    """Re-initialise every parameter of `net` on the CPU from `seed` (global RNG forked, not touched)."""
    owners = [name or type(net).__name__ for name, mod in net.named_modules()
              if any(True for _ in mod.parameters(recurse=False)) and not hasattr(mod, "reset_parameters")]
    if owners:
        raise ValueError(f"net has parameters in modules without reset_parameters() ({owners[:5]}), so they "
                         f"cannot be initialised from the seed; give those modules a reset_parameters method")
    net.to("cpu")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        for mod in net.modules():
            if hasattr(mod, "reset_parameters"):
                mod.reset_parameters()
    return net


def _source(target_or_data):
    """(draw(n, generator, device) -> (n, *shape) float32, event shape, key of the data)."""
    if isinstance(target_or_data, torch.Tensor):
        data = target_or_data.detach()
        if data.dim() < 2 or data.shape[0] < 1:
            raise ValueError(f"a data tensor must have shape (N, ...) with N >= 1, got {tuple(data.shape)}")
        if not torch.isfinite(data).all():
            raise ValueError("the data tensor holds NaN or inf values")
        cache = {}

        def draw(n, generator, device):
            if device not in cache:
                cache[device] = data.to(device=device, dtype=torch.float32)
            idx = torch.randint(data.shape[0], (n,), generator=generator, device=device)
            return cache[device][idx]

        return draw, tuple(data.shape[1:]), {"data": _jsonable(data)}
    if not hasattr(target_or_data, "sample"):
        raise ValueError(f"target_or_data must be a target with .sample(n, generator=...) or a data tensor (N, ...), "
                         f"got {type(target_or_data).__name__}")
    target = target_or_data
    shape = tuple(getattr(target, "shape", None) or (int(target.dim),))

    def draw(n, generator, device):
        x0 = target.sample(n, generator=generator, device=device, dtype=torch.float32)
        return x0.to(device=device, dtype=torch.float32)

    key = {"target": type(target).__name__, "params": target.key()} if hasattr(target, "key") else None
    return draw, shape, key


def _resolve_cache(cache) -> Cache | None:
    if cache is False or cache is None:
        return None
    if cache is True:
        return Cache()
    if isinstance(cache, Cache):
        return cache
    if isinstance(cache, (str, Path)):
        return Cache(cache)
    raise ValueError(f"cache must be True, False, a folder path or a diffviz.cache.Cache, got {cache!r}")


def train_score(target_or_data, process, *, net: nn.Module | None = None, parametrization: str = "eps",
                steps: int = 2000, batch_size: int = 512, lr: float = 2e-3, t_min: float | None = None,
                T: float | None = None, weighting: str = "eps", ema: float = 0.999, seed: int = 0, device=None,
                progress: bool = True, on_step=None, cache=True) -> ScoreModel:
    """Train a score network by denoising score matching; returns a frozen `ScoreModel` (EMA weights).

    target_or_data: a target (`sample(n, generator=, device=, dtype=)`, `key()`, `shape` or `dim`) or a fixed
        data tensor (N, *shape), e.g. `Digits().data`, resampled with replacement.
    net: an untrained network (re-initialised from `seed`); default `ScoreConvNet` for (C, H, W) samples,
        else `ScoreMLP(d)`.
    t_min, T: training times t ~ U[t_min, T]; defaults process.t_min (1e-3 for VP, 0 for VE) and process.T;
        s(t_min) must be > 0.
    ema: EMA decay of the returned weights, warmed up as min(ema, (1 + k)/(10 + k)) at step k.
    device: None/"auto" -> CUDA when present (see `diffviz.device.resolve_device`); same code on both.
    progress: a `tqdm.auto` bar (widget in Jupyter, text in a terminal). on_step(step, loss) is called after
        every optimiser step with the 1-based step count and the batch loss as a float (a device sync on CUDA).
    cache: True (folder $DIFFVIZ_CACHE_DIR or ~/.cache/diffviz), False, a folder path, or a `Cache`. A hit
        loads the weights without training (on_step is never called). A refused entry (tampered, truncated,
        stored under another key) raises a `CacheWarning`, is renamed aside to `<name>.rejected-<time>` (not
        deleted), and the model is retrained and saved atomically.
    The returned model has `.history` (a `TrainingHistory`: losses, elapsed seconds, from_cache, key, path).
    """
    parametrization = check_choice("parametrization", parametrization, PARAMETRIZATIONS)
    weighting = check_choice("weighting", weighting, WEIGHTINGS)
    steps = check_int("steps", steps, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    lr = check_positive("lr", lr)
    ema = check_range("ema", ema, 0.0, 1.0, high_open=True)
    seed = check_int("seed", seed, 0)
    T = float(process.T) if T is None else check_range("T", T, 0.0, float(process.T), low_open=True)
    t_min = float(process.t_min) if t_min is None else check_range("t_min", t_min, 0.0, T, high_open=True)
    if not t_min < T:
        raise ValueError(f"t_min must be < T (allowed range [0, {T})), got t_min={t_min}")
    if not float(process.std(t_min)) > 0:
        raise ValueError(f"t_min={t_min} gives std s(t_min) = 0 for {process!r}, where the score is singular; "
                         f"choose t_min > 0 (VP default 1e-3)")
    if on_step is not None and not callable(on_step):
        raise ValueError(f"on_step must be a callable on_step(step, loss) or None, got {on_step!r}")
    dev = resolve_device(device)
    store = _resolve_cache(cache)

    draw, shape, data_key = _source(target_or_data)
    net = default_net(shape) if net is None else net
    if not isinstance(net, nn.Module):
        raise ValueError(f"net must be a torch.nn.Module mapping (x, c_noise) -> like x, got {type(net).__name__}")
    init_parameters(net, seed)
    model = ScoreModel(net, process, parametrization)

    key = None
    if data_key is not None and hasattr(net, "key"):
        from . import __version__

        key = {"kind": "diffviz.train_score", "diffviz": __version__, "train_code": TRAIN_CODE_VERSION,
               "process": process.key(), "T": T, "t_min": t_min, "data": data_key, "net": net.key(),
               "parametrization": parametrization, "weighting": weighting, "steps": steps,
               "batch_size": batch_size, "lr": lr, "ema": ema, "seed": seed, "dtype": "float32"}
    if store is not None:
        if key is None:
            raise ValueError("caching needs target.key() and net.key() to describe the model; pass cache=False")
        entry = None
        try:
            entry = store.load(key)
            if entry is not None:
                loaded = copy.deepcopy(model, {id(process): process})  # no half-loaded weights if it fails
                try:
                    loaded.load_state_dict(entry["state_dict"], strict=True)
                except (RuntimeError, ValueError) as err:
                    raise CacheError(f"cache entry {store.path(key)} was refused: its weights do not fit the "
                                     f"network ({str(err).splitlines()[0]})") from err
                model = loaded
        except CacheError as err:
            moved = store.quarantine(key)
            warnings.warn(f"{err}\nIt was moved aside to {moved}; retraining.", CacheWarning, stacklevel=2)
            entry = None
        if entry is not None:
            meta = entry["meta"]
            losses = meta.get("losses")
            model.history = TrainingHistory(
                losses=losses if isinstance(losses, torch.Tensor) else torch.tensor([], dtype=torch.float32),
                elapsed=float(meta.get("elapsed", math.nan)), from_cache=True, key=key,
                cache_path=store.path(key), device=str(dev))
            return _frozen(model.to(dev))

    model, history = _fit(model, draw, t_min, T, weighting, steps, batch_size, lr, ema, seed, dev, progress, on_step)
    history.key = key
    if store is not None:
        meta = {"losses": history.losses, "elapsed": history.elapsed, "device": str(dev),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "torch": torch.__version__}
        history.cache_path = store.save(key, model.state_dict(), meta)
    model.history = history
    return model


def _fit(model, draw, t_min, T, weighting, steps, batch_size, lr, ema, seed, dev, progress, on_step):
    """The training loop; returns (frozen EMA model, TrainingHistory)."""
    from tqdm.auto import tqdm

    gen = make_generator(seed, dev)
    model = model.to(dev)
    with torch.no_grad():  # c_in needs the data's mean square per coordinate: a pilot draw from the same stream
        pilot = draw(max(4096, batch_size), gen, dev)
        model.data_var.fill_(max(float(pilot.double().pow(2).mean()), 1e-12))
    averaged = copy.deepcopy(model, {id(model.process): model.process}).requires_grad_(False)
    params, avg_params = list(model.parameters()), list(averaged.parameters())
    opt = Adam(params, lr=lr)
    losses = torch.empty(steps, dtype=torch.float32, device=dev)
    model.train()
    start = time.perf_counter()
    with tqdm(total=steps, desc="train_score", disable=not progress, leave=False) as bar:
        for k in range(steps):
            x0 = draw(batch_size, gen, dev)
            t = t_min + (T - t_min) * torch.rand(batch_size, generator=gen, device=dev, dtype=torch.float64)
            loss = dsm_loss(model, x0, t, weighting, generator=gen)
            opt.zero_grad()
            loss.backward()
            opt.step()
            decay = min(ema, (1.0 + k) / (10.0 + k))
            with torch.no_grad():
                for pa, p in zip(avg_params, params):
                    pa.lerp_(p, 1.0 - decay)
            losses[k] = loss.detach()
            bar.update(1)
            if progress and (k % 50 == 0 or k == steps - 1):
                bar.set_postfix(loss=f"{loss.item():.4g}")
            if on_step is not None:
                on_step(k + 1, loss.item())
    elapsed = time.perf_counter() - start
    losses = losses.cpu()
    if not torch.isfinite(losses).all():
        bad = int((~torch.isfinite(losses)).nonzero()[0])
        raise FloatingPointError(f"training loss became non-finite at step {bad + 1}; lower lr or raise t_min")
    history = TrainingHistory(losses=losses, elapsed=elapsed, from_cache=False, key={}, device=str(dev))
    return _frozen(averaged), history


def _frozen(model: ScoreModel) -> ScoreModel:
    """Eval mode, no parameter gradients: sampling builds no autograd graph unless x requires grad."""
    return model.eval().requires_grad_(False)
