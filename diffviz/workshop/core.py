"""Verdicts, exercises and the registry (see the package docstring for the design)."""
from __future__ import annotations

import html
import math
import textwrap
from dataclasses import dataclass, field
from typing import Any, Callable

# Mistake names a checker may report, with the phrase the verdict shows. Checkers may add others (any string).
MISTAKES = {
    "sign": "looks like a sign error",
    "double": "looks like a factor of 2 too large",
    "half": "looks like a factor of 2 too small (a missing factor 2, or an extra ½)",
    "squared": "looks squared (a variance where a standard deviation is asked?)",
    "sqrt": "looks square-rooted (a standard deviation where a variance is asked?)",
    "reciprocal": "looks like the reciprocal",
    "off-by-one": "looks off by one (one step, or one grid point, too many or too few)",
    "shape": "wrong shape",
    "dtype": "wrong dtype",
    "type": "wrong type",
    "nan": "contains NaN",
    "inf": "contains inf",
    "raises": "your function raised an error",
    "choice": "not one of the choices",
    "size": "too few samples",
    "setting": "the dashboard is not set as the task asks",
    "noise": "the noise term is wrong",
}


def _one_line(text: str, limit: int = 400) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


@dataclass
class Verdict:
    """The answer of `Exercise.check`: `.passed`, `.attempted`, a one-line `.message`, `.details`, `.mistake`.

    Renders as a small coloured box in JupyterLab (`_repr_html_`) and as one plain line in text (`repr`, `str`):
    "✔ 03.q2 passed: ...", "✘ 03.q2 not yet: ... (looks like a sign error)", "… 03.q2 not attempted".
    `bool(verdict)` is `.passed`.
    """

    passed: bool
    attempted: bool = True
    message: str = ""
    details: str = ""
    mistake: str | None = None  # a key of MISTAKES, or another short name
    exercise_id: str = ""
    title: str = ""

    def __bool__(self) -> bool:
        return bool(self.passed)

    @property
    def status(self) -> str:
        return "passed" if self.passed else "not yet" if self.attempted else "not attempted"

    @property
    def symbol(self) -> str:
        return "✔" if self.passed else "✘" if self.attempted else "…"

    def line(self) -> str:
        """The verdict as one plain line (what a terminal or papermill shows)."""
        head = f"{self.symbol} {self.exercise_id} {self.status}".replace("  ", " ").strip()
        msg = _one_line(self.message)
        if self.mistake and not self.passed:
            phrase = MISTAKES.get(self.mistake, self.mistake)
            if phrase not in msg:
                msg = f"{msg} ({phrase})" if msg else f"({phrase})"
        return f"{head}: {msg}" if msg else head

    __str__ = line

    def __repr__(self) -> str:
        return self.line()

    def _repr_html_(self) -> str:
        colour = {"passed": ("#e8f5e9", "#2e7d32"), "not yet": ("#ffebee", "#c62828"),
                  "not attempted": ("#f2f2f2", "#757575")}[self.status]
        body = html.escape(_one_line(self.message))
        if self.mistake and not self.passed:
            phrase = MISTAKES.get(self.mistake, self.mistake)
            if phrase not in self.message:
                body += f" <i>({html.escape(phrase)})</i>"
        details = (f"<details><summary>details</summary><pre style='white-space:pre-wrap;margin:0'>"
                   f"{html.escape(self.details)}</pre></details>") if self.details else ""
        title = f" · {html.escape(self.title)}" if self.title else ""
        return (f"<div class='diffviz-verdict diffviz-verdict-{self.status.replace(' ', '-')}' "
                f"style='background:{colour[0]};border-left:5px solid {colour[1]};padding:6px 10px;"
                f"margin:4px 0;border-radius:3px;font-family:sans-serif;font-size:13px'>"
                f"<b style='color:{colour[1]}'>{self.symbol} {html.escape(self.exercise_id)} {self.status}</b>"
                f"<span style='color:#555'>{title}</span><br>{body}{details}</div>")


