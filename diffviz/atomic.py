"""Atomic file writes: nothing a user made is ever left half-written.

`atomic_write(path, write, mode)` calls `write(fh)` on a temporary file in the destination folder, flushes
and fsyncs it, gives it the usual permissions and `os.replace`s it onto `path` (atomic on POSIX and
Windows). On any failure, an interrupt included, the temporary file is removed and `path` is untouched.
`check_writable(name, path)` refuses, before any work is done, a `path` that could not be written.
A killed process cannot clean up: its temporary file `.<name>.diffviz-<random>.tmp` stays behind, so every
write first removes such files in its folder that nobody has touched for `STALE_AFTER_S` (a live writer keeps
its file's modification time fresh); files of any other name are never removed.
"""
from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path
from typing import Callable

TEMP_MARK = ".diffviz-"  # temporary files are named .<name>.diffviz-<random>.tmp
STALE_AFTER_S = 30 * 60
_TEMP_NAME = re.compile(r"\..*" + re.escape(TEMP_MARK) + r"[a-z0-9_]+\.tmp", re.DOTALL)


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


def remove_stale_temp_files(directory, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove our own temporary files (`.<name>.diffviz-<random>.tmp`) in `directory` untouched for `older_than_s`."""
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        try:
            if (_TEMP_NAME.fullmatch(entry.name) and entry.is_file(follow_symlinks=False)
                    and now - entry.stat(follow_symlinks=False).st_mtime > older_than_s):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # gone already (another cleaner) or not ours to remove: never fail a write over it
            pass
    return removed


def atomic_write(path, write: Callable, *, mode: str = "wb", perms: int | None = None) -> Path:
    """Write `path` atomically through `write(fh)`; `mode` "wb" or "w" (UTF-8); `perms` default 0666 & ~umask."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:40]}{TEMP_MARK}", suffix=".tmp", dir=path.parent)
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


def check_writable(name: str, path) -> Path:
    """Return `path`, or raise a ValueError naming `name` unless a file can be written there: `path` is not a
    folder, and its nearest existing folder (the rest is created when written) accepts a new file (probed)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise ValueError(f"{name} must be a file, got {str(path)!r}, which is a folder")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"{name} {str(path)!r} cannot be written: {str(folder)!r} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name[:40]}.", suffix=".probe", dir=folder)
    except OSError as err:
        raise ValueError(f"{name} {str(path)!r} cannot be written: no new file can be made in {str(folder)!r} "
                         f"({err.strerror or err})") from err
    os.close(fd)
    os.unlink(probe)
    return path
