"""Randomness goes through an explicit torch.Generator; library code never seeds globally."""
from __future__ import annotations

from numbers import Integral

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


def as_generator(generator, device=None) -> torch.Generator | None:
    """None or a torch.Generator as given; an int seed becomes `make_generator(seed, device)`; else TypeError."""
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, Integral) and not isinstance(generator, bool):
        return make_generator(int(generator), device)
    raise TypeError(f"generator must be a torch.Generator, an int seed or None, got {type(generator).__name__} "
                    f"{generator!r}; e.g. generator=torch.Generator().manual_seed(42) or generator=42")


def randn(shape, *, generator: torch.Generator | None = None, device=None, dtype=torch.float32) -> torch.Tensor:
    """Standard normal draws; the generator's device wins over `device` when both are given."""
    generator = as_generator(generator, device)
    if generator is not None:
        device = generator.device
    return torch.randn(shape, generator=generator, device=resolve_device(device), dtype=dtype)
