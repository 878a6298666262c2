"""`diffviz run`: executes notebooks headless, writes the executed notebook and its figures JSON."""
import json
import subprocess
import sys

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
    assert "FAILED" in out.stderr and "broken on purpose" in out.stderr
    assert json.loads((tmp_path / "res" / "nb.figures.json").read_text())["answer"] == 63
    executed = json.loads((tmp_path / "res" / "nb.ipynb").read_text())
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in executed["cells"])
    assert "widgets" not in executed["metadata"]  # no widget state stored (it would hold all of plotly.js)


def test_run_without_notebooks_is_a_usage_error(tmp_path):
    out = _run(cwd=tmp_path)
    assert out.returncode == 2 and "--all" in out.stderr
