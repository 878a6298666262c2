"""The workshop track (diffviz.workshop): every exercise's solution (run from its notebook cell) passes, its stored
wrong answers fail with the named mistake, unattempted answers say so without raising, verdicts render as a box
and as one plain line, a check never shows the expected value; the checkers themselves on hand-made answers."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import diffviz.workshop as W
from diffviz import VP, schedules, theory
from diffviz.workshop import checkers as C
from diffviz.workshop import solutions as S

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = W.all_exercises()
IDS = [e.id for e in EXERCISES]


def _formats(x: float):
    x = float(x)
    out = {f"{x:.{k}g}" for k in (3, 4, 5, 6, 8)} | {f"{x:.{k}f}" for k in (3, 4, 5, 6)} | {repr(x)}
    return {s for s in out if len(s.strip("-0.")) >= 3}  # short strings (0.5, 1) occur by chance


def _shown(v: W.Verdict) -> str:
    return v.line() + v._repr_html_() + v.details


# --- the registry ---------------------------------------------------------------------------------
def test_registry_lists_unique_ids_with_kind_and_title():
    reg = W.registry()
    assert [r["id"] for r in reg] == IDS and len(set(IDS)) == len(IDS)
    for r in reg:
        assert set(r) == {"id", "notebook", "kind", "title"}
        assert r["kind"] in W.Exercise.KINDS and r["id"].startswith(r["notebook"] + ".q") and r["title"]
    assert {r["kind"] for r in reg} == set(W.Exercise.KINDS)


def test_exercises_namespace():
    ex = W.exercises("03")
    assert ex.q1.id == "03.q1" and ex["q1"] is ex.q1 and len(ex) == len(list(ex)) >= 1
    assert W.exercises(3).q1 is ex.q1 and W.exercises("03_schedules").q1 is ex.q1
    assert "q1" in repr(ex)
    with pytest.raises(AttributeError, match="has no exercise"):
        ex.q99  # noqa: B018
    with pytest.raises(ValueError):
        W.exercises("42")


# --- one source: the notebooks' solution cells ----------------------------------------------------
def test_each_exercise_has_exactly_one_solution_cell_in_its_notebook():
    regions = S.all_regions(ROOT / "notebooks")
    assert sorted(regions) == sorted(IDS), "solution cells and registered exercises differ"
    for e in EXERCISES:
        sources = [p for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py")
                   if f"# exercise {e.id}\n" in p.read_text(encoding="utf-8")]
        assert [p.name[:2] for p in sources] == [e.notebook], f"{e.id} must appear in exactly one notebook"
        text = sources[0].read_text(encoding="utf-8")
        assert f"ex.{e.name}.check({e.answer_name})" in text, f"{e.id}: the solution cell must call the check"


def test_package_data_equals_the_notebook_regions():
    data = json.loads((ROOT / "diffviz" / "workshop" / "solutions.json").read_text(encoding="utf-8"))
    assert data == S.all_regions(ROOT / "notebooks"), "run `make student` to refresh diffviz/workshop/solutions.json"


def test_solution_source_falls_back_to_package_data(monkeypatch):
    e = EXERCISES[0]
    monkeypatch.setattr(S, "REPO_NOTEBOOKS", ROOT / "no-such-dir")
    assert S.solution_source(e.id) == S.all_regions(ROOT / "notebooks")[e.id]


def test_region_parsing_rejects_malformed_cells(tmp_path):
    p = tmp_path / "00_x.py"
    p.write_text('# %% tags=["solution"]\n# exercise 00.q1\n### BEGIN SOLUTION\nanswer = 1\n', encoding="utf-8")
    with pytest.raises(ValueError, match="BEGIN SOLUTION"):
        S.solution_regions(p)
    p.write_text('# %% tags=["solution"]\nanswer = 1\n', encoding="utf-8")
    with pytest.raises(ValueError, match="# exercise"):
        S.solution_regions(p)


# --- per exercise ---------------------------------------------------------------------------------
@pytest.mark.parametrize("ex_id", IDS)
def test_solution_passes(ex_id):
    e = next(x for x in EXERCISES if x.id == ex_id)
    v = e.check(e.solution_answer())
    assert v.passed and v.attempted, v.line()
    assert v.line().startswith(f"✔ {ex_id} passed")
    sol = e.solution()
    assert e.solution_source() in repr(sol) and "```python" in sol._repr_markdown_()


@pytest.mark.parametrize("ex_id", IDS)
def test_wrong_answers_fail_with_the_named_mistake(ex_id):
    e = next(x for x in EXERCISES if x.id == ex_id)
    failing = 0
    for description, answer, mistake in e.wrong_answers:
        v = e.check(W.resolve(answer))
        assert not v.passed, f"{ex_id}: wrong answer '{description}' passed"
        if mistake == "not attempted":
            assert not v.attempted, f"{ex_id}: '{description}' should read not attempted: {v.line()}"
            continue
        assert v.attempted, v.line()
        failing += 1
        if mistake is not None:
            assert v.mistake == mistake, f"{ex_id}: '{description}' gave mistake {v.mistake!r}, not {mistake!r}: {v.line()}"
            assert W.MISTAKES.get(mistake, mistake) in v.line()
    if e.kind in ("closed-form", "code"):
        named = [m for _, _, m in e.wrong_answers if m not in (None, "not attempted", "type", "raises")]
        assert failing >= 2 and len(named) >= 2, f"{ex_id}: needs two stored wrong answers with a named mistake"


@pytest.mark.parametrize("ex_id", IDS)
def test_unattempted_answers_never_raise(ex_id):
    e = next(x for x in EXERCISES if x.id == ex_id)

    def raises_not_implemented(*args):
        raise NotImplementedError

    def returns_ellipsis(*args):
        return ...

    def returns_none(*args):
        pass

    for answer in (..., None):
        v = e.check(answer)
        assert not v.passed and not v.attempted and "not attempted" in v.line()
    assert not e.check().attempted
    if e.kind == "code":
        for stub in (raises_not_implemented, returns_ellipsis, returns_none):
            v = e.check(stub)
            assert not v.attempted, f"{ex_id}: stub {stub.__name__} gave {v.line()}"


@pytest.mark.parametrize("ex_id", IDS)
def test_verdicts_render_as_a_box_and_one_line(ex_id):
    e = next(x for x in EXERCISES if x.id == ex_id)
    answers = [..., e.solution_answer()] + [W.resolve(a) for _, a, _ in e.wrong_answers]
    colours = {"passed": "#2e7d32", "not yet": "#c62828", "not attempted": "#757575"}
    for a in answers:
        v = e.check(a)
        line = repr(v)
        assert "\n" not in line and line == str(v) and line.split()[1] == ex_id
        html = v._repr_html_()
        assert colours[v.status] in html and ex_id in html and e.title.split()[0] in html


@pytest.mark.parametrize("ex_id", [e.id for e in EXERCISES if e.kind in ("closed-form", "code")])
def test_a_check_never_shows_the_expected_value(ex_id):
    e = next(x for x in EXERCISES if x.id == ex_id)
    expected = []
    if hasattr(e.checker, "expected"):
        expected = [float(v) for v in np.ravel(C.as_array(e.checker.expected()))]
    if hasattr(e.checker, "reference"):
        cases = e.checker.cases() if callable(e.checker.cases) else e.checker.cases
        for args in cases:
            args = tuple(args) if isinstance(args, (tuple, list)) else (args,)
            ref = e.checker.reference(*args)
            parts = ref if isinstance(ref, tuple) else (ref,)
            expected += [float(v) for p in parts for v in np.ravel(C.as_array(p))][:20]
    assert expected, f"{ex_id}: the checker does not expose its expected values to this test"
    for _, answer, _ in e.wrong_answers:
        shown = _shown(e.check(W.resolve(answer)))
        for x in expected:
            for s in _formats(x):
                assert s not in shown, f"{ex_id}: the verdict shows the expected value {s}: {shown}"


def test_hints_are_graded_and_counted():
    e = EXERCISES[0]
    n = len(e.hints)
    assert f"Hint 1 of {n}" in repr(e.hint()) and e.hints[0].split()[0] in repr(e.hint())
    assert f"Hint {n} of {n}" in repr(e.hint(n)) and f"Hint {n} of {n}" in repr(e.hint(99))
    assert "hint(2)" in repr(e.hint(1)) if n > 1 else True
    assert e.hint(1)._repr_markdown_().startswith("**Hint 1")


# --- the checkers on hand-made answers ------------------------------------------------------------
def _ex(checker, kind="code"):
    return W.Exercise(id="99.q1", kind=kind, title="test", statement="s", hints=("h",), checker=checker)


def test_number_names_the_generic_mistakes():
    e = _ex(C.number(lambda: 0.3712, rtol=1e-9), "closed-form")
    x = 0.3712
    assert e.check(x).passed and e.check(np.float32(x)).passed is False
    cases = {"sign": -x, "double": 2 * x, "half": x / 2, "squared": x * x, "sqrt": math.sqrt(x), "reciprocal": 1 / x,
             "nan": float("nan"), "type": "0.37"}
    for mistake, answer in cases.items():
        v = e.check(answer)
        assert not v.passed and v.mistake == mistake, (mistake, v.line())
        assert "0.371" not in v.line()
    assert e.check(torch.tensor(x, dtype=torch.float64)).passed and e.check([x]).passed
    assert e.check(np.float32(x)).mistake == "dtype"


def test_number_alternatives_name_a_step_off():
    vp = VP()
    exact = lambda n: float(theory.sampler_moments(vp, n, [0.5], method="em")[1][0])  # noqa: E731
    e = _ex(C.number(lambda: exact(10), alternatives={"off-by-one": lambda: exact(9)}), "closed-form")
    assert e.check(exact(10)).passed and e.check(exact(9)).mistake == "off-by-one"


def test_function_grid_off_by_one_and_shape():
    ref = lambda n: schedules.uniform(VP(), n)  # noqa: E731
    e = _ex(C.function(ref, [(5,), (12,)], off_by_one=0, dtype=torch.float64))
    assert e.check(ref).passed
    assert e.check(lambda n: schedules.uniform(VP(), n - 1)).mistake == "off-by-one"
    assert e.check(lambda n: schedules.uniform(VP(), n + 1)).mistake == "off-by-one"
    assert e.check(lambda n: torch.linspace(1.0, 1e-3, n, dtype=torch.float64)).mistake == "off-by-one"
    assert e.check(lambda n: ref(n).float()).mistake == "dtype"
    assert e.check(lambda n: ref(n).reshape(-1, 1).repeat(1, 2)).mistake == "shape"
    v = e.check(lambda n: torch.full((n + 1,), float("nan"), dtype=torch.float64))
    assert v.mistake == "nan"
    v = e.check(lambda n: [][0])
    assert v.mistake == "raises" and "IndexError" in v.message


from diffviz.workshop.nb00 import _em_step  # noqa: E402  (a VP Euler–Maruyama step, or one of its slips)


def test_sampler_step_em_passes_any_correct_form_and_names_slips():
    e = _ex(C.sampler_step("em"))
    assert e.check(_em_step).passed, e.check(_em_step).line()

    def em_other_form(x, t, t_next, score, xi):  # the same step written differently
        vp, h = VP(), t - t_next
        return x * (1 - h * float(vp.f(t))) + h * float(vp.g2(t)) * score(x, t) + float(vp.diffusion(t)) * h ** 0.5 * xi

    assert e.check(em_other_form).passed
    assert e.check(lambda *a: _em_step(*a, half=0.5)).mistake == "half"
    assert e.check(lambda *a: _em_step(*a, sign=-1.0)).mistake == "sign"
    assert e.check(lambda *a: _em_step(*a, noise="var")).mistake == "squared"
    assert e.check(lambda *a: _em_step(*a, noise="zero")).mistake == "no noise: the ξ term is missing"
    assert e.check(lambda *a: _em_step(*a, at_next=True)).mistake == "off-by-one"
    assert e.check(lambda x, *a: x[:1]).mistake == "shape"
    assert not e.check(lambda *a: ...).attempted


def test_sampler_step_ode_euler_and_heun():
    e = _ex(C.sampler_step("ode-euler"))
    ode = lambda *a: _em_step(*a, half=0.5, noise="zero")  # noqa: E731
    assert e.check(ode).passed
    assert e.check(lambda *a: _em_step(*a, noise="zero")).mistake == "double"
    assert e.check(lambda *a: _em_step(*a, half=0.5)).mistake == "noise"

    def heun(x, t, t_next, score, xi):
        vp, h = VP(), t - t_next
        vel = lambda y, s: float(vp.f(s)) * y - 0.5 * float(vp.g2(s)) * score(y, s)  # noqa: E731
        v1 = vel(x, t)
        return x - 0.5 * h * (v1 + vel(x - h * v1, t_next))

    assert _ex(C.sampler_step("heun")).check(heun).passed
    assert not _ex(C.sampler_step("heun")).check(ode).passed


def test_statistical_counts_standard_errors():
    gen = torch.Generator().manual_seed(0)
    x = 2.0 * torch.randn(5000, 2, generator=gen, dtype=torch.float64)
    e = _ex(C.statistical(lambda: [4.0, 4.0], "var", k=5), "statistical")
    v = e.check(x)
    assert v.passed and " SE " in v.message and "n = 5000" in v.message
    assert e.check(x * 3).passed is False and "SE above" in e.check(x * 3).message
    assert e.check(x[:, :1]).mistake == "shape" and e.check(x[:10]).mistake == "size"
    assert _ex(C.statistical(lambda: [0.0, 0.0], "mean"), "statistical").check(x).passed
    assert _ex(C.statistical(lambda: [2.0, 2.0], "std"), "statistical").check(x).passed
    assert C.se_verdict(1.0, 1.2, 0.1, k=3).passed and not C.se_verdict(1.0, 2.0, 0.1, k=3).passed


def test_predict_answers_with_the_figure_after_the_prediction():
    e = _ex(C.predict(["up", "down"], lambda: ("down", "T* falls from 0.6 to 0.4")), "predict")
    assert e.check("Down").passed and "0.4" in e.check("down").message
    v = e.check("up")
    assert not v.passed and v.attempted and "0.4" in v.message
    assert e.check("left").mistake == "choice" and e.check(1).mistake == "type"


class _FakeDash:
    def __init__(self, **values):
        self.values, self.numbers = values, {"kl": 0.1 * values.get("n", 1)}


def test_dashboard_task_reads_values_and_numbers():
    e = _ex(C.dashboard(lambda: 20, "n", tol=1, require={"lam": 1.0}), "dashboard")
    assert e.check(_FakeDash(n=21, lam=1.0)).passed and e.check(20).passed
    assert e.check(_FakeDash(n=21, lam=2.0)).mistake == "setting"
    assert "too low" in e.check(_FakeDash(n=5, lam=1.0)).message
    e2 = _ex(C.dashboard(lambda values: 0.1 * values["n"], "kl", where="numbers"), "dashboard")
    assert e2.check(_FakeDash(n=7)).passed
    assert e2.check("x").mistake == "type"


def test_a_checker_that_crashes_still_answers():
    def broken(answer):
        raise RuntimeError("bug\nin checker")

    v = _ex(broken).check(1.0)
    assert not v.passed and "\n" not in repr(v) and "RuntimeError" in v.message


# --- make student ---------------------------------------------------------------------------------
def _make_student():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_student", ROOT / "scripts" / "make_student.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def student():
    mod = _make_student()
    return mod, mod.outputs(ROOT)


def test_student_generation_is_deterministic(student):
    mod, files = student
    assert mod.outputs(ROOT) == files


def test_committed_student_notebooks_equal_a_fresh_make_student(student):
    _, files = student
    for path, text in files.items():
        assert path.exists(), f"{path.relative_to(ROOT)} is missing: run `make student`"
        assert path.read_text(encoding="utf-8") == text, f"{path.relative_to(ROOT)} is stale: run `make student`"
    sources = {p.stem for p in S.notebook_sources(ROOT / "notebooks")}
    assert {p.stem for p in (ROOT / "notebooks" / "student").glob("*.ipynb")} == sources


def _student_cells(files):
    for path, text in files.items():
        if path.suffix == ".ipynb":
            yield path, json.loads(text)


def test_student_notebooks_hide_every_solution_and_keep_the_checks(student):
    mod, files = student
    regions = S.all_regions(ROOT / "notebooks")
    for path, nb in _student_cells(files):
        text = "\n".join("".join(c["source"]) for c in nb["cells"])
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
        for c in nb["cells"]:
            assert "remove-cell" not in c["metadata"].get("tags", []), f"{path.name}: a remove-cell cell is left"
            if c["cell_type"] == "code":
                assert c["outputs"] == [] and c["execution_count"] is None
        stubs = {}
        for c in nb["cells"]:
            src = "".join(c["source"])
            if "solution" in c["metadata"].get("tags", []):
                ex_id = S.cell_exercise_id(src)
                stubs[ex_id] = src
                assert "# your code here" in src and f"ex.{ex_id.split('.')[1]}.check(" in src
        assert sorted(stubs) == sorted(k for k in regions if k[:2] == path.stem[:2])
        for ex_id, src in stubs.items():
            stub_lines = {line.strip() for line in src.splitlines()}
            for line in regions[ex_id].splitlines():
                if line.strip() and line.strip() not in stub_lines:
                    assert line.strip() not in text, f"{path.name}: the student notebook shows {line.strip()!r} of {ex_id}"


@pytest.mark.parametrize("ex_id", IDS)
def test_a_student_exercise_cell_answers_not_attempted(student, ex_id):
    """The stubbed cell, run in the names its notebook provides, checks to "not attempted" without raising."""
    _, files = student
    e = next(x for x in EXERCISES if x.id == ex_id)
    cell = next(src for path, nb in _student_cells(files) for c in nb["cells"]
                for src in ["".join(c["source"])] if S.cell_exercise_id(src) == ex_id)
    body, _, last = cell.rstrip().rpartition("\n")
    ns = {**W.default_context(), **(e.context() if e.context else {}), "ex": W.exercises(e.notebook)}
    exec(body, ns)  # noqa: S102
    v = eval(last, ns)  # noqa: S307
    assert isinstance(v, W.Verdict) and not v.attempted and not v.passed, v.line()


def test_stub_keeps_the_shape_of_the_answer():
    mod = _make_student()
    assert mod.stub(["answer = 1 + 2"], "answer") == ["# your code here", "answer = ..."]
    assert mod.stub(["a = 1", "x_T, _ = f(a)"], "x_T") == ["# your code here", "x_T = ..."]
    assert mod.stub(["def g(x):", "    return x", "", "def f(x, t=0.5):", "    return g(x)"], "f") == \
        ["def f(x, t=0.5):", "    # your code here", "    ..."]
    assert mod.stub(["y = 2"], None) == ["# your code here", "y = ..."]
