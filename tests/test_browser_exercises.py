"""A student exercise in a real browser: JupyterLab, headless Chromium (Playwright), the STUDENT notebook.

What a student does with exercise 00.q1 ("write `vp_marginal(t)` returning (m(t), s(t)) of the VP process") in
notebooks/student/00_tour.ipynb, the notebook `make student` generates:
1. open the notebook in JupyterLab; select the exercise cell (the code cell whose first line is
   "# exercise 00.q1") and run the cells above it with JupyterLab's own "Run All Above Selected Cell"
   (`notebook:run-all-above`: the colab-install no-op, the parameters, the setup cell that makes
   `ex = exercises("00")`, and the VP/VE figure cell that defines `vp`; nothing after the exercise is run);
2. click into the exercise cell's editor, select its text (Ctrl+A) and type a WRONG answer over it
   (m = e^{-B}: the ½ forgotten, i.e. m² returned for m), run it with Shift+Enter, and wait for the verdict box
   (`.diffviz-verdict` in that cell's output): it must be the red "not yet" box (class, border colour), name the
   mistake ("looks squared"), and show none of the expected values;
3. type the RIGHT answer (the solution region of notebooks/00_tour.py), Shift+Enter: the green "passed" box;
4. fail on any error output or kernel error message (tests/test_browser.py's checks).
Screenshots of the statement, the filled cell and its verdict go to artifacts/browser/exercise_wrong.png and
exercise_right.png (`cp artifacts/browser/exercise_*.png docs/img/` refreshes the README's pictures), timings
and the verdict texts to artifacts/browser/exercise.json.

Everything else is tests/test_browser.py's (imported, not copied): the isolated JupyterLab (127.0.0.1, free port,
random token, temporary root with a copy of notebooks/ and its student/ folder, temporary Jupyter folders), the
browser fixture (Debian's chromium, never a Playwright download; a loud skip without it, a failure with
DIFFVIZ_REQUIRE_BROWSER=1) and the `Notebook` driver. Runs in about half a minute on two cores.
"""
from __future__ import annotations

import json
import math
import re
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/ has no __init__.py: import the sibling module
from test_browser import ARTIFACTS, ROOT, Notebook, browser, lab, open_page  # noqa: E402,F401  (fixtures used by name)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOK = "student/00_tour"  # relative to notebooks/
EXERCISE = "00.q1"
VIEWPORT = {"width": 1280, "height": 1000}
RUN_S = 240  # the cells above the exercise: imports of torch and diffviz, one figure
CHECK_S = 60  # one exercise cell

WRONG = '''# exercise 00.q1
def vp_marginal(t):
    B = vp.beta_min * t + 0.5 * (vp.beta_max - vp.beta_min) * t ** 2
    return math.exp(-B), math.sqrt(1 - math.exp(-B))  # m = e^{-B}: the ½ forgotten
ex.q1.check(vp_marginal)'''

RIGHT = '''# exercise 00.q1
def vp_marginal(t):
    B = vp.beta_min * t + 0.5 * (vp.beta_max - vp.beta_min) * t ** 2
    return math.exp(-B / 2), math.sqrt(1 - math.exp(-B))
ex.q1.check(vp_marginal)'''

RED, GREEN = "rgb(198, 40, 40)", "rgb(46, 125, 50)"  # the verdict box's border (diffviz.workshop.core.Verdict)


def _expected_values() -> list[float]:
    """m(t), s(t) at the checker's test inputs: a verdict must show none of them."""
    from diffviz.workshop import exercises

    ex = exercises("00")[EXERCISE.split(".")[1]]
    check = ex.checker
    return [float(v) for args in check.cases for v in check.reference(*args)]


def _leaked(text: str, expected: list[float]) -> list[str]:
    """Decimal numbers in `text` within 0.1 % of an expected value (integers, e.g. "value 1", are counts)."""
    found = re.findall(r"[-+]?\d*\.\d+(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+", text)
    return [f for f in found if any(math.isclose(float(f), v, rel_tol=1e-3) for v in expected)
            and f not in ("0.05", "0.3", "0.7", "1.0")]  # the test inputs t may be named


