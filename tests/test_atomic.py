"""diffviz.atomic: check_writable refuses an unwritable path up front (ValueError naming it); a killed writer's
temporary file is removed by a later write, and nothing else is."""
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from diffviz import atomic
from diffviz.atomic import STALE_AFTER_S, atomic_write, check_writable, remove_stale_temp_files


def test_writable_paths_pass_and_leave_nothing_behind(tmp_path):
    assert check_writable("out", tmp_path / "res.csv") == tmp_path / "res.csv"
    (tmp_path / "res.csv").write_text("old")
    assert check_writable("out", tmp_path / "res.csv") == tmp_path / "res.csv"  # replacing a file is fine
    assert check_writable("out", tmp_path / "new" / "deeper" / "res.csv")  # folders are made when written
    assert sorted(os.listdir(tmp_path)) == ["res.csv"]  # no probe left, no folder made


@pytest.mark.parametrize("where", ["parent", "grandparent"])
def test_a_file_in_place_of_a_folder_is_refused(tmp_path, where):
    (tmp_path / "notes.txt").write_text("x")
    path = tmp_path / "notes.txt" / "res.csv" if where == "parent" else tmp_path / "notes.txt" / "sub" / "res.csv"
    with pytest.raises(ValueError, match=r"^out '.*res\.csv' cannot be written: '.*notes\.txt' is a file"):
        check_writable("out", path)


def test_a_folder_in_place_of_the_file_is_refused(tmp_path):
    (tmp_path / "res.csv").mkdir()
    with pytest.raises(ValueError, match=r"^out must be a file, got '.*res\.csv', which is a folder"):
        check_writable("out", tmp_path / "res.csv")


def test_a_folder_that_refuses_new_files_is_refused(tmp_path, monkeypatch):
    # Root ignores permission bits, so the refusal is simulated where the probe is made.
    real = tempfile.mkstemp

    def refuse(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == tmp_path:
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    with pytest.raises(ValueError, match=r"^out '.*res\.csv' cannot be written: no new file can be made in "
                                         r"'.*' \(Permission denied\)"):
        check_writable("out", tmp_path / "res.csv")


_KILLED_WRITER = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("atomic", sys.argv[1])
atomic = importlib.util.module_from_spec(spec); spec.loader.exec_module(atomic)
def write(fh):
    fh.write(b"half an entry"); fh.flush(); print("writing", flush=True); time.sleep(60)
atomic.atomic_write(sys.argv[2], write)
"""


def _age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def _killed_write(target: Path) -> list:
    """Start a write of `target` in another process and SIGKILL it mid-write; the temp files it left."""
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, atomic.__file__, str(target)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return [p for p in target.parent.iterdir() if p.name != target.name]


def test_a_killed_writes_temp_file_is_removed_by_the_next_write(tmp_path):
    left = _killed_write(tmp_path / "entry.pt")
    assert len(left) == 1 and left[0].name.startswith(".entry.pt.diffviz-") and left[0].name.endswith(".tmp")
    atomic_write(tmp_path / "other.pt", lambda fh: fh.write(b"x"))
    assert left[0].exists()  # recent: it could belong to a live writer
    _age(left[0], STALE_AFTER_S + 60)
    atomic_write(tmp_path / "other.pt", lambda fh: fh.write(b"y"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.pt"]


def test_only_our_own_stale_temp_files_are_removed(tmp_path):
    ours_old = tmp_path / ".a.pt.diffviz-ab12_xyz.tmp"
    ours_new = tmp_path / ".b.pt.diffviz-cd34_xyz.tmp"
    others = [tmp_path / n for n in (".a.pt.ab12_xyz.tmp", "notes.tmp", ".a.pt.diffviz-ab12.tmp.keep",
                                     "a.pt.diffviz-ab12.tmp", "entry.pt")]
    folder = tmp_path / ".d.pt.diffviz-ef56.tmp"
    folder.mkdir()
    for p in [ours_old, ours_new, *others]:
        p.write_bytes(b"")
    for p in [ours_old, *others, folder]:
        _age(p, STALE_AFTER_S + 60)
    assert remove_stale_temp_files(tmp_path) == [ours_old]
    assert not ours_old.exists() and ours_new.exists() and folder.is_dir() and all(p.exists() for p in others)
    assert remove_stale_temp_files(tmp_path / "missing") == []
