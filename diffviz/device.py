"""Device choice: CUDA when present, CPU always; one place to override it."""
from __future__ import annotations

import os

import torch


def default_device() -> torch.device:
    """The device used when none is given: $DIFFVIZ_DEVICE if set, else CUDA if available, else CPU."""
    env = os.environ.get("DIFFVIZ_DEVICE", "").strip()
    if env and env != "auto":
        return resolve_device(env)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device=None) -> torch.device:
    """Turn None/"auto"/"cpu"/"cuda"/"cuda:1"/torch.device into a usable torch.device, with a clear error."""
    if device is None or device == "auto":
        return default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available; use 'cpu' or 'auto'")
    return dev


def interactive_threads(n: int = 1) -> None:
    """Use `n` intra-op threads: on small shared CPUs one thread keeps sliders responsive (see README)."""
    torch.set_num_threads(n)