class ExerciseCell:
    """The exercise cell of the open notebook: found by its first line, tagged in the DOM for locators."""

    def __init__(self, nb: Notebook, exercise_id: str):
        self.nb, self.page = nb, nb.page
        self.index = nb.js("""(id) => {
            const cells = window.jupyterapp.shell.currentWidget.content.widgets;
            return cells.findIndex(c => c.model.type === 'code'
                                   && c.model.sharedModel.getSource().startsWith('# exercise ' + id));
        }""", exercise_id)
        assert self.index >= 0, f"{nb.name}: no code cell starts with '# exercise {exercise_id}'"
        nb.js("""(i) => { const cells = window.jupyterapp.shell.currentWidget.content.widgets;
                          cells[i].node.setAttribute('data-diffviz-test', 'exercise');
                          if (i > 0) cells[i - 1].node.setAttribute('data-diffviz-test', 'statement'); }""",
              self.index)
        self.cell = self.page.locator(".jp-Cell[data-diffviz-test='exercise']")
        self.statement = self.page.locator(".jp-Cell[data-diffviz-test='statement']")

    def state(self) -> dict:
        return self.nb.js("""(i) => { const w = window.jupyterapp.shell.currentWidget;
            const k = w.sessionContext.session && w.sessionContext.session.kernel;
            const above = w.content.widgets.slice(0, i).filter(c => c.model.type === 'code'
                                                               && c.model.sharedModel.getSource().trim() !== '');
            const prompt = (c) => c.promptNode ? c.promptNode.textContent : '';
            const cell = w.content.widgets[i];
            return {status: k ? k.status : null,
                    above_total: above.length, above_done: above.filter(c => c.model.executionCount !== null).length,
                    above_pending: above.filter(c => prompt(c).includes('*')).length,
                    count: cell.model.executionCount, pending: prompt(cell).includes('*'),
                    source: cell.model.sharedModel.getSource()}; }""", self.index)

    def run_above(self) -> None:
        """Select the exercise cell and run every cell above it (JupyterLab's "Run All Above Selected Cell")."""
        self.nb.js("(i) => { window.jupyterapp.shell.currentWidget.content.activeCellIndex = i; }", self.index)
        self.nb.js("() => window.jupyterapp.commands.execute('notebook:run-all-above')")
        deadline = time.monotonic() + RUN_S
        t = time.monotonic()
        while True:
            time.sleep(0.5)
            self.nb.check_errors("while running the cells above the exercise")
            st = self.state()
            if st["status"] in ("dead", "unknown", None) and time.monotonic() - t > 5:
                raise AssertionError(f"{self.nb.name}: the kernel died while running the cells above ({st})")
            if st["status"] == "idle" and st["above_done"] == st["above_total"] and not st["above_pending"]:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.nb.name}: the cells above the exercise took more than {RUN_S} s ({st})")

    def type_answer(self, source: str) -> None:
        """Click into the cell's editor, select its text and type `source` over it (as a paste: no auto-indent)."""
        editor = self.cell.locator(".jp-InputArea-editor .cm-content")
        editor.scroll_into_view_if_needed()
        editor.click()
        self.page.keyboard.press("Control+a")
        self.page.keyboard.press("Delete")
        self.page.keyboard.insert_text(source)
        got = self.state()["source"]
        assert got == source, f"the editor holds a different text than typed:\n{got!r}\n!=\n{source!r}"

    def run(self) -> dict:
        """Shift+Enter in the editor; wait for the new execution and its verdict box; return the box's state."""
        before = self.state()["count"]
        self.page.keyboard.press("Shift+Enter")
        deadline = time.monotonic() + CHECK_S
        box = self.cell.locator(".jp-OutputArea-output .diffviz-verdict")
        while True:
            time.sleep(0.25)
            st = self.state()
            if st["count"] not in (None, before) and not st["pending"] and st["status"] == "idle" and box.count():
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.nb.name}: no verdict box within {CHECK_S} s after Shift+Enter ({st}, "
                                     f"{box.count()} boxes)")
        assert box.count() == 1, f"{box.count()} verdict boxes in the exercise cell's output"
        self.nb.check_errors("after running the exercise cell")
        v = box.first
        v.scroll_into_view_if_needed()
        assert v.is_visible(), "the verdict box is in the DOM but not visible"
        return {"classes": v.get_attribute("class"), "text": " ".join(v.inner_text().split()),
                "border": v.evaluate("e => getComputedStyle(e).borderLeftColor"),
                "size": v.bounding_box()}

    def screenshot(self, path: Path) -> None:
        """The statement (markdown above), the filled cell and its verdict, in one picture."""
        self.cell.scroll_into_view_if_needed()
        time.sleep(0.3)
        a, b = self.statement.bounding_box(), self.cell.bounding_box()
        top = max(0.0, min(a["y"], b["y"]) - 4)
        x = max(0.0, min(a["x"], b["x"]) - 4)
        right = max(a["x"] + a["width"], b["x"] + b["width"]) + 4
        bottom = max(a["y"] + a["height"], b["y"] + b["height"]) + 1
        self.page.screenshot(path=str(path), clip={"x": x, "y": top, "width": right - x, "height": bottom - top})


