"""A cache of trained models, keyed by everything that defines them.

key  = a JSON-compatible dict (process, horizon, target, network, optimiser settings, seed, code version)
name = sha256(canonical JSON of key) + ".pt", a file holding {"format", "key", "state_dict", "meta", "sha256"},
the last a digest of the weights (torch's zip format does not check its contents: a flipped bit in a tensor
would otherwise load silently).

Folder: the `directory` argument, else $DIFFVIZ_CACHE_DIR, else ~/.cache/diffviz (created on first save).
Safety:
- writes are atomic: a temporary file in the same folder, flushed and fsync'ed, then `os.replace`d onto
  the final name, so an interrupted write leaves no entry and no temporary file (a killed process leaves
  its `.<name>.diffviz-<random>.tmp`; the next write in the folder removes those older than 30 minutes);
- reads use `torch.load(..., weights_only=True)`: tensors and plain containers only, never arbitrary
  pickled objects; an entry whose stored key differs from the requested one, or that does not load, is
  refused with a `CacheError` naming the file and the reason;
- nothing is deleted: `quarantine` renames a refused entry to `<name>.rejected-<UTC time>` so it can be
  inspected; the cache only ever writes `<sha256>.pt` files and its own temporary files, and removes
  only its own stale temporary files.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from numbers import Integral, Real
from pathlib import Path

import torch

from .atomic import atomic_write

FORMAT = 1
ENV_VAR = "DIFFVIZ_CACHE_DIR"


class CacheError(ValueError):
    """A cache entry exists but is refused (unreadable, tampered, or stored under another key)."""


class CacheWarning(UserWarning):
    """`train_score` refused a cache entry, moved it aside and retrained."""


def default_cache_dir() -> Path:
    """$DIFFVIZ_CACHE_DIR if set, else ~/.cache/diffviz."""
    env = os.environ.get(ENV_VAR, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "diffviz"


def _jsonable(obj):
    """A plain JSON value for obj: tensors/arrays become {"dtype", "shape", "values"} (or a sha256 when large)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, Integral):
        return int(obj)
    if isinstance(obj, Real):
        value = float(obj)
        if not math.isfinite(value):
            raise TypeError(f"cache keys must hold finite numbers, got {value!r}")
        return value
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"cache key dicts must have str keys, got {k!r}")
            out[k] = _jsonable(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "__array__") and not isinstance(obj, torch.Tensor):
        obj = torch.as_tensor(obj.__array__())
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        desc = {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape)}
        if t.numel() <= 1024 and not t.is_complex():
            desc["values"] = _jsonable(t.tolist())
        else:
            desc["sha256"] = hashlib.sha256(t.reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()
        return desc
    raise TypeError(f"cache keys must be JSON-like (dict, list, str, number, bool, None, tensor), "
                    f"got {type(obj).__name__}: {obj!r}")


def canonical_json(key) -> str:
    """The canonical JSON text of a key: sorted keys, no spaces, floats by repr, tensors by value or digest."""
    return json.dumps(_jsonable(key), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def key_hash(key) -> str:
    """sha256 hex digest of the canonical JSON of `key`."""
    return hashlib.sha256(canonical_json(key).encode("ascii")).hexdigest()


def state_digest(state: dict) -> str:
    """sha256 over the names, dtypes, shapes and bytes of a state dict's tensors, in name order."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class Cache:
    """Trained-model files `<sha256(key)>.pt` in `directory` (default: $DIFFVIZ_CACHE_DIR or ~/.cache/diffviz)."""

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = Path(directory).expanduser() if directory is not None else default_cache_dir()

    def __repr__(self) -> str:
        return f"Cache({str(self.directory)!r})"

    def path(self, key) -> Path:
        """Where the entry for `key` lives (whether or not it exists)."""
        return self.directory / f"{key_hash(key)}.pt"

    def __contains__(self, key) -> bool:
        return self.path(key).is_file()

    def load(self, key) -> dict | None:
        """The entry {"key", "state_dict", "meta"} stored for `key`; None if absent; CacheError if refused."""
        path = self.path(key)
        if not path.exists():
            return None
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # truncated, altered bytes, or objects that are not plain tensors/containers
            raise CacheError(f"cache entry {path} was refused: it does not load as a weights-only torch file "
                             f"({type(err).__name__}: {_reason(err)})") from err
        if not isinstance(entry, dict) or not {"format", "key", "state_dict", "meta", "sha256"} <= set(entry):
            raise CacheError(f"cache entry {path} was refused: it is not a diffviz cache entry "
                             f"(expected a dict with format, key, state_dict, meta, sha256)")
        if entry["format"] != FORMAT:
            raise CacheError(f"cache entry {path} was refused: format {entry['format']!r}, expected {FORMAT}")
        try:
            stored = canonical_json(entry["key"])
        except TypeError as err:
            raise CacheError(f"cache entry {path} was refused: its stored key is malformed ({err})") from err
        wanted = canonical_json(key)
        if stored != wanted:
            raise CacheError(f"cache entry {path} was refused: its stored key does not match the requested key\n"
                             f"  stored:    {stored}\n  requested: {wanted}")
        state = entry["state_dict"]
        if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                  for k, v in state.items()):
            raise CacheError(f"cache entry {path} was refused: state_dict is not a dict of named tensors")
        if entry["sha256"] != state_digest(state):
            raise CacheError(f"cache entry {path} was refused: its weights do not match their stored sha256 "
                             f"(the file was altered or corrupted)")
        bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise CacheError(f"cache entry {path} was refused: non-finite values in {bad[:5]}")
        if not isinstance(entry["meta"], dict):
            raise CacheError(f"cache entry {path} was refused: meta is not a dict")
        return entry

    def save(self, key, state_dict: dict, meta: dict | None = None) -> Path:
        """Atomically write the entry for `key` (temp file in the same folder, fsync, os.replace); its path."""
        path = self.path(key)
        self.directory.mkdir(parents=True, exist_ok=True)
        state = {str(k): v.detach().cpu().clone() for k, v in state_dict.items()}
        entry = {"format": FORMAT, "key": json.loads(canonical_json(key)), "state_dict": state,
                 "meta": _plain(dict(meta or {})), "sha256": state_digest(state)}
        # entries may be shared read-only (e.g. by a class): 0644
        atomic_write(path, lambda f: torch.save(entry, f), mode="wb", perms=0o644)
        return path

    def quarantine(self, key) -> Path | None:
        """Rename a refused entry to `<name>.rejected-<UTC time>` (kept for inspection); its new path."""
        path = self.path(key)
        if not path.exists():
            return None
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = path.with_name(f"{path.name}.rejected-{stamp}")
        n = 1
        while target.exists():
            target = path.with_name(f"{path.name}.rejected-{stamp}-{n}")
            n += 1
        os.replace(path, target)
        return target

    def entries(self) -> list[Path]:
        """The entry files currently in the folder (names `<64 hex>.pt`)."""
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.glob("*.pt")
                      if len(p.stem) == 64 and all(c in "0123456789abcdef" for c in p.stem))


def _plain(obj):
    """obj rebuilt from exact plain types (str, int, float, bool, None, tensor, list, dict), which are what
    weights-only loading accepts; str subclasses such as torch.__version__ become str."""
    if obj is None or isinstance(obj, (bool, torch.Tensor)):
        return obj.detach().cpu() if isinstance(obj, torch.Tensor) else obj
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, Integral):
        return int(obj)
    if isinstance(obj, Real):
        return float(obj)
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    raise TypeError(f"cache meta must hold plain values (str, number, bool, None, tensor, list, dict), "
                    f"got {type(obj).__name__}")


def _reason(err: Exception) -> str:
    """The informative line of a loading error (weights-only errors put it after a long preamble)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines:
        if "Unsupported" in line or "global" in line.lower():
            return line
    return lines[0] if lines else "no details"
