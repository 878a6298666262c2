"""check_writable: a path that could not be written is refused up front, with a ValueError naming it."""
import os
import tempfile
from pathlib import Path

import pytest

from diffviz import atomic
from diffviz.atomic import check_writable


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

