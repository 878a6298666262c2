"""Parameter sweeps on Dask: one function or notebook, run at every point of a grid, gathered in a tidy table.

    table = sweep("diffviz.sweeps_examples:diffusion_time", {"T": [0.2, 0.5, 1.0], "eps2": [0.01, 0.1]},
                  out="results/diffusion_time.parquet")

Target: a callable, "module:function", a notebook (`.ipynb` or jupytext `.py`, run by papermill with the
point's parameters injected; its figures are what it `record`s) or a shipped example name (see
`diffviz.sweeps_examples.EXAMPLES`). A function returns a dict of named numbers (a bare number is named "value").
Grid: {name: [values]} (Cartesian product, first axis slowest) or a list of {name: value} points.
Table: one row per point = its parameters | its figures | `elapsed_s`, `error`, `status` ("ok"/"error"),
`key` (sha256 of the canonical JSON of the parameters, 16 hex digits; 1 and 1.0 give the same key).
A figure named like a parameter or a reserved column is stored as "out_<name>"; lists become JSON strings.

Robustness: a failing point is a row with status "error" and `error` = "Type: message", never a failed sweep.
With `out` (.parquet/.pq or .csv, refused before any point runs if it cannot be written), each finished row is
appended at once to the journal `<out>.journal.jsonl` (fsynced: it survives kill -9); the table is rewritten
atomically (temporary file in the same folder, then `os.replace`) and only then the journal removed, every
`save_every` completed points, every `save_interval_s` seconds and at the end, also on Ctrl-C and on SIGTERM
(raised as `diffviz.interrupt.Terminated`, a KeyboardInterrupt). A re-run with the same `out` takes the rows of
the table and of a journal a killed run left, skips those points (by key) and runs only the missing ones, and
the failed ones too with `retry_failed=True`.
Rows of `out` outside the new grid are kept. The key holds the parameters only: use one `out` file per target.

Cluster: by default a `dask.distributed.LocalCluster` of processes, one thread each, as many workers as CPUs
(capped by the number of points), with OMP/MKL/OpenBLAS and torch limited to one thread per worker;
`scheduler="tcp://host:8786"` uses a running cluster (its workers must be able to import diffviz and the
target; ConnectionError if it does not answer within `CONNECT_TIMEOUT_S`), `client=` an existing
`distributed.Client`.
Plots: `plot_sweep` (lines) and `heatmap_sweep` return plotly figures; plotly is imported only when called.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import itertools
import json
import logging
import math
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

import pandas as pd

from .atomic import atomic_write, check_writable
from .checks import check_int, check_positive
from .interrupt import sigterm_interrupts
from .journal import Journal, journal_path, read_journal

RESERVED = ("elapsed_s", "error", "status", "key")
TABLE_SUFFIXES = (".parquet", ".pq", ".csv")
CONNECT_TIMEOUT_S = 5  # an unreachable --scheduler fails after this long, not Dask's default 30 s
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


# --- grid and keys ----------------------------------------------------------------------------------------

def _scalar(value, what: str):
    """A plain Python scalar (None/bool/int/float/str) for a grid value; NumPy/torch scalars via .item()."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        return float(value)
    raise ValueError(f"{what} must be None, a bool, a number or a string, got {value!r} ({type(value).__name__})")


def _check_name(name) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"parameter names must be non-empty strings, got {name!r}")
    if name in RESERVED:
        raise ValueError(f"parameter name {name!r} is reserved for the sweep table (reserved: {list(RESERVED)})")
    return name


def expand_grid(grid) -> list[dict]:
    """The points of a grid: {name: [values]} -> Cartesian product (first axis slowest); a list of dicts as is.

    A scalar in place of a list is one value. Points repeated (same key) are kept once, in first position.
    """
    if isinstance(grid, dict):
        names = [_check_name(n) for n in grid]
        axes = []
        for name in names:
            values = grid[name]
            scalar = isinstance(values, (str, bytes)) or not hasattr(values, "__iter__")
            values = [values] if scalar else list(values)
            if not values:
                raise ValueError(f"grid axis {name!r} has no values")
            axes.append([_scalar(v, f"grid value of {name!r}") for v in values])
        points = [dict(zip(names, combo)) for combo in itertools.product(*axes)]
    elif isinstance(grid, (list, tuple)):
        points = []
        for i, point in enumerate(grid):
            if not isinstance(point, dict):
                raise ValueError(f"grid point {i} must be a dict {{name: value}}, got {point!r}")
            points.append({_check_name(n): _scalar(v, f"grid point {i}, {n!r}") for n, v in point.items()})
    else:
        raise ValueError(f"grid must be a dict {{name: [values]}} or a list of dicts, got {type(grid).__name__}")
    if not points:
        raise ValueError("grid must have at least one point")
    unique = {}
    for point in points:
        unique.setdefault(point_key(point), point)
    return list(unique.values())


