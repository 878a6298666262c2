"""Journal of finished sweep rows: one JSON line per row, flushed and fsynced as it is appended, so a kill loses none.

The journal of a sweep table `out` is `<out>.journal.jsonl`, in the same folder. `sweep` appends every finished
row to it at once and, at each table save, writes the table atomically first and only then removes the journal:
at every moment each finished row is in the table, in the journal, or in both. Rows are JSON objects with their
columns in order (NaN and inf written as Python's json writes them); `read_journal` skips a line that does not
parse, as the last line is when the writer was killed mid-write.
"""
from __future__ import annotations

import json
import logging
import os
from numbers import Real
from pathlib import Path

from .atomic import fsync_dir

SUFFIX = ".journal.jsonl"


def journal_path(out) -> Path:
    """The journal next to the sweep table `out`: `<out>.journal.jsonl`."""
    out = Path(out).expanduser()
    return out.with_name(out.name + SUFFIX)


def _plain(value):
    """JSON fallback for a row value: NumPy/torch scalars via .item(), other real numbers as floats."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    if isinstance(value, Real):
        return float(value)
    raise TypeError(f"a journal row value must be None, a bool, a number or a string, got {type(value).__name__}")


def encode_row(row: dict) -> bytes:
    """One journal line: the row as compact JSON (keys in order, NaN/inf allowed), ending in a newline."""
    return (json.dumps(row, separators=(",", ":"), allow_nan=True, ensure_ascii=False, default=_plain)
            + "\n").encode("utf-8")


def read_journal(path) -> list[dict]:
    """The rows of a journal, in order ([] if there is none); lines that do not parse as a row are skipped."""
    path = Path(path).expanduser()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    rows, skipped = [], 0
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except ValueError:  # UnicodeDecodeError and JSONDecodeError alike: a torn line
            row = None
        if isinstance(row, dict) and isinstance(row.get("key"), str):
            rows.append(row)
        else:
            skipped += 1
    if skipped:
        logging.getLogger("diffviz.sweep").info("%s: skipped %d unreadable line(s) (a write cut short)", path,
                                                skipped)
    return rows


class Journal:
    """Appends rows to the journal file at `path`, each flushed and fsynced before `append` returns."""

    def __init__(self, path):
        self.path = Path(path).expanduser()
        self._fh = None

    def append(self, row: dict) -> None:
        """Add one row durably (the file is created on the first row)."""
        line = encode_row(row)
        if self._fh is None:
            self._fh = open(self.path, "a+b")  # writes always go to the end; reads see what is there
            size = self._fh.seek(0, os.SEEK_END)
            if size:
                self._fh.seek(size - 1)
                if self._fh.read(1) != b"\n":
                    line = b"\n" + line  # a line torn by a kill stays a line of its own, skipped when read
            fsync_dir(self.path.parent)  # the new file's name survives a crash too
        self._fh.write(line)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def clear(self) -> None:
        """Remove the journal: call only once its rows are safely in the table."""
        self.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        """Close the file, keeping it."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
