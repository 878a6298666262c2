"""Execute one notebook headless with papermill and return the figures it recorded (minimal runner).

run_notebook(path, {"FAST": True, ...}, out_dir)  ->  {figure name: value}
- `path`: a `.ipynb` or a jupytext `.py` source (converted in memory with jupytext first);
- parameters are injected by papermill after the cell tagged "parameters", plus `FIGURES_PATH` (absolute)
  where the notebook's `diffviz.record.set_path(FIGURES_PATH)` makes every `record(name, value)` land;
- `out_dir` receives `<stem>.ipynb` (the executed notebook) and `<stem>.figures.json`; None: a temporary
  folder, removed afterwards;
- a failing cell raises papermill's `PapermillExecutionError` (its `ename`/`evalue` say what failed); the
  figures recorded before the failure stay in the JSON file.
The kernel runs in the notebook's own folder, so relative paths inside the notebook work.
(A fuller runner, `diffviz run --all`, may replace this module; keep the `run_notebook` signature.)
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from .record import load_figures

NOTEBOOK_SUFFIXES = (".ipynb", ".py")


def _read_notebook(path: Path):
    """The notebook as an nbformat node: .ipynb read by nbformat, .py (jupytext percent) converted by jupytext."""
    if path.suffix == ".py":
        import jupytext

        return jupytext.read(path)
    import nbformat

    return nbformat.read(path, as_version=4)


def run_notebook(path, parameters=None, out_dir=None, *, timeout=None, kernel_name=None) -> dict:
    """Execute `path` with `parameters` injected; return the figures the notebook recorded (name -> value)."""
    path = Path(path).expanduser().resolve()
    if path.suffix not in NOTEBOOK_SUFFIXES or not path.is_file():
        raise ValueError(f"path must be an existing .ipynb or jupytext .py notebook, got {str(path)!r}")
    parameters = dict(parameters or {})
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
        pm.execute_notebook(
            _read_notebook(path),
            str(out / f"{path.stem}.ipynb"),
            parameters=parameters,
            kernel_name=kernel_name or "python3",
            language="python",
            progress_bar=False,
            cwd=str(path.parent),
            execution_timeout=timeout,
            store_widget_state=False,  # else the whole plotly.js lands in the widget state (~5 MB a notebook)
        )
        return load_figures(figures_file) if figures_file.exists() else {}
    finally:
        if tmp is not None:
            tmp.cleanup()