def _canonical(value):
    """Numbers that are equal hash equal: integral floats become ints (1.0 -> 1); bools stay bools."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def point_key(params: dict) -> str:
    """Stable id of a grid point: the first 16 hex digits of sha256(canonical JSON of its parameters)."""
    canon = {str(k): _canonical(_scalar(v, f"parameter {k!r}")) for k, v in params.items()}
    text = json.dumps(canon, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- targets ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """What a sweep runs: kind "function" (a callable or "module:function") or "notebook" (an absolute path)."""

    kind: str
    ref: object
    default_grid: dict | None = None

    @property
    def label(self) -> str:
        if callable(self.ref):
            return f"{getattr(self.ref, '__module__', '?')}:{getattr(self.ref, '__qualname__', repr(self.ref))}"
        return str(self.ref)


def import_function(spec: str):
    """The callable named "package.module:function" (attribute paths like "module:Class.method" work too)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"a function target must look like 'module:function', got {spec!r}")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{spec!r} is not callable")
    return obj


def resolve_target(target) -> Target:
    """Classify a sweep target: callable, notebook path (.ipynb/.py), example name, or "module:function"."""
    if callable(target):
        return Target("function", target)
    if not isinstance(target, (str, os.PathLike)):
        raise ValueError(f"target must be a callable, 'module:function', a notebook path or an example name, "
                         f"got {target!r}")
    text = os.fspath(target)
    path = Path(text).expanduser()
    if path.suffix in (".ipynb", ".py"):
        if not path.is_file():
            raise ValueError(f"notebook target {text!r} does not exist")
        return Target("notebook", str(path.resolve()))
    from .sweeps_examples import EXAMPLES

    if text in EXAMPLES:
        example = EXAMPLES[text]
        import_function(example.function)
        return Target("function", example.function, dict(example.grid))
    if ":" in text:
        try:
            import_function(text)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"cannot import sweep target {text!r}: {err}") from err
        return Target("function", text)
    raise ValueError(f"unknown sweep target {text!r}: give 'module:function', a notebook (.ipynb or jupytext .py) "
                     f"or one of the examples {sorted(EXAMPLES)}")


# --- one grid point (runs on a worker) --------------------------------------------------------------------

def describe_error(err: BaseException) -> str:
    """One readable line for a failure: "Type: message" (a notebook error names the cell's exception)."""
    ename, evalue = getattr(err, "ename", None), getattr(err, "evalue", None)
    if ename is not None:  # papermill's PapermillExecutionError: the exception raised inside the notebook
        text = f"{ename}: {evalue}"
    else:
        text = "".join(traceback.format_exception_only(type(err), err)).strip()
    text = " | ".join(line.strip() for line in _ANSI.sub("", text).splitlines() if line.strip())
    return text if len(text) <= 2000 else text[:1997] + "..."


