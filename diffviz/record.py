"""Figures a notebook records for tests and sweeps: `record(name, value)` -> {name: value} -> a JSON file.

A notebook's setup cell calls `set_path(FIGURES_PATH)` (a papermill parameter, default None); every
`record` then rewrites that file atomically (temporary file in the same folder, then `os.replace`), so
a reader never sees half a file and a notebook that fails half-way still leaves the figures recorded so
far. Without a path, `$DIFFVIZ_FIGURES` is used if set; with neither, figures stay in memory only.
Values are stored as plain JSON: numbers, bools, strings, None and (nested) lists of them; tensors and
NumPy values are converted with `.tolist()`; NaN and inf are written as Python's json writes them
(NaN, Infinity) and read back as floats. Dependency-free on purpose: standard library only.
"""
from __future__ import annotations

import json
import os
from numbers import Integral, Real
from pathlib import Path

from .atomic import atomic_write

ENV_VAR = "DIFFVIZ_FIGURES"

_FIGURES: dict = {}
_PATH: Path | None = None


def _plain(value, name: str):
    """A JSON-ready copy of value: bool/int/float/str/None or lists of them (tensors/arrays via tolist)."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()  # torch tensors, NumPy arrays and NumPy scalars
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v, name) for v in value]
    raise ValueError(f"record({name!r}, value): value must be a number, bool, str, None or a list of them, "
                     f"got {type(value).__name__}")


def set_path(path=None, *, clear: bool = True) -> Path | None:
    """Write recorded figures to `path` (None: fall back to $DIFFVIZ_FIGURES); by default forget earlier figures."""
    global _PATH
    _PATH = None if path is None else Path(path).expanduser().resolve()
    if clear:
        _FIGURES.clear()
    target = figures_path()
    if target is not None:
        _write(target, _FIGURES)
    return target


def figures_path() -> Path | None:
    """The file `record` writes to: the path given to `set_path`, else $DIFFVIZ_FIGURES, else None."""
    if _PATH is not None:
        return _PATH
    env = os.environ.get(ENV_VAR, "").strip()
    return Path(env).expanduser().resolve() if env else None


def record(name: str, value):
    """Store figure `name` = value (replacing an earlier one), rewrite the figures file, and return value."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    _FIGURES[name] = _plain(value, name)
    target = figures_path()
    if target is not None:
        _write(target, _FIGURES)
    return value


def figures() -> dict:
    """A copy of the figures recorded so far in this process."""
    return json.loads(json.dumps(_FIGURES))


def clear() -> None:
    """Forget all recorded figures (the file, if any, is left as it is until the next `record`)."""
    _FIGURES.clear()


def load_figures(path) -> dict:
    """Read a figures JSON file written by `record` (a flat {name: value} object)."""
    path = Path(path)
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object {{name: value}}, got {type(data).__name__}")
    return data


def _write(path: Path, data: dict) -> None:
    """Atomically replace `path` by the JSON of `data`."""
    def dump(fh):
        json.dump(data, fh, indent=1, sort_keys=True, allow_nan=True)
        fh.write("\n")

    atomic_write(path, dump, mode="w")