def test_student_exercise_wrong_then_right(lab, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    expected = _expected_values()
    context, page, console_errors = open_page(browser, VIEWPORT)
    nb = Notebook(page, NOTEBOOK)
    report: dict = {"notebook": f"notebooks/{NOTEBOOK}.ipynb", "exercise": EXERCISE}
    t0 = time.monotonic()
    try:
        nb.open(lab)
        cell = ExerciseCell(nb, EXERCISE)
        stub = cell.state()["source"]
        assert "# your code here" in stub and "math.exp(-B / 2)" not in stub, (
            f"the student notebook's exercise cell is not a stub (run `make student`):\n{stub}")
        t = time.monotonic()
        cell.run_above()
        nb.timings["run_above_s"] = time.monotonic() - t

        # 1. the wrong answer: a red "not yet" box that names the mistake and reveals no expected value
        t = time.monotonic()
        cell.type_answer(WRONG)
        wrong = cell.run()
        nb.timings["wrong_s"] = time.monotonic() - t
        report["wrong"] = wrong
        assert "diffviz-verdict-not-yet" in wrong["classes"], f"not a 'not yet' box: {wrong}"
        assert wrong["border"] == RED, f"the wrong answer's box is not red: {wrong}"
        assert wrong["text"].startswith(f"✘ {EXERCISE} not yet"), wrong["text"]
        assert "looks squared" in wrong["text"], f"the verdict does not name the mistake (m² for m): {wrong['text']}"
        assert not _leaked(wrong["text"], expected), f"the verdict shows an expected value: {wrong['text']}"
        cell.screenshot(ARTIFACTS / "exercise_wrong.png")

        # 2. the right answer: a green "passed" box
        t = time.monotonic()
        cell.type_answer(RIGHT)
        right = cell.run()
        nb.timings["right_s"] = time.monotonic() - t
        report["right"] = right
        assert "diffviz-verdict-passed" in right["classes"], f"not a 'passed' box: {right}"
        assert right["border"] == GREEN, f"the right answer's box is not green: {right}"
        assert right["text"].startswith(f"✔ {EXERCISE} passed"), right["text"]
        assert not _leaked(right["text"], expected), f"the verdict shows an expected value: {right['text']}"
        cell.screenshot(ARTIFACTS / "exercise_right.png")
        nb.check_errors("at the end")
    except BaseException:
        try:
            page.screenshot(path=str(ARTIFACTS / "exercise-FAILED.png"), full_page=True)
        except Exception:
            pass
        raise
    finally:
        nb.timings["total_s"] = time.monotonic() - t0
        report.update(timings={k: round(v, 1) for k, v in nb.timings.items()}, console_errors=console_errors[:50])
        (ARTIFACTS / "exercise.json").write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
        try:
            context.close()
        finally:
            lab.shutdown_sessions()
    print(f"\n[{NOTEBOOK} {EXERCISE}] {report['timings']}\n  wrong: {report['wrong']['text']}\n"
          f"  right: {report['right']['text']}\n  screenshots: "
          f"{(ARTIFACTS / 'exercise_wrong.png').relative_to(ROOT)}, {(ARTIFACTS / 'exercise_right.png').relative_to(ROOT)}")