def _limit_threads(n: int | None) -> None:
    if n is None:
        return
    for name in THREAD_ENV:
        os.environ[name] = str(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


def run_point(target: Target, params: dict, key: str, *, notebook_dir: str | None = None,
              timeout: float | None = None, torch_threads: int | None = 1) -> dict:
    """Run the target at one point; never raises: returns {"figures", "elapsed_s", "error", "status", "key"}."""
    start = time.perf_counter()
    try:
        _limit_threads(torch_threads)
        if target.kind == "notebook":
            from .notebook_run import run_notebook

            out_dir = None if notebook_dir is None else os.path.join(notebook_dir, key)
            out = run_notebook(target.ref, params, out_dir, timeout=timeout)
        else:
            fn = import_function(target.ref) if isinstance(target.ref, str) else target.ref
            _limit_threads(torch_threads)  # the import may have brought torch in
            out = fn(**params)
        figures = _figures(out)
        status, error = "ok", None
    except Exception as err:  # a failing point is data, not a failed sweep
        logging.getLogger("diffviz.sweep").debug("point %s %s failed:\n%s", key, params, traceback.format_exc())
        figures, status, error = {}, "error", describe_error(err)
    return {"figures": figures, "elapsed_s": time.perf_counter() - start, "error": error, "status": status,
            "key": key}


def _figures(out) -> dict:
    """A function's result as {name: scalar}: dict as is, a bare number as {"value": x}, None as {}."""
    if out is None:
        return {}
    if not isinstance(out, dict):
        if hasattr(out, "item") or isinstance(out, (Real, str)):
            out = {"value": out}
        else:
            raise TypeError(f"a sweep function must return a dict of named numbers, got {type(out).__name__}")
    result = {}
    for name, value in out.items():
        if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
            value = value.tolist()  # tensors, arrays, NumPy scalars
        if isinstance(value, (list, tuple, dict)):
            value = json.dumps(value)
        elif value is not None and not isinstance(value, (bool, Real, str)):
            raise TypeError(f"figure {name!r} must be a number, bool, string or list, got {type(value).__name__}")
        result[str(name)] = value
    return result


# --- tables -----------------------------------------------------------------------------------------------

def _table_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ValueError(f"out must end in one of {list(TABLE_SUFFIXES)} (Parquet or CSV), got {str(path)!r}")
    return "csv" if suffix == ".csv" else "parquet"


def _arrow_safe(table: pd.DataFrame) -> pd.DataFrame:
    """Parquet needs one type per column: object columns mixing strings with other values become strings."""
    table = table.copy()
    for col in table.columns:
        if table[col].dtype == object:
            kinds = {type(v) for v in table[col] if v is not None and not (isinstance(v, float) and math.isnan(v))}
            if str in kinds and len(kinds) > 1 or bool in kinds and len(kinds) > 1:
                table[col] = [None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                              for v in table[col]]
    return table


def write_table(table: pd.DataFrame, path) -> Path:
    """Write a sweep table to .parquet/.pq or .csv atomically (temporary file in the same folder, os.replace)."""
    path = Path(path).expanduser()
    fmt = _table_format(path)

    def dump(fh):
        if fmt == "csv":
            fh.write(table.to_csv(index=False).encode("utf-8"))
        else:
            _arrow_safe(table).to_parquet(fh, index=False)

    return atomic_write(path, dump, mode="wb")


def read_table(path) -> pd.DataFrame:
    """Read a sweep table written by `sweep`/`write_table`; `error` is None where a point succeeded."""
    path = Path(path).expanduser()
    if _table_format(path) == "csv":
        exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}  # 3: default
        table = pd.read_csv(path, dtype={"key": str, "status": str, "error": str}, **exact)
    else:
        table = pd.read_parquet(path)
    missing = [c for c in ("status", "key") if c not in table.columns]
    if missing:
        raise ValueError(f"{path} is not a sweep table: it lacks the column(s) {missing}")
    if "error" in table.columns:
        table["error"] = table["error"].astype(object).where(table["error"].notna(), None)
    return table


def _assemble(rows: list[dict], param_names: list[str]) -> pd.DataFrame:
    """One DataFrame from row dicts: parameter columns, then figure columns, then the reserved columns."""
    table = pd.DataFrame.from_records(rows)
    for col in RESERVED:
        if col not in table.columns:
            table[col] = None
    params = [c for c in param_names if c in table.columns]
    figures = [c for c in table.columns if c not in params and c not in RESERVED]
    table = table[params + figures + list(RESERVED)]
    table["error"] = table["error"].astype(object).where(table["error"].notna(), None)
    return table


def _row(params: dict, result: dict) -> dict:
    """A table row: parameters, figures (renamed "out_<name>" on a clash), then the reserved columns."""
    row = dict(params)
    for name, value in result["figures"].items():
        row[f"out_{name}" if name in row or name in RESERVED else name] = value
    for col in RESERVED:
        row[col] = result[col]
    return row