class _Text:
    """A hint or a solution: markdown in JupyterLab, plain text elsewhere."""

    def __init__(self, text: str, markdown: str):
        self.text, self.markdown = text, markdown

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__

    def _repr_markdown_(self) -> str:
        return self.markdown


NOT_ATTEMPTED = "replace the `...` with your answer"


def is_unattempted(answer) -> bool:
    """`...`, None, or a function whose body is a stub (it raises NotImplementedError or returns ... / None).

    Functions are probed by the checker itself (see `call`); here only the value is looked at.
    """
    return answer is Ellipsis or answer is None


class lazy:
    """A stored wrong answer computed only when a test uses it (e.g. samples): `lazy(lambda: ...)`."""

    def __init__(self, fn: Callable[[], Any]):
        self.fn = fn

    def __call__(self):
        return self.fn()


def resolve(answer):
    """A stored answer as the student would pass it (a `lazy` one computed)."""
    return answer() if isinstance(answer, lazy) else answer


class Unattempted(Exception):
    """Raised inside a checker when a student's function turns out to be a stub (answered "not attempted")."""


@dataclass
class Exercise:
    """One exercise. `checker(answer) -> Verdict` (see `diffviz.workshop.checkers`).

    `answer_name`: the name the solution region assigns (a value or a function); the check cell passes it.
    `context()`: the names the solution region uses from earlier cells of its notebook (a dict); the unit tests
    execute the region in it. `wrong_answers`: (description, answer, mistake name or None) that must fail.
    """

    id: str
    kind: str
    title: str
    statement: str
    hints: tuple
    checker: Callable[[Any], Verdict]
    answer_name: str = "answer"
    context: Callable[[], dict] | None = None
    wrong_answers: list = field(default_factory=list)

    KINDS = ("closed-form", "code", "statistical", "predict", "dashboard")

    def __post_init__(self):
        if self.kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, got {self.kind!r}")
        nb, _, q = self.id.partition(".")
        if not (len(nb) == 2 and nb.isdigit() and q.startswith("q") and q[1:].isdigit()):
            raise ValueError(f"an exercise id reads 'NN.qK' (e.g. '03.q2'), got {self.id!r}")
        self.hints = tuple(self.hints)
        if not 1 <= len(self.hints) <= 3:
            raise ValueError(f"{self.id}: give one to three hints, got {len(self.hints)}")

    @property
    def notebook(self) -> str:
        return self.id[:2]

    @property
    def name(self) -> str:
        """'q2' for '03.q2' (the attribute of `exercises('03')`)."""
        return self.id.partition(".")[2]

    # --- the student's side -------------------------------------------------------------------
    def check(self, answer=Ellipsis) -> Verdict:
        """Check an answer; never raises and never shows the expected value (a predict exercise shows it after)."""
        if is_unattempted(answer):
            v = Verdict(False, attempted=False, message=NOT_ATTEMPTED)
        else:
            try:
                v = self.checker(answer)
            except Unattempted as err:
                v = Verdict(False, attempted=False, message=str(err) or NOT_ATTEMPTED)
            except Exception as err:  # a checker must not crash a student's notebook
                v = Verdict(False, message=f"could not check this answer: {type(err).__name__}: {_one_line(err, 200)}",
                            mistake="raises")
        v.exercise_id, v.title = self.id, self.title
        v.message = _one_line(v.message)
        return v

    def hint(self, k: int = 1) -> _Text:
        """Hint k (1-based); the hints are graded, the last is the strongest."""
        n = len(self.hints)
        try:
            k = int(k)
        except (TypeError, ValueError):
            k = 1
        k = min(max(k, 1), n)
        more = f" (hint({k + 1}) for more)" if k < n else ""
        head = f"Hint {k} of {n} for {self.id}{more}"
        return _Text(f"{head}: {_one_line(self.hints[k - 1], 10_000)}", f"**{head}:** {self.hints[k - 1]}")

    def solution_source(self) -> str:
        """The solution region's code, from the notebook source when the repository is there, else package data."""
        from .solutions import solution_source

        return solution_source(self.id)

    def solution(self) -> _Text:
        """Shows the solution (the notebook's `### BEGIN SOLUTION` region)."""
        src = self.solution_source()
        return _Text(f"Solution of {self.id}:\n{src}", f"**Solution of {self.id}:**\n\n```python\n{src}\n```")

    def solution_answer(self):
        """Execute the solution region in `context()` and return what it assigns to `answer_name` (for tests)."""
        ns = dict(default_context())
        if self.context is not None:
            ns.update(self.context())
        exec(compile(self.solution_source(), f"<solution {self.id}>", "exec"), ns)  # noqa: S102
        return ns[self.answer_name]

    def __repr__(self) -> str:
        return f"{self.id} ({self.kind}) {self.title}: {_one_line(self.statement, 300)}"

    def _repr_markdown_(self) -> str:
        return (f"**{self.id} · {self.title}** ({self.kind})\n\n{self.statement}\n\n"
                f"`check(...)` your answer; {len(self.hints)} hint(s) with `hint(k)`; `solution()` shows one.")


