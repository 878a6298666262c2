"""Execute one notebook headless with papermill and return the figures it recorded (minimal runner).

run_notebook(path, {"FAST": True, ...}, out_dir)  ->  {figure name: value}
- `path`: a `.ipynb` or a jupytext `.py` source (converted in memory with jupytext first);
- parameters are injected by papermill after the cell tagged "parameters", plus `FIGURES_PATH` (absolute)
  where the notebook's `diffviz.record.set_path(FIGURES_PATH)` makes every `record(name, value)` land;
- `out_dir` receives `<stem>.ipynb` (the executed notebook) and `<stem>.figures.json`; None: a temporary
  folder, removed afterwards;
- parameters are checked first against the notebook's parameters cell (`notebook_params.check_parameters`:
  declared identifiers, values of the default's type); a bad one raises ValueError and nothing runs;
- a failing cell raises papermill's `PapermillExecutionError` (its `ename`/`evalue` say what failed, its
  `cell_number` which cell of `path`, from 1, and `exec_count` the In [n]); the figures recorded before the
  failure stay in the JSON file.
The kernel runs in the notebook's own folder, so relative paths inside the notebook work.
(A fuller runner, `diffviz run --all`, may replace this module; keep the `run_notebook` signature.)
"""
from __future__ import annotations

import copy
import tempfile
from pathlib import Path

from .notebook_params import NOTEBOOK_SUFFIXES, check_parameters, read_notebook, source_cell_number
from .record import load_figures

__all__ = ["NOTEBOOK_SUFFIXES", "run_notebook"]


def run_notebook(path, parameters=None, out_dir=None, *, timeout=None, kernel_name=None) -> dict:
    """Execute `path` with `parameters` injected; return the figures the notebook recorded (name -> value)."""
    path = Path(path).expanduser().resolve()
    nb = read_notebook(path)
    parameters = check_parameters(nb, dict(parameters or {}), where=path.name)
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds or None, got {timeout!r}")

    import papermill as pm

    tmp = None
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="diffviz-run-")
        out_dir = tmp.name
    try:
        out = Path(out_dir).expanduser().resolve()
        out.mkdir(parents=True, exist_ok=True)
        figures_file = out / f"{path.stem}.figures.json"
        if figures_file.exists():
            figures_file.unlink()  # never return figures left over from an earlier run
        parameters.setdefault("FIGURES_PATH", str(figures_file))
        figures_file = Path(parameters["FIGURES_PATH"])
        try:
            pm.execute_notebook(
                copy.deepcopy(nb),  # papermill edits the node it is given; `nb` stays the source
                str(out / f"{path.stem}.ipynb"),
                parameters=parameters,
                kernel_name=kernel_name or "python3",
                language="python",
                progress_bar=False,
                cwd=str(path.parent),
                execution_timeout=timeout,
                store_widget_state=False,  # else the whole plotly.js lands in the widget state (~5 MB a notebook)
            )
        except pm.PapermillExecutionError as err:
            err.cell_number = source_cell_number(nb, err.cell_index)  # papermill's index counts its injected cell
            raise
        return load_figures(figures_file) if figures_file.exists() else {}
    finally:
        if tmp is not None:
            tmp.cleanup()