# --- the sweep --------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _dask_client(scheduler, client, n_workers: int):
    """A distributed.Client: the given one, one connected to `scheduler`, or a fresh LocalCluster (closed after)."""
    if client is not None:
        yield client
        return
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            connected = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except ValueError as err:
            raise ValueError(f"scheduler must be a Dask scheduler address like 'tcp://host:8786', got "
                             f"{scheduler!r} ({err})") from err
        except OSError as err:  # refused, unknown host, timed out
            raise ConnectionError(f"scheduler {scheduler!r} cannot be reached ({err}); is a Dask scheduler "
                                  f"running there?") from err
        with connected as c:
            yield c
        return
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, env=dict(THREAD_ENV),
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster, Client(cluster) as c:
        yield c


def sweep(target, grid=None, out=None, *, scheduler: str | None = None, client=None, n_workers: int | None = None,
          retry_failed: bool = False, save_every: int = 10, save_interval_s: float = 30.0,
          progress: bool = True, notebook_dir=None, timeout: float | None = None,
          torch_threads: int | None = 1) -> pd.DataFrame:
    """Run `target` at every grid point on Dask; return (and save to `out`) one row per point (see module doc).

    n_workers: LocalCluster size (default os.cpu_count(), capped by the number of points to run).
    notebook_dir: where executed notebooks go (`<dir>/<key>/`); default `<out stem>_notebooks` next to `out`.
    timeout: per-cell timeout in seconds for notebook targets. torch_threads: intra-op threads per point
    (None leaves them alone).
    """
    tgt = resolve_target(target)
    if grid is None:
        if tgt.default_grid is None:
            raise ValueError(f"grid is required for target {tgt.label!r} (only example sweeps have a default grid)")
        grid = tgt.default_grid
    points = expand_grid(grid)
    if tgt.kind == "notebook":  # unknown names, non-identifiers, ill-typed values: refused before any point runs
        from .notebook_params import check_parameters, read_notebook

        nb = read_notebook(tgt.ref)
        for point in points:
            check_parameters(nb, point, where=Path(tgt.ref).name)
    keys = [point_key(p) for p in points]
    param_names = list(dict.fromkeys(n for p in points for n in p))
    save_every = check_int("save_every", save_every, 1)
    save_interval_s = check_positive("save_interval_s", save_interval_s)
    if n_workers is not None:
        n_workers = check_int("n_workers", n_workers, 1)
    out = None if out is None else Path(out).expanduser()
    if out is not None:
        _table_format(out)
        check_writable("out", out)
    journal = None if out is None else Journal(journal_path(out))

    # previous results: keep every row, rerun what is missing (and what failed, if asked)
    rows: dict[str, dict] = {}
    if out is not None and out.exists():
        previous = read_table(out)
        for record in previous.to_dict("records"):
            rows[str(record["key"])] = record
    recovered = [] if journal is None else read_journal(journal.path)  # rows of a run that was killed
    for record in recovered:
        rows[record["key"]] = record
    todo = [(k, p) for k, p in zip(keys, points)
            if k not in rows or (retry_failed and rows[k].get("status") != "ok")]

    grid_keys = set(keys)

    def table() -> pd.DataFrame:
        ordered = [rows[k] for k in keys if k in rows] + [r for k, r in rows.items() if k not in grid_keys]
        return _assemble(ordered, param_names)

    def save() -> None:  # the table first, then the journal it now holds: no row is ever only in memory
        write_table(table(), out)
        journal.clear()

    if journal is not None and journal.path.exists():  # compact now: this run's journal starts empty
        if rows:
            save()
        else:
            journal.clear()
    if not todo:
        return table()
    if tgt.kind == "notebook" and notebook_dir is None and out is not None:
        notebook_dir = out.parent / f"{out.stem}_notebooks"
    notebook_dir = None if notebook_dir is None else str(Path(notebook_dir).expanduser().resolve())

    from distributed import as_completed
    from tqdm.auto import tqdm

    workers = min(n_workers or os.cpu_count() or 1, len(todo))
    n_failed = 0
    with sigterm_interrupts(), _dask_client(scheduler, client, workers) as dask_client, \
            tqdm(total=len(todo), desc=f"sweep {Path(str(tgt.label)).name}", disable=not progress,
                 unit="point") as bar:
        futures = {dask_client.submit(run_point, tgt, p, k, notebook_dir=notebook_dir, timeout=timeout,
                                      torch_threads=torch_threads, pure=False): (k, p) for k, p in todo}
        unsaved, last_save = 0, time.monotonic()
        try:
            for future in as_completed(list(futures)):
                k, p = futures[future]
                try:
                    result = future.result()
                except Exception as err:  # the worker died (KilledWorker), was cancelled, ...
                    result = {"figures": {}, "elapsed_s": math.nan, "error": describe_error(err),
                              "status": "error", "key": k}
                rows[k] = _row(p, result)
                unsaved += 1  # before the append: an interrupt inside it still saves this row to the table
                if journal is not None:
                    journal.append(rows[k])
                n_failed += result["status"] != "ok"
                bar.update(1)
                bar.set_postfix(failed=n_failed, refresh=False)
                if out is not None and (unsaved >= save_every or time.monotonic() - last_save > save_interval_s):
                    save()
                    unsaved, last_save = 0, time.monotonic()
        finally:
            pending = [f for f in futures if not f.done()]
            if pending:
                dask_client.cancel(pending)
            if journal is not None:
                journal.close()
            if out is not None and unsaved:
                save()
    return table()


