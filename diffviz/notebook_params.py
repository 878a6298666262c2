"""A notebook's parameters: the names its cell tagged "parameters" assigns, and the check of values against them.

declared_parameters(nb)  ->  {name: default}   (the literal default, or UNKNOWN where it is not a literal)
check_parameters(path or nb, {name: value}) raises ValueError, before anything runs, for
- a name that is not a Python identifier (papermill pastes names into code);
- a name the parameters cell does not assign (a close match is suggested, the declared names listed);
  `FIGURES_PATH`, set by the runner, is always allowed;
- a value whose type does not fit the default's: bool -> bool; int -> int; float -> int or float;
  str -> str; list/tuple -> list or tuple; dict -> dict; None or a non-literal default -> anything.
"""
from __future__ import annotations

import ast
import difflib
import keyword
import os
from numbers import Integral, Real
from pathlib import Path

NOTEBOOK_SUFFIXES = (".ipynb", ".py")
RUNNER_PARAMETERS = ("FIGURES_PATH",)  # injected by `run_notebook` itself
UNKNOWN = object()  # default of a parameter assigned something other than a literal: any value fits


def read_notebook(path):
    """The notebook at `path` as an nbformat node: .ipynb read by nbformat, .py (jupytext percent) by jupytext."""
    path = Path(path).expanduser().resolve()
    if path.suffix not in NOTEBOOK_SUFFIXES or not path.is_file():
        raise ValueError(f"path must be an existing .ipynb or jupytext .py notebook, got {str(path)!r}")
    if path.suffix == ".py":
        import jupytext

        return jupytext.read(path)
    import nbformat

    return nbformat.read(path, as_version=4)


def tagged_cell(nb, tag: str) -> int:
    """Index of the first cell of `nb` carrying `tag`, -1 if none (papermill's rule)."""
    for i, cell in enumerate(nb.cells):
        if tag in cell.get("metadata", {}).get("tags", []):
            return i
    return -1


def declared_parameters(nb) -> dict:
    """{name: default} of the top-level assignments `NAME = literal` in the cell tagged "parameters" ({} if none)."""
    index = tagged_cell(nb, "parameters")
    if index < 0:
        return {}
    from IPython.core.inputtransformer2 import TransformerManager

    source = TransformerManager().transform_cell(nb.cells[index].source)  # magics (%...) to plain Python
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise ValueError(f"the parameters cell (cell {index + 1}) is not valid Python: {err}") from err
    declared = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                declared[target.id] = _literal(value)
            elif isinstance(target, (ast.Tuple, ast.List)):  # A, B = 1, 2: names only
                declared.update({t.id: UNKNOWN for t in target.elts if isinstance(t, ast.Name)})
    return declared


def _literal(node):
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return UNKNOWN


def _kind(default):
    """(test, description) of the values that fit `default`; None when any value does."""
    if default is None or default is UNKNOWN:
        return None
    if isinstance(default, bool):
        return (lambda v: isinstance(v, bool)), "a bool (true/false)"
    if isinstance(default, Integral):
        return (lambda v: isinstance(v, Integral) and not isinstance(v, bool)), "an int"
    if isinstance(default, Real):
        return (lambda v: isinstance(v, Real) and not isinstance(v, bool)), "a number (int or float)"
    if isinstance(default, str):
        return (lambda v: isinstance(v, str)), "a string"
    if isinstance(default, (list, tuple)):
        return (lambda v: isinstance(v, (list, tuple))), "a list"
    kind = type(default)
    return (lambda v: isinstance(v, kind)), f"a {kind.__name__}"


def _suggestion(name: str, names) -> str:
    by_lower = {n.lower(): n for n in names}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean {by_lower[close[0]]!r}?)" if close else ""


def check_parameters(notebook, parameters: dict, *, where: str | None = None) -> dict:
    """Return `parameters` if every name is declared by the notebook's parameters cell and every value fits
    its default's type (see the module doc); raise ValueError naming the parameter otherwise.

    notebook: a path (.ipynb or jupytext .py) or an nbformat node; where: the notebook's name in messages.
    """
    if isinstance(notebook, (str, os.PathLike)):
        where = where or Path(notebook).name
        notebook = read_notebook(notebook)
    where = where or "the notebook"
    declared = declared_parameters(notebook)
    for name, value in parameters.items():
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"parameter names must be Python identifiers, got {name!r}")
        if name not in declared:
            if name in RUNNER_PARAMETERS:
                continue
            if not declared:
                raise ValueError(f"unknown parameter {name!r}: {where} has no cell tagged 'parameters', so it "
                                 f"takes none")
            raise ValueError(f"unknown parameter {name!r}{_suggestion(name, declared)}: the parameters cell of "
                             f"{where} declares {', '.join(declared)}")
        kind = _kind(declared[name])
        if kind is not None and not kind[0](value):
            raise ValueError(f"{name} must be {kind[1]} (its default in {where} is {declared[name]!r}), "
                             f"got {value!r}")
    return parameters


def source_cell_number(nb, executed_index: int) -> int | None:
    """1-based number, in the source notebook `nb`, of cell `executed_index` (0-based) of papermill's executed
    copy of it with parameters injected; None for the injected-parameters cell.

    Papermill replaces an "injected-parameters" cell, else inserts one after the "parameters" cell (or first),
    then drops its own error-marker cells ("papermill-error-cell-tag").
    """
    numbers = list(range(1, len(nb.cells) + 1))
    injected = tagged_cell(nb, "injected-parameters")
    if injected >= 0:
        numbers[injected] = None
    else:
        numbers.insert(tagged_cell(nb, "parameters") + 1, None)
    tags = [None if n is None else nb.cells[n - 1].get("metadata", {}).get("tags", []) for n in numbers]
    numbers = [n for n, t in zip(numbers, tags) if t is None or "papermill-error-cell-tag" not in t]
    return numbers[executed_index] if 0 <= executed_index < len(numbers) else None


def run_defaults(fast: bool):
    """`default(value, fast=..., full=...)`: value as given, or None -> the default of a FAST or a full run.

    A notebook's parameters cell declares its sizes as None ("the default for this run"); its setup cell picks:

        default = run_defaults(FAST)
        TRAIN_STEPS = default(TRAIN_STEPS, fast=300, full=3000)

    so FAST chooses defaults only: a value set in the parameters cell (or with `diffviz run -p`) is used as given.
    """
    if not isinstance(fast, bool):
        raise TypeError(f"FAST must be a bool (True or False), got {fast!r}")

    def default(value, *, fast, full):
        """value if it is not None, else `fast` in a FAST run and `full` otherwise."""
        return value if value is not None else (fast if run_is_fast else full)

    run_is_fast = fast
    return default
