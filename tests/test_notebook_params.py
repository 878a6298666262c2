"""A notebook's declared parameters, and the refusal of unknown names and ill-typed values before any run."""
import nbformat
import pytest

from diffviz.notebook_params import (UNKNOWN, check_parameters, declared_parameters, source_cell_number,
                                     tagged_cell)

NB = '''\
# %% [markdown]
# A throwaway notebook.

# %% tags=["parameters"]
FAST = True  # quick run
SEED = 0
LAM = 4.0
N_SIM = 20_000
DEVICE = "auto"
T_GRID = [0.2, 1.0]
NOTHING = None
COMPUTED = 2 ** 0.5 + SEED
K: int = 3
FIGURES_PATH = None

# %%
x = 1
'''


@pytest.fixture
def nb_path(tmp_path):
    path = tmp_path / "nb.py"
    path.write_text(NB)
    return path


def test_declared_parameters_are_the_literal_assignments_of_the_parameters_cell(nb_path):
    import jupytext

    declared = declared_parameters(jupytext.read(nb_path))
    assert list(declared) == ["FAST", "SEED", "LAM", "N_SIM", "DEVICE", "T_GRID", "NOTHING", "COMPUTED", "K",
                              "FIGURES_PATH"]
    assert declared["FAST"] is True and declared["N_SIM"] == 20000 and declared["DEVICE"] == "auto"
    assert declared["T_GRID"] == [0.2, 1.0] and declared["NOTHING"] is None and declared["COMPUTED"] is UNKNOWN


def test_an_ipynb_parameters_cell_with_a_magic_is_read():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%matplotlib inline\nFAST = False", metadata={"tags": ["parameters"]})])
    assert declared_parameters(nb) == {"FAST": False}
    assert declared_parameters(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])) == {}


@pytest.mark.parametrize("name, value", [
    ("FAST", False), ("SEED", 3), ("LAM", 2), ("LAM", 0.5), ("N_SIM", 100), ("DEVICE", "cpu"),
    ("T_GRID", [0.5]), ("NOTHING", "anything"), ("NOTHING", 3), ("COMPUTED", "x"), ("K", 7),
    ("FIGURES_PATH", "/tmp/f.json"),
])
def test_declared_names_with_fitting_values_pass(nb_path, name, value):
    assert check_parameters(nb_path, {name: value}) == {name: value}


@pytest.mark.parametrize("name, value, message", [
    ("FAST", "maybe", "FAST must be a bool (true/false) (its default in nb.py is True), got 'maybe'"),
    ("FAST", 1, "FAST must be a bool (true/false)"),
    ("SEED", 1.5, "SEED must be an int (its default in nb.py is 0), got 1.5"),
    ("SEED", True, "SEED must be an int"),
    ("LAM", "big", "LAM must be a number (int or float)"),
    ("LAM", False, "LAM must be a number (int or float)"),
    ("DEVICE", 0, "DEVICE must be a string (its default in nb.py is 'auto'), got 0"),
    ("T_GRID", 0.5, "T_GRID must be a list"),
])
def test_values_that_do_not_fit_the_default_are_refused(nb_path, name, value, message):
    with pytest.raises(ValueError) as err:
        check_parameters(nb_path, {name: value})
    assert message in str(err.value)


@pytest.mark.parametrize("name, hint", [("fast", "(did you mean 'FAST'?)"), ("SEDE", "(did you mean 'SEED'?)"),
                                        ("NOSUCH", "")])
def test_undeclared_names_are_refused_with_a_hint_and_the_allowed_names(nb_path, name, hint):
    with pytest.raises(ValueError) as err:
        check_parameters(nb_path, {"FAST": True, name: 1})
    text = str(err.value)
    assert text.startswith(f"unknown parameter {name!r}{' ' + hint if hint else ''}: ")
    assert "declares FAST, SEED, LAM, N_SIM, DEVICE, T_GRID, NOTHING, COMPUTED, K, FIGURES_PATH" in text


@pytest.mark.parametrize("name", ['import os; os.system("echo hi"); X', "a b", "if", "", "1X", 3])
def test_names_must_be_identifiers(nb_path, name):
    with pytest.raises(ValueError, match="parameter names must be Python identifiers, got"):
        check_parameters(nb_path, {name: 1})


def test_a_notebook_without_parameters_cell_takes_only_the_runner_ones(tmp_path):
    path = tmp_path / "plain.py"
    path.write_text("# %%\nx = 1\n")
    assert check_parameters(path, {"FIGURES_PATH": "f.json"}) == {"FIGURES_PATH": "f.json"}
    with pytest.raises(ValueError, match="unknown parameter 'x': plain.py has no cell tagged 'parameters'"):
        check_parameters(path, {"x": 2})


def test_source_cell_number_undoes_papermills_insertions():
    cell, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    params = code("a = 1", metadata={"tags": ["parameters"]})
    nb = nbformat.v4.new_notebook(cells=[cell("intro"), code("x = 1"), params, code("y = 2"), code("1 / 0")])
    # executed: intro, x, params, INJECTED, y, 1/0
    assert [source_cell_number(nb, i) for i in range(6)] == [1, 2, 3, None, 4, 5]
    assert source_cell_number(nb, 6) is None
    # without a parameters cell the injected cell comes first
    plain = nbformat.v4.new_notebook(cells=[code("x = 1"), code("1 / 0")])
    assert [source_cell_number(plain, i) for i in range(3)] == [None, 1, 2]
    # an injected cell already there is replaced; papermill's error markers are dropped
    marker = cell("error", metadata={"tags": ["papermill-error-cell-tag"]})
    old = code("a = 2", metadata={"tags": ["injected-parameters"]})
    rerun = nbformat.v4.new_notebook(cells=[marker, params, old, code("y = 2"), code("1 / 0")])
    assert [source_cell_number(rerun, i) for i in range(4)] == [2, None, 4, 5]
    assert tagged_cell(rerun, "parameters") == 1 and tagged_cell(rerun, "nope") == -1


def test_run_defaults_picks_only_unset_values():
    from diffviz import run_defaults

    fast, full = run_defaults(True), run_defaults(False)
    assert fast(None, fast=300, full=3000) == 300 and full(None, fast=300, full=3000) == 3000
    assert fast(5000, fast=300, full=3000) == 5000 and full(7, fast=300, full=3000) == 7  # set by the user: kept
    assert fast([0.5], fast=[0.3], full=[0.3, 1.0]) == [0.5]
    assert fast(0, fast=300, full=3000) == 0  # a falsy value the user set is still theirs
    with pytest.raises(TypeError, match="FAST must be a bool"):
        run_defaults("true")
