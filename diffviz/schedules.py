"""Time grids for reverse-time samplers: N steps = N + 1 strictly decreasing times from t_max to t_min.

Grids live in the diffusion time t of a process (0 = data, T = noise). Several are defined in the
noise-to-signal ratio sigma = s/m and mapped back with `process.t_of_sigma`, so the same rule means the
same thing for VP and VE. With u = i/N (i = 0 is the noisiest point):

- uniform:     t_i = t_max + u (t_min - t_max)
- quadratic:   t_i = t_min + (t_max - t_min)(1 - u)^2            (dense near the data)
- log_snr:     log sigma_i uniform in u                            (uniform in log-SNR = -2 log sigma)
- karras:      sigma_i = (sigma_max^(1/rho) + u (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho  (EDM, rho = 7)
- cosine:      arctan(sigma_i) uniform in u                        (iDDPM cosine: alpha_bar = cos^2 of a linear angle)
- tangent:     arctan(sigma_i / sqrt(lam)) uniform in u            (Sun et al.'s optimal grid for eigenvalue lam;
               with several eigenvalues, Phi(sigma) = int sqrt(F), F = sum_j w_j lam_j / (lam_j + sigma^2)^2, uniform)
- dilated:     for an `Interpolant`, uniform in its sampling time u (the dilation lives in tau(u)).
"""
from __future__ import annotations

import math

import torch

from .checks import check_choice, check_int, check_positive, check_range
from .processes import check_process


def _ends(process, t_max, t_min):
    check_process(process)
    t_max = float(process.T) if t_max is None else check_positive("t_max", t_max)
    if t_max > process.T * (1 + 1e-12):
        raise ValueError(f"t_max must lie in (0, T] = (0, {process.T:g}] for {process!r}, got {t_max!r}; "
                         f"for a longer horizon build the process with it (e.g. VP(T={t_max:g}))")
    t_min = float(process.t_min) if t_min is None else check_range("t_min", t_min, 0.0, math.inf)
    if not t_min < t_max:
        raise ValueError(f"t_min must be < t_max (allowed range [0, {t_max})), got t_min={t_min}, t_max={t_max}")
    return t_max, t_min


def _u(n_steps: int) -> torch.Tensor:
    n = check_int("n_steps", n_steps, 1)
    return torch.linspace(0.0, 1.0, n + 1, dtype=torch.float64)


def _finish(ts: torch.Tensor, t_max: float, t_min: float) -> torch.Tensor:
    """Pin the ends exactly and check the grid is strictly decreasing."""
    ts = ts.clone()
    ts[0], ts[-1] = t_max, t_min
    if not bool((ts[1:] < ts[:-1]).all()):
        raise ValueError("the grid is not strictly decreasing: too many steps for this range in float64; "
                         f"reduce n_steps (got {ts.numel() - 1}) or widen [t_min, t_max]")
    return ts


def _sigma_ends(process, t_max, t_min):
    s_hi = float(process.sigma(t_max))
    s_lo = float(process.sigma(t_min))
    return s_hi, s_lo


def _from_sigmas(process, sigmas, t_max, t_min):
    return _finish(process.t_of_sigma(sigmas).clamp(t_min, t_max), t_max, t_min)


def uniform(process, n_steps: int, *, t_max=None, t_min=None) -> torch.Tensor:
    """t_i = t_max + (i/N)(t_min - t_max)."""
    t_max, t_min = _ends(process, t_max, t_min)
    return _finish(t_max + _u(n_steps) * (t_min - t_max), t_max, t_min)


def quadratic(process, n_steps: int, *, t_max=None, t_min=None) -> torch.Tensor:
    """t_i = t_min + (t_max - t_min)(1 - i/N)^2: steps shrink quadratically towards the data."""
    t_max, t_min = _ends(process, t_max, t_min)
    return _finish(t_min + (t_max - t_min) * (1 - _u(n_steps)) ** 2, t_max, t_min)


def log_snr(process, n_steps: int, *, t_max=None, t_min=None) -> torch.Tensor:
    """log sigma_i uniform in i (uniform log-SNR); needs sigma(t_min) > 0."""
    t_max, t_min = _ends(process, t_max, t_min)
    s_hi, s_lo = _sigma_ends(process, t_max, t_min)
    if not s_lo > 0:
        raise ValueError(f"log_snr grids need sigma(t_min) > 0; use t_min > 0 (got t_min={t_min})")
    u = _u(n_steps)
    return _from_sigmas(process, torch.exp(math.log(s_hi) + u * (math.log(s_lo) - math.log(s_hi))), t_max, t_min)


