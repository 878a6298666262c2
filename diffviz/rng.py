"""Randomness goes through an explicit torch.Generator; library code never seeds globally."""
from __future__ import annotations

import torch

from .device import resolve_device


def make_generator(seed: int | None = 0, device=None) -> torch.Generator:
    """A torch.Generator on `device`, seeded with `seed` (None: nondeterministic seed)."""
    gen = torch.Generator(device=resolve_device(device))
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen


def randn(shape, *, generator: torch.Generator | None = None, device=None, dtype=torch.float32) -> torch.Tensor:
    """Standard normal draws; the generator's device wins over `device` when both are given."""
    if generator is not None:
        device = generator.device
    return torch.randn(shape, generator=generator, device=resolve_device(device), dtype=dtype)
