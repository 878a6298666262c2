"""Shared pieces of every target: the `Target` interface, noise coefficients, Tweedie's formula, checks.

A target is a data law p_0 on R^d (or on images of shape `shape`).  Its noised law p_t is the law of
x_t = m(t) x_0 + s(t) z, z ~ N(0, I), with m = process.mean_scale(t), s = process.std(t).
"""
from __future__ import annotations

import hashlib
import math

import torch

from ..device import resolve_device
from ..processes import as_time

LOG_2PI = math.log(2 * math.pi)


class Target:
    """Base class: `shape`, `dim`, `sample`, and where closed forms exist `log_prob`, `score`, `log_prob_t`."""

    shape: tuple = ()

    @property
    def dim(self) -> int:
        """Flattened dimension d = prod(shape)."""
        return math.prod(self.shape)

    # --- to be provided by subclasses -----------------------------------------------------------------
    def sample(self, n: int, *, generator: torch.Generator | None = None, device=None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """n draws from p_0, shape (n, *shape)."""
        raise NotImplementedError(f"{type(self).__name__} has no sampler")

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p_0(x), shape x.shape[:-len(shape)]."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form log_prob")

    def score(self, x: torch.Tensor, t, process) -> torch.Tensor:
        """Exact grad_x log p_t(x), same shape as x."""
        raise NotImplementedError(f"{type(self).__name__} has no exact score")

    def posterior(self, x: torch.Tensor, t, process):
        """(E[x_0 | x_t = x], E[z | x_t = x]) from the exact score by Tweedie's formula (see `tweedie`)."""
        m, s = noise_coeffs(process, t, x)
        return tweedie(x, self.score(x, t, process), m, s)

    # --- description ----------------------------------------------------------------------------------
    def _params(self) -> dict:
        return {}

    def key(self) -> dict:
        """Everything that defines the target, for cache keys and figure labels."""
        return {"target": type(self).__name__, **self._params()}

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({fields})"

    # --- helpers --------------------------------------------------------------------------------------
    def _check_x(self, x, name: str = "x") -> torch.Tensor:
        """Raise unless x is a floating tensor whose trailing dimensions equal `shape`."""
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor of shape (n, {', '.join(map(str, self.shape))}), "
                             f"got {type(x).__name__}")
        k = len(self.shape)
        if x.dim() < k or tuple(x.shape[x.dim() - k:]) != tuple(self.shape):
            raise ValueError(f"{name} must have trailing shape {tuple(self.shape)} (dim = {self.dim}) for "
                             f"{type(self).__name__}, got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
        return x

    def _cached(self, name: str, tensor: torch.Tensor, device, dtype) -> torch.Tensor:
        """`tensor` moved to (device, dtype), converted once per combination."""
        cache = self.__dict__.setdefault("_cache", {})
        k = (name, str(device), dtype)
        if k not in cache:
            cache[k] = tensor.to(device=device, dtype=dtype)
        return cache[k]


# --- noise coefficients and posterior means ----------------------------------------------------------------
def noise_coeffs(process, t, x: torch.Tensor):
    """(m, s) = (process.mean_scale(t), process.std(t)) as float64 tensors on x's device, shape () or (n,).

    A tensor t of shape (n,) gives one time per sample and must match x.shape[0].
    """
    t = as_time(t).to(torch.float64)
    if t.dim() > 1 or (t.dim() == 1 and (x.dim() < 2 or t.shape[0] != x.shape[0])):
        raise ValueError(f"t must be a scalar or have shape ({x.shape[0]},) to match x of shape "
                         f"{tuple(x.shape)}, got shape {tuple(t.shape)}")
    m = process.mean_scale(t).to(dtype=torch.float64, device=x.device)
    s = process.std(t).to(dtype=torch.float64, device=x.device)
    return m, s


def check_scalar_time(t) -> None:
    """Raise ValueError unless t is a float or a one-element tensor."""
    if isinstance(t, torch.Tensor) and t.numel() != 1:
        raise ValueError(f"t must be a scalar time here, got a tensor of shape {tuple(t.shape)}")


def tweedie(x: torch.Tensor, score: torch.Tensor, m, s):
    """Tweedie: E[x_0|x] = (x + s^2 score)/m and E[z|x] = -s score, for x = m x_0 + s z.

    m, s: floats or tensors of shape () or (n,). E[x_0|x] is undefined where m = 0 (pure noise).
    """
    m = torch.as_tensor(m, dtype=torch.float64, device=x.device)
    s = torch.as_tensor(s, dtype=torch.float64, device=x.device)
    if m.dim() == 1:
        m = m.reshape(-1, *([1] * (x.dim() - 1)))
        s = s.reshape(-1, *([1] * (x.dim() - 1)))
    m, s = m.to(x.dtype), s.to(x.dtype)
    x0_hat = (x + s ** 2 * score) / m
    eps_hat = -s * score
    return x0_hat, eps_hat


# --- small utilities ---------------------------------------------------------------------------------------
def as_float64(name: str, value) -> torch.Tensor:
    """`value` as a finite float64 CPU tensor, or ValueError naming the parameter."""
    try:
        out = torch.as_tensor(value, dtype=torch.float64).detach().cpu().clone()
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be a number or a tensor of real numbers, got {type(value).__name__}") from err
    if not torch.isfinite(out).all():
        raise ValueError(f"{name} must be finite, got non-finite entries")
    return out


def check_spd(name: str, cov: torch.Tensor) -> None:
    """Raise ValueError unless the (..., d, d) float64 matrices are symmetric positive definite."""
    scale = cov.abs().amax().item() if cov.numel() else 1.0
    asym = (cov - cov.transpose(-1, -2)).abs().amax().item() if cov.numel() else 0.0
    if asym > 1e-10 * max(scale, 1e-300):
        raise ValueError(f"{name} must be symmetric positive definite, but it is not symmetric "
                         f"(max |A - A^T| = {asym:.3g})")
    _, info = torch.linalg.cholesky_ex(cov)
    if (info != 0).any():
        raise ValueError(f"{name} must be symmetric positive definite, but the Cholesky factorization failed "
                         f"(smallest eigenvalue {torch.linalg.eigvalsh(cov).min().item():.3g})")


def sample_device(generator: torch.Generator | None, device) -> torch.device:
    """Device of the draws: the generator's device when one is given, else `resolve_device(device)`."""
    return generator.device if generator is not None else resolve_device(device)


def digest(*tensors: torch.Tensor) -> str:
    """Short hash of float64 tensor contents, for cache keys of targets with many parameters."""
    h = hashlib.sha1()
    for t in tensors:
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to("cpu", torch.float64).contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


def row_sums(x: torch.Tensor, *, chunk_elems: int = 1 << 24):
    """(sum_i x_i, sum_i x_i^2) over the last dim in float64, chunked over rows (no float64 copy of x)."""
    d = x.shape[-1]
    flat = x.reshape(-1, d)
    rows = max(1, chunk_elems // max(d, 1))
    sums, sqs = [], []
    for start in range(0, flat.shape[0], rows):
        block = flat[start:start + rows].to(torch.float64)
        sums.append(block.sum(-1))
        sqs.append((block * block).sum(-1))
    lead = x.shape[:-1]
    if not sums:
        empty = torch.zeros(lead, dtype=torch.float64, device=x.device)
        return empty, empty.clone()
    return torch.cat(sums).reshape(lead), torch.cat(sqs).reshape(lead)