def default_context() -> dict:
    """Names every solution region may use without importing them (the notebooks' usual imports)."""
    import numpy as np
    import torch

    import diffviz
    from diffviz import VE, VP, schedules, theory

    return {"math": math, "np": np, "torch": torch, "diffviz": diffviz, "theory": theory,
            "schedules": schedules, "VP": VP, "VE": VE}


# --- registry ------------------------------------------------------------------------------------
_REGISTRY: dict[str, Exercise] = {}
NOTEBOOKS = ("00", "01", "02", "03", "04")


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to the registry (ids are unique)."""
    if exercise.id in _REGISTRY and _REGISTRY[exercise.id] is not exercise:
        raise ValueError(f"exercise {exercise.id} is registered twice")
    _REGISTRY[exercise.id] = exercise
    return exercise


def exercise(**kwargs) -> Exercise:
    """Build and register an `Exercise` (the form the nbNN modules use)."""
    if "statement" in kwargs:
        kwargs["statement"] = textwrap.dedent(kwargs["statement"]).strip()
    return register(Exercise(**kwargs))


def _load_all():
    import importlib

    for nb in NOTEBOOKS:
        importlib.import_module(f"diffviz.workshop.nb{nb}")


def all_exercises() -> list[Exercise]:
    """Every registered exercise, sorted by notebook and number."""
    _load_all()
    return sorted(_REGISTRY.values(), key=lambda e: (e.notebook, int(e.name[1:])))


def registry() -> list[dict]:
    """Every exercise as a dict {id, notebook, kind, title}, in order (`pandas.DataFrame(registry())` is a table)."""
    return [{"id": e.id, "notebook": e.notebook, "kind": e.kind, "title": e.title} for e in all_exercises()]


class ExerciseSet:
    """The exercises of one notebook: `ex.q1`, `ex["q1"]`, `for e in ex`, `len(ex)`."""

    def __init__(self, notebook: str, items: list[Exercise]):
        self.notebook = notebook
        self._items = {e.name: e for e in items}

    def __getattr__(self, name):
        items = self.__dict__.get("_items", {})
        if name in items:
            return items[name]
        raise AttributeError(f"notebook {self.__dict__.get('notebook')} has no exercise {name!r}; "
                             f"it has {', '.join(items) or 'none'}")

    def __getitem__(self, name):
        return self._items[name]

    def __iter__(self):
        return iter(self._items.values())

    def __len__(self):
        return len(self._items)

    def __dir__(self):
        return list(self._items) + ["notebook"]

    def __repr__(self) -> str:
        rows = "\n".join(f"  {e.name}: {e.title} ({e.kind})" for e in self)
        return f"Exercises of notebook {self.notebook}:\n{rows}"


def exercises(notebook) -> ExerciseSet:
    """The exercises of notebook "03" (or 3, or "03_schedules"): `ex = exercises("03"); ex.q2.check(answer)`."""
    nb = str(notebook)
    nb = nb.zfill(2) if nb.isdigit() else nb[:2]
    if nb not in NOTEBOOKS:
        raise ValueError(f"notebook must be one of {NOTEBOOKS}, got {notebook!r}")
    return ExerciseSet(nb, [e for e in all_exercises() if e.notebook == nb])
