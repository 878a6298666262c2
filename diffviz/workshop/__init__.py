"""diffviz.workshop: exercises checked against exact theory, with hints and solutions from the notebooks.

Usage (in notebook 03)::

    from diffviz.workshop import exercises
    ex = exercises("03")          # ex.q1, ex.q2, ... ; `for e in ex`, `len(ex)`, `ex["q1"]`
    ex.q1                          # the statement
    ex.q1.check(prediction)        # a Verdict: green box in JupyterLab, one line in text; `.passed`, `.mistake`
    ex.q1.hint()                   # hint 1 of n; ex.q1.hint(2) the next, stronger one
    ex.q1.solution()               # the solution region of the notebook's solution cell

    from diffviz.workshop import registry
    registry()                     # [{"id": "00.q1", "notebook": "00", "kind": "code", "title": ...}, ...]

Kinds: "closed-form" (a number or formula against diffviz.theory), "code" (a piece the package has, run on
Gaussian or mixture data against the exact law), "statistical" (a simulation within k standard errors),
"predict" (a prediction, answered with the exact figure), "dashboard" (a task read off `dash.values`/`.numbers`).

A check never raises and never shows the expected value (a prediction is answered after it is given); it names
the mistake it recognises (`Verdict.mistake`: "sign", "double", "half", "squared", "sqrt", "reciprocal",
"off-by-one", "shape", "dtype", "type", "nan", "raises", or an exercise's own). `...`, None, or a function
that raises NotImplementedError or returns ... / None answers "not attempted".

Design: one source for the solutions
------------------------------------
* Exercises are defined in `diffviz/workshop/nbNN.py` (one module per notebook), built with the checkers of
  `diffviz.workshop.checkers`; expected values are computed at check time from diffviz, never stored.
* Solutions live only in the notebook sources `notebooks/NN_topic.py`, in a code cell tagged `solution` that
  opens with the marker line `# exercise NN.qK` and holds one nbgrader region::

      # %% tags=["solution"]
      # exercise 00.q1
      ### BEGIN SOLUTION
      def vp_marginal(t):
          ...
          return m, s
      ### END SOLUTION
      ex.q1.check(vp_marginal)

  The region assigns the exercise's `answer_name`; the check call stays outside the region.
* `Exercise.solution()` shows that region: read from the notebook source when the repository is there, else
  from `diffviz/workshop/solutions.json` (package data written by `make student`; a test keeps it equal to the
  notebooks). The unit tests execute the same region (`Exercise.solution_answer()`, in the names of
  `default_context()` plus the exercise's `context()`) and check it passes.
* `make student` (`scripts/make_student.py`) writes `notebooks/student/NN_topic.ipynb`: each region replaced
  by a stub (`# your code here`, then `name = ...` for an assignment, or the `def` line with a `...` body),
  outputs cleared, `remove-cell` cells dropped; deterministic.

See `diffviz/workshop/README.md` for how to write each kind of exercise.
"""
from . import checkers
from .checkers import dashboard, function, number, predict, sampler_step, score_function, se_verdict, statistical
from .core import (MISTAKES, Exercise, ExerciseSet, Verdict, all_exercises, default_context, exercise, exercises,
                   lazy, register, registry, resolve)

__all__ = ["MISTAKES", "Exercise", "ExerciseSet", "Verdict", "all_exercises", "checkers", "dashboard",
           "default_context", "exercise", "exercises", "function", "lazy", "number", "predict", "register",
           "registry", "resolve", "sampler_step", "score_function", "se_verdict", "statistical"]
