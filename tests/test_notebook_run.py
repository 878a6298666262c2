"""`run_notebook`: refuses bad parameters before executing anything; a failing cell is named by its number."""
import pytest
from papermill.exceptions import PapermillExecutionError

from diffviz.notebook_run import run_notebook

NB = '''\
# %% [markdown]
# A throwaway notebook.

# %% tags=["parameters"]
FAST = True
FIGURES_PATH = None

# %%
from diffviz.record import record, set_path

set_path(FIGURES_PATH)
record("fast", FAST)

# %%
if not FAST:
    raise ZeroDivisionError("FAST=False fails on purpose")
'''


def test_bad_parameters_are_refused_before_executing(tmp_path):
    nb = tmp_path / "nb.py"
    nb.write_text(NB)
    out = tmp_path / "res"
    for bad in [{"fast": False}, {"FAST": "maybe"}, {'import os; open("pwned", "w"); X': 1}]:
        with pytest.raises(ValueError):
            run_notebook(nb, bad, out)
        assert not (out / "nb.ipynb").exists()  # never executed
    assert not (tmp_path / "pwned").exists()


def test_a_failing_cell_is_numbered_as_in_the_source_notebook(tmp_path):
    nb = tmp_path / "nb.py"
    nb.write_text(NB)
    assert run_notebook(nb, {"FAST": True}, tmp_path / "ok") == {"fast": True}
    with pytest.raises(PapermillExecutionError) as err:
        run_notebook(nb, {"FAST": False}, tmp_path / "res")
    # source cells: 1 markdown, 2 parameters, 3 record, 4 failing; papermill's copy has the injected cell too
    assert err.value.cell_number == 4 and err.value.cell_index == 4 and err.value.exec_count == 4
    assert (tmp_path / "res" / "nb.ipynb").is_file()
