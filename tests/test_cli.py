"""`diffviz run`: executes notebooks headless, writes the executed notebook and its figures JSON."""
import json
import subprocess
import sys

import pytest

from diffviz import cli

NB = '''# %% tags=["parameters"]
FAST = True
SEED = 0
SCALE = 2.0
FIGURES_PATH = None

# %%
from diffviz.record import record, set_path

set_path(FIGURES_PATH)
record("answer", SCALE * 21)
'''

BROKEN = NB + '''
# %%
raise RuntimeError("this cell is broken on purpose")
'''


def _run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "diffviz.cli", "run", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_run_writes_notebook_and_figures(tmp_path):
    (tmp_path / "nb.py").write_text(NB)
    (tmp_path / "bad.py").write_text(BROKEN)
    out = _run(str(tmp_path / "nb.py"), str(tmp_path / "bad.py"), "-p", "SCALE", "3", "--out",
               str(tmp_path / "res"), cwd=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr  # one notebook failed, the other still ran
    # the failing cell named by its number in bad.py (cells: parameters, record, raise) and its execution count
    assert "FAILED" in out.stderr and "broken on purpose" in out.stderr
    assert f"FAILED {tmp_path / 'bad.py'}: cell 3 (execution count 4): RuntimeError: this cell is broken" \
        in out.stderr, out.stderr
    assert json.loads((tmp_path / "res" / "nb.figures.json").read_text())["answer"] == 63
    executed = json.loads((tmp_path / "res" / "nb.ipynb").read_text())
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in executed["cells"])
    assert "widgets" not in executed["metadata"]  # no widget state stored (it would hold all of plotly.js)


def test_run_without_notebooks_is_a_usage_error(tmp_path):
    out = _run(cwd=tmp_path)
    assert out.returncode == 2 and "--all" in out.stderr


# --- refused before running: exit status 2, one line on stderr, no notebook executed ------------------------

@pytest.mark.parametrize("name, value, message", [
    ("NOSUCH", "1", "unknown parameter 'NOSUCH': the parameters cell of first.py declares FAST, SEED, SCALE, "
                    "FIGURES_PATH"),
    ("fast", "false", "unknown parameter 'fast' (did you mean 'FAST'?): "),
    ("FAST", "maybe", "FAST must be a bool (true/false) (its default in first.py is True), got 'maybe'"),
    ("SEED", "1.5", "SEED must be an int (its default in first.py is 0), got 1.5"),
    ("SCALE", "big", "SCALE must be a number (int or float) (its default in first.py is 2.0), got 'big'"),
    ('import os; open("pwned", "w"); X', "1", "parameter names must be Python identifiers, got 'import os; "),
])
def test_run_refuses_bad_parameters_before_running(tmp_path, capsys, name, value, message):
    (tmp_path / "nb.py").write_text(NB)
    (tmp_path / "first.py").write_text(NB)
    rc = cli.main(["run", str(tmp_path / "first.py"), str(tmp_path / "nb.py"), "-p", name, value,
                   "--out", str(tmp_path / "res")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("diffviz run: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "res").exists() and not (tmp_path / "pwned").exists()  # nothing ran, not even first.py


def test_run_checks_every_notebook_before_running_any(tmp_path, capsys):
    (tmp_path / "first.py").write_text(NB)
    (tmp_path / "plain.py").write_text("# %%\nx = 1\n")
    rc = cli.main(["run", str(tmp_path / "first.py"), str(tmp_path / "plain.py"), "-p", "FAST", "false",
                   "--out", str(tmp_path / "res")])
    err = capsys.readouterr().err
    assert rc == 2 and "unknown parameter 'FAST': plain.py has no cell tagged 'parameters'" in err
    assert not (tmp_path / "res").exists()


def test_cli_values_of_string_parameters_stay_text():
    assert [cli.parse_value(v, like="auto") for v in ["0", "true", "null", "cuda", '"7"']] == \
        ["0", "true", "null", "cuda", "7"]
    assert [cli.parse_value(v, like=1.0) for v in ["0", "true", "x"]] == [0, True, "x"]
