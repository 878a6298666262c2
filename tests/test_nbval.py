"""nbval (lax) on the executed notebooks: re-running each one reproduces its `# NBVAL_CHECK_OUTPUT` cells.

The committed .ipynb carry no outputs, so nbval runs on the copies papermill executed for the notebook
regression tests (same session fixture): every cell must run without error, and the small printed checks
must come out identical on a second run with the same seed.
"""
import os
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.notebook
NOTEBOOKS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def nbval_runs(fast_notebook):
    """nbval on every executed notebook, the runs side by side (conftest.PARALLEL at a time): {name: result}."""
    from conftest import run_parallel

    fast_notebook.prefetch(*NOTEBOOKS)  # the suite's one FAST execution of each notebook, side by side too
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    jobs = {}
    for name in NOTEBOOKS:
        _, executed = fast_notebook(name)
        jobs[name] = ([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                       "--nbval-current-env", executed],
                      dict(capture_output=True, text=True, env=env, cwd=executed.parent, timeout=600))
    return run_parallel(jobs)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_nbval_lax(name, fast_notebook, nbval_runs):
    _, executed = fast_notebook(name)
    assert "NBVAL_CHECK_OUTPUT" in executed.read_text(), f"{name} has no cell marked # NBVAL_CHECK_OUTPUT"
    out = nbval_runs[name]
    assert not isinstance(out, Exception), f"nbval on {name} did not finish: {out!r}"
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
