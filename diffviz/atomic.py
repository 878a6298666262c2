"""Atomic file writes: nothing a user made is ever left half-written.

`atomic_write(path, write, mode)` calls `write(fh)` on a temporary file in the destination folder, flushes
and fsyncs it, gives it the usual permissions and `os.replace`s it onto `path` (atomic on POSIX and
Windows). On any failure, an interrupt included, the temporary file is removed and `path` is untouched.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_dir(directory) -> None:
    """Persist a rename itself (POSIX); a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, write: Callable, *, mode: str = "wb", perms: int | None = None) -> Path:
    """Write `path` atomically through `write(fh)`; `mode` "wb" or "w" (UTF-8); `perms` default 0666 & ~umask."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:40]}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, (0o666 & ~_umask()) if perms is None else perms)  # mkstemp makes 0600 files
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:  # includes KeyboardInterrupt: remove our own temporary file, keep the rest
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)
    return path