# --- plots (plotly imported lazily) -----------------------------------------------------------------------

def _ok_rows(table: pd.DataFrame, columns, agg):
    missing = [c for c in columns if c is not None and c not in table.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in the sweep table (columns: {list(table.columns)})")
    ok = table[table["status"] == "ok"] if "status" in table.columns else table
    group = [c for c in columns[:-1] if c is not None]
    value = columns[-1]
    if ok.duplicated(group).any():
        if agg is None:
            raise ValueError(f"several rows share the same {group}: select one value of the other parameters first "
                             f"(e.g. table[table.lam == 4]) or pass agg='mean'")
        ok = ok.groupby(group, as_index=False, sort=False)[value].agg(agg)
    return ok


def plot_sweep(table: pd.DataFrame, x: str, y: str, color: str | None = None, facet: str | None = None, *,
               agg: str | None = None, log_x: bool = False, log_y: bool = False, title: str = ""):
    """Lines of figure `y` against parameter `x`, one per value of `color`, one panel per value of `facet`.

    Only rows with status "ok" are drawn. Rows sharing (x, color, facet) raise unless `agg` ("mean", "median",
    ...) combines them.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from .plotting import PALETTE

    ok = _ok_rows(table, [facet, color, x, y], agg)
    facets = list(dict.fromkeys(ok[facet])) if facet else [None]
    colors = list(dict.fromkeys(ok[color])) if color else [None]
    fig = make_subplots(rows=1, cols=len(facets), shared_yaxes=True,
                        subplot_titles=[f"{facet} = {v}" for v in facets] if facet else None)
    for col, fv in enumerate(facets, start=1):
        panel = ok if facet is None else ok[ok[facet] == fv]
        for i, cv in enumerate(colors):
            part = (panel if color is None else panel[panel[color] == cv]).sort_values(x)
            fig.add_trace(go.Scatter(x=part[x], y=part[y], mode="lines+markers", legendgroup=str(cv),
                                     name=y if color is None else f"{color} = {cv}", showlegend=col == 1,
                                     line=dict(color=PALETTE[i % len(PALETTE)])), row=1, col=col)
        fig.update_xaxes(title=x, type="log" if log_x else None, row=1, col=col)
    fig.update_yaxes(title=y, type="log" if log_y else None, row=1, col=1)
    fig.update_layout(title=title or f"{y} vs {x}", template="plotly_white", height=380,
                      width=max(460, 360 * len(facets)), margin=dict(l=55, r=15, t=60, b=45))
    return fig


def heatmap_sweep(table: pd.DataFrame, x: str, y: str, z: str, *, agg: str | None = None, title: str = "",
                  colorscale: str = "Viridis"):
    """Heatmap of figure `z` over the (x, y) parameter plane (rows with status "ok"; missing cells blank)."""
    import plotly.graph_objects as go

    ok = _ok_rows(table, [x, y, z], agg)
    grid = ok.pivot(index=y, columns=x, values=z).sort_index().sort_index(axis=1)
    fig = go.Figure(go.Heatmap(z=grid.to_numpy(dtype=float), x=list(grid.columns), y=list(grid.index),
                               colorscale=colorscale, colorbar=dict(title=z)))
    fig.update_xaxes(title=x)
    fig.update_yaxes(title=y)
    fig.update_layout(title=title or f"{z} over ({x}, {y})", template="plotly_white", height=380, width=500,
                      margin=dict(l=55, r=15, t=45, b=45))
    return fig
