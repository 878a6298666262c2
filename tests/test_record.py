import json
import math
import os

import numpy as np
import pytest
import torch

from diffviz import record as rec


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    """Every test starts with no figures, no path and no $DIFFVIZ_FIGURES; the module state is restored after."""
    monkeypatch.delenv(rec.ENV_VAR, raising=False)
    monkeypatch.setattr(rec, "_PATH", None)
    monkeypatch.setattr(rec, "_FIGURES", {})


def test_record_in_memory_returns_value_and_converts():
    assert rec.figures_path() is None
    assert rec.record("x", 1.5) == 1.5
    rec.record("n", np.int64(3))
    rec.record("t", torch.tensor(0.25, dtype=torch.float64))
    rec.record("v", torch.tensor([1.0, 2.0]))
    rec.record("flag", True)
    figs = rec.figures()
    assert figs == {"x": 1.5, "n": 3, "t": 0.25, "v": [1.0, 2.0], "flag": True}
    assert type(figs["n"]) is int and type(figs["flag"]) is bool
    figs["x"] = 0  # a copy: the recorded figures do not change
    assert rec.figures()["x"] == 1.5


def test_round_trip_through_file(tmp_path):
    path = tmp_path / "sub" / "figs.json"
    rec.set_path(path)
    assert json.loads(path.read_text()) == {}  # set_path starts an empty file
    rec.record("kl", 0.125)
    rec.record("steps", [10, 30])
    rec.record("nan", float("nan"))
    loaded = rec.load_figures(path)
    assert loaded["kl"] == 0.125 and loaded["steps"] == [10, 30] and math.isnan(loaded["nan"])
    rec.record("kl", 0.5)  # replacing a figure rewrites the file
    assert rec.load_figures(path)["kl"] == 0.5
    assert sorted(os.listdir(path.parent)) == ["figs.json"]  # no temporary files left behind


def test_env_var_path_and_set_path_precedence(tmp_path, monkeypatch):
    env_path = tmp_path / "env.json"
    monkeypatch.setenv(rec.ENV_VAR, str(env_path))
    rec.record("a", 1)
    assert rec.load_figures(env_path) == {"a": 1}
    explicit = tmp_path / "explicit.json"
    rec.set_path(explicit)  # an explicit path wins over the environment variable, and clears earlier figures
    rec.record("b", 2)
    assert rec.load_figures(explicit) == {"b": 2}
    assert rec.load_figures(env_path) == {"a": 1}


def test_atomic_write_keeps_old_file_when_replace_fails(tmp_path, monkeypatch):
    path = tmp_path / "figs.json"
    rec.set_path(path)
    rec.record("a", 1)

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(rec.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        rec.record("a", 2)
    assert rec.load_figures(path) == {"a": 1}  # the previous complete file is intact
    assert sorted(os.listdir(tmp_path)) == ["figs.json"]  # and the temporary file was removed


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        rec.record("", 1)
    with pytest.raises(ValueError, match="'obj'"):
        rec.record("obj", object())
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        rec.load_figures(bad)
