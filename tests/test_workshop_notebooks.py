"""The exercises inside the notebooks, checked on executions the suite makes anyway or once more for students:

- in each notebook's one FAST execution (the session fixture `fast_notebook`, shared with the figure tests and
  nbval), every exercise of that notebook shows a "passed" verdict, once;
- each student notebook (notebooks/student/, solution regions stubbed) executes to the end under FAST, and every
  one of its checks answers "not attempted".
"""
import json
import re
from pathlib import Path

import pytest

from diffviz.workshop import registry

pytestmark = pytest.mark.notebook
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = {p.stem[:2]: p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
WITH_EXERCISES = sorted({e["notebook"] for e in registry()})


def _verdicts(path: Path) -> dict:
    """{exercise id: [statuses shown]} from the plain-text outputs of an executed notebook."""
    shown = {}
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        for out in cell.get("outputs", []):
            text = out.get("data", {}).get("text/plain", "") if "data" in out else out.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            for m in re.finditer(r"^[✔✘…] (\d\d\.q\d+) (passed|not yet|not attempted)\b", text, re.M):
                shown.setdefault(m.group(1), []).append(m.group(2))
    return shown


def _ids(nb: str) -> list:
    return [e["id"] for e in registry() if e["notebook"] == nb]


@pytest.mark.parametrize("nb", WITH_EXERCISES)
def test_every_solution_passes_in_the_executed_notebook(nb, fast_notebook):
    _, executed = fast_notebook(NOTEBOOKS[nb])
    shown = _verdicts(executed)
    for ex_id in _ids(nb):
        assert shown.get(ex_id) == ["passed"], f"{ex_id}: the solution cell showed {shown.get(ex_id)}"
    assert set(shown) <= set(_ids(nb)), f"verdicts of unregistered exercises: {set(shown) - set(_ids(nb))}"


@pytest.fixture(scope="module")
def student_runs(tmp_path_factory, fast_notebook):  # fast_notebook: the shared model cache
    """Each student notebook executed under FAST, side by side (conftest.PARALLEL at a time): {nb: (result, path)}."""
    import sys

    from conftest import run_parallel

    code = "import sys; from diffviz.notebook_run import run_notebook; run_notebook(sys.argv[1], {'FAST': True}, sys.argv[2])"
    jobs, paths = {}, {}
    for nb in WITH_EXERCISES:
        student = ROOT / "notebooks" / "student" / f"{NOTEBOOKS[nb]}.ipynb"
        out = tmp_path_factory.mktemp(f"student-{nb}")
        jobs[nb] = ([sys.executable, "-c", code, student, out], dict(capture_output=True, text=True, timeout=900))
        paths[nb] = out / student.name
    return {nb: (res, paths[nb]) for nb, res in run_parallel(jobs).items()}


@pytest.mark.parametrize("nb", WITH_EXERCISES)
def test_student_notebook_runs_to_the_end_not_attempted(nb, student_runs):
    res, executed = student_runs[nb]
    assert not isinstance(res, Exception), f"the student notebook {nb} did not finish: {res!r}"
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    shown = _verdicts(executed)
    for ex_id in _ids(nb):
        assert shown.get(ex_id) == ["not attempted"], f"{ex_id}: the student cell showed {shown.get(ex_id)}"
