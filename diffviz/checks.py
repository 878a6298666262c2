"""Input validation: every bad argument raises a ValueError naming the parameter, its value and the allowed range."""
from __future__ import annotations

import math
from numbers import Real

import torch


def _fmt(value) -> str:
    if isinstance(value, torch.Tensor) and value.numel() > 6:
        return f"tensor of shape {tuple(value.shape)}"
    return repr(value.tolist() if isinstance(value, torch.Tensor) else value)


def check_finite(name: str, value) -> float:
    """Return `value` as a float, or raise if it is not a finite real number."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite real number, got {_fmt(value)}")
    return float(value)


def check_positive(name: str, value) -> float:
    """Return `value` as a float, or raise unless 0 < value < inf."""
    v = check_finite(name, value)
    if not v > 0:
        raise ValueError(f"{name} must be > 0 (allowed range (0, inf)), got {v!r}")
    return v


def check_range(name: str, value, low=-math.inf, high=math.inf, *, low_open=False, high_open=False) -> float:
    """Return `value` as a float, or raise unless it lies in the stated interval."""
    v = check_finite(name, value)
    lo_ok = v > low if low_open else v >= low
    hi_ok = v < high if high_open else v <= high
    if not (lo_ok and hi_ok):
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must lie in {interval}, got {v!r}")
    return v


def check_int(name: str, value, low: int = 1, high: int | None = None) -> int:
    """Return `value` as an int, or raise unless it is an integer in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int,)) and not (
        isinstance(value, Real) and float(value).is_integer()
    ):
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    v = int(value)
    if v < low or (high is not None and v > high):
        rng = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be an integer {rng}, got {v!r}")
    return v


def check_choice(name: str, value, choices) -> str:
    """Return `value`, or raise unless it is one of `choices`."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def check_finite_tensor(name: str, x: torch.Tensor, where: str = "") -> torch.Tensor:
    """Raise FloatingPointError if `x` holds NaN or inf (a divergent simulation), naming where it happened."""
    if not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).sum().item()
        raise FloatingPointError(f"{name} became non-finite ({bad} of {x.numel()} entries NaN/inf){where}")
    return x


class DivergenceWarning(RuntimeWarning):
    """A sampler's state stayed finite but ran away far beyond the scale of its start and process (see
    `diffviz.samplers.runaway_scale`): the result is not a sample of anything the score describes."""
