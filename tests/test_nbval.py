"""nbval (lax) on the executed notebooks: re-running each one reproduces its `# NBVAL_CHECK_OUTPUT` cells.

The committed .ipynb carry no outputs, so nbval runs on the copies papermill executed for the notebook
regression tests (same session fixture): every cell must run without error, and the small printed checks
must come out identical on a second run with the same seed.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.notebook
NOTEBOOKS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_nbval_lax(name, fast_notebook):
    _, executed = fast_notebook(name)
    text = executed.read_text()
    assert "NBVAL_CHECK_OUTPUT" in text, f"{name} has no cell marked # NBVAL_CHECK_OUTPUT"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                          "--nbval-current-env", str(executed)], capture_output=True, text=True, env=env,
                         cwd=executed.parent, timeout=600)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