def karras(process, n_steps: int, *, rho: float = 7.0, t_max=None, t_min=None) -> torch.Tensor:
    """EDM grid: sigma_i^(1/rho) linear in i (Karras et al. 2022)."""
    rho = check_positive("rho", rho)
    t_max, t_min = _ends(process, t_max, t_min)
    s_hi, s_lo = _sigma_ends(process, t_max, t_min)
    u = _u(n_steps)
    sig = (s_hi ** (1 / rho) + u * (s_lo ** (1 / rho) - s_hi ** (1 / rho))) ** rho
    return _from_sigmas(process, sig, t_max, t_min)


def cosine(process, n_steps: int, *, t_max=None, t_min=None) -> torch.Tensor:
    """arctan(sigma_i) linear in i: the cosine schedule alpha_bar = cos^2(angle) (Nichol & Dhariwal 2021)."""
    return tangent(process, n_steps, lam=1.0, t_max=t_max, t_min=t_min)


def tangent(process, n_steps: int, *, lam=1.0, weights=None, t_max=None, t_min=None) -> torch.Tensor:
    """Tangent law (Sun et al.): Phi(sigma_i) linear in i, Phi = arctan(sigma/sqrt(lam)) for one eigenvalue.

    With several eigenvalues `lam` (and optional `weights`), Phi(sigma) = int_0^sigma sqrt(F),
    F(sigma) = sum_j w_j lam_j / (lam_j + sigma^2)^2 (derived for diffviz, unconfirmed against the paper).
    The noise levels come from `theory.tangent_grid_sigmas(_multi)`; here they are mapped to times.
    """
    from . import theory

    t_max, t_min = _ends(process, t_max, t_min)
    s_hi, s_lo = _sigma_ends(process, t_max, t_min)
    lam = torch.as_tensor(lam, dtype=torch.float64).reshape(-1)
    if not bool(torch.isfinite(lam).all()) or not bool((lam > 0).all()):
        raise ValueError(f"lam must hold finite eigenvalues > 0, got {lam.tolist()[:6]}")
    if lam.numel() == 1 and weights is None:
        sig = theory.tangent_grid_sigmas(n_steps, lam.item(), s_hi, s_lo)
    else:
        sig = theory.tangent_grid_sigmas_multi(n_steps, lam, weights, s_hi, s_lo)
    return _from_sigmas(process, sig, t_max, t_min)


def dilated(process, n_steps: int, *, t_max=None, t_min=None) -> torch.Tensor:
    """Uniform grid in the sampling time of an `Interpolant` whose dilation tau(u) is built in."""
    if not hasattr(process, "tau"):
        raise ValueError(f"dilated grids need an Interpolant (with a time dilation), got {type(process).__name__}; "
                         "build one with Interpolant(kind, dilation='dilated', d=...)")
    return uniform(process, n_steps, t_max=t_max, t_min=t_min)


GRIDS = {
    "uniform": uniform,
    "quadratic": quadratic,
    "log_snr": log_snr,
    "karras": karras,
    "cosine": cosine,
    "tangent": tangent,
    "dilated": dilated,
}


def make_grid(name: str, process, n_steps: int, **kwargs) -> torch.Tensor:
    """The grid called `name` (one of GRIDS) for `process` with `n_steps` steps."""
    check_choice("schedule", name, GRIDS.keys())
    return GRIDS[name](process, n_steps, **kwargs)


def check_grid(grid, process=None) -> torch.Tensor:
    """Validate a user grid: 1-D, >= 2 finite points, strictly decreasing, inside [0, T]; returns float64 CPU."""
    if process is not None:
        check_process(process)
    g = torch.as_tensor(grid, dtype=torch.float64).detach().cpu()
    if g.dim() != 1 or g.numel() < 2:
        hint = "; for the uniform N-step grid use schedules.uniform(process, N) (samplers.sample takes an int N)"
        raise ValueError(f"grid must be a 1-D sequence of at least 2 times (N steps = N + 1 points), "
                         f"got shape {tuple(g.shape)}" + (hint if g.dim() == 0 else ""))
    if not bool(torch.isfinite(g).all()):
        raise ValueError("grid must hold finite times")
    if not bool((g[1:] < g[:-1]).all()):
        raise ValueError("grid must be strictly decreasing (from noise to data), e.g. schedules.uniform(process, N)")
    if g[-1] < 0 or (process is not None and g[0] > process.T * (1 + 1e-12)):
        hi = "T" if process is None else f"T={process.T:g}"
        raise ValueError(f"grid times must lie in [0, {hi}], got [{g[-1].item():g}, {g[0].item():g}]")
    return g
