"""The `diffviz` command line: `diffviz sweep ...` (parameter grids on Dask) and `diffviz run ...` (notebooks).

    diffviz sweep diffusion-time --grid T=0.2,0.5,1 --grid eps2=0.01,0.1 --out results/dt.parquet
    diffviz sweep mypkg.mod:func --grid-file grid.json --out runs.csv --scheduler tcp://10.0.0.5:8786
    diffviz sweep notebooks/03_phase_transitions.py --grid d=1000,4000 --grid FAST=true --out pt.parquet
    diffviz sweep --list
    diffviz run notebooks/03_schedules.py -p FAST false --out results
    diffviz run --all                                             (every notebooks/NN_*.py, FAST=True)

Also runnable without installing: `python -m diffviz.cli ...`.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path


def parse_value(text: str, like=None):
    """A command-line value: JSON if it parses (3, 0.5, 1e-3, true, null, "x", [1, 2]), True/False/None, else text.

    like: the parameter's default; when it is a string the value stays text ("0" -> "0"; a quoted JSON string
    is unquoted).
    """
    if isinstance(like, str) and not (text.startswith('"') and text.endswith('"') and len(text) > 1):
        return text
    try:
        return json.loads(text)
    except ValueError:
        pass
    return {"True": True, "False": False, "None": None}.get(text, text)


def parse_grid_arg(text: str, like: dict | None = None) -> tuple[str, list]:
    """"name=v1,v2,..." -> (name, [parsed values]); like: {name: default}, see `parse_value`."""
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or not name or not values.strip():
        raise ValueError(f"--grid must look like NAME=V1,V2,..., got {text!r}")
    return name, [parse_value(v.strip(), (like or {}).get(name)) for v in values.split(",")]


def load_grid_file(path) -> dict | list:
    """A JSON grid file: {"name": [values], ...} (Cartesian product) or [{"name": value, ...}, ...] (points)."""
    path = Path(path)
    try:
        grid = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read the grid file {str(path)!r}: {err}") from err
    if not isinstance(grid, (dict, list)):
        raise ValueError(f"grid file {str(path)!r} must hold a JSON object or a list of objects")
    return grid


def build_grid(default, grid_file, grid_args, like: dict | None = None) -> dict | list | None:
    """Merge the example's default grid, a grid file and --grid axes (later sources replace whole axes);
    like: a notebook's {name: default}, so that --grid values of string parameters stay text."""
    grid = None if default is None else dict(default)
    if grid_file is not None:
        loaded = load_grid_file(grid_file)
        if isinstance(loaded, list):
            if grid_args:
                raise ValueError("--grid cannot be combined with a grid file that lists points; put every axis in one")
            return loaded
        grid = {**(grid or {}), **loaded}
    for text in grid_args or []:
        name, values = parse_grid_arg(text, like)
        grid = {**(grid or {}), name: values}
    return grid


# --- diffviz sweep ----------------------------------------------------------------------------------------

PLOT_FORMS = "FIGURE:X[:COLOR[:FACET]] or heatmap:Z:X:Y"


def parse_plot_spec(spec: str) -> tuple[str, list[str]]:
    """("lines", [FIGURE, X, COLOR?, FACET?]) or ("heatmap", [Z, X, Y]) from a --plot value."""
    parts = spec.split(":")
    if parts[0] == "heatmap" and len(parts) == 4 and all(parts[1:]):
        return "heatmap", parts[1:]
    if parts[0] != "heatmap" and 2 <= len(parts) <= 4 and all(parts):
        return "lines", parts
    raise ValueError(f"--plot must be {PLOT_FORMS}, got {spec!r}")


def write_plot(table, spec: str, out: str) -> Path:
    """Write the figure `spec` (see `parse_plot_spec`) of a sweep table next to `out` as HTML; repeated points
    averaged. Lines: `diffviz.sweep.plot_sweep`; heatmap: `heatmap_sweep`."""
    from .atomic import atomic_write
    from .sweep import heatmap_sweep, plot_sweep

    kind, names = parse_plot_spec(spec)
    missing = [n for n in names if n not in table.columns]
    if missing:
        raise ValueError(f"--plot {spec!r}: no column {missing} in the sweep table; columns: "
                         f"{sorted(map(str, table.columns))}")
    if kind == "heatmap":
        fig = heatmap_sweep(table, names[1], names[2], names[0], agg="mean")
    else:
        y, x, color, facet = (names + [None, None])[:4]
        fig = plot_sweep(table, x, y, color, facet, agg="mean")
    path = Path(out).with_name(f"{Path(out).stem}.{spec.replace(':', '_')}.html")
    html = fig.to_html(include_plotlyjs=True, full_html=True)
    return atomic_write(path, lambda fh: fh.write(html), mode="w")


def _cmd_sweep(args) -> int:
    from .sweep import resolve_target, sweep
    from .sweeps_examples import EXAMPLES

    if args.list:
        for name, ex in EXAMPLES.items():
            axes = " × ".join(f"{k}{list(v)}" for k, v in ex.grid.items())
            print(f"{name:18s} {ex.description}\n{'':18s} {ex.function}  grid: {axes}")
        return 0
    if args.target is None or args.out is None:
        print("diffviz sweep: TARGET and --out are required (or --list)", file=sys.stderr)
        return 2
    for spec in args.plot or []:
        parse_plot_spec(spec)  # a malformed --plot fails now, not after the sweep
    target = resolve_target(args.target)
    like = None
    if target.kind == "notebook":
        from .notebook_params import declared_parameters, read_notebook

        like = declared_parameters(read_notebook(target.ref))
    grid = build_grid(target.default_grid, args.grid_file, args.grid, like)
    if grid is None:
        print(f"diffviz sweep: give a grid (--grid NAME=V1,V2 or --grid-file) for {args.target!r}", file=sys.stderr)
        return 2
    table = sweep(args.target, grid, args.out, scheduler=args.scheduler, n_workers=args.workers,
                  retry_failed=args.retry_failed, save_every=args.save_every, progress=not args.no_progress,
                  notebook_dir=args.notebook_dir, timeout=args.timeout)
    failed = table[table["status"] != "ok"]
    print(f"diffviz sweep: {len(table)} points, {len(table) - len(failed)} ok, {len(failed)} failed -> {args.out}")
    for spec in args.plot or []:
        print(f"diffviz sweep: plot {spec} -> {write_plot(table, spec, args.out)}")
    params = [c for c in table.columns if c not in ("elapsed_s", "error", "status", "key")]
    for _, row in failed.iterrows():
        where = ", ".join(f"{c}={row[c]!r}" for c in params if c in row and not _is_missing(row[c]))
        print(f"  failed {row['key']} ({where}): {row['error']}", file=sys.stderr)
    return 1 if len(failed) else 0


def _is_missing(value) -> bool:
    return value is None or isinstance(value, float) and value != value


# --- diffviz run ------------------------------------------------------------------------------------------

def _cmd_run(args) -> int:
    """Run each notebook with `run_notebook(path, parameters, out_dir)`: OUT/<name>.ipynb (executed) and
    OUT/<name>.figures.json (its recorded figures). `--all` runs notebooks/NN_*.py in order. Every notebook's
    parameters are checked first (`notebook_params.check_parameters`): a bad one runs nothing (exit status 2).
    Exit status 1 if any notebook failed (the others still run); the FAILED line names the failing cell."""
    from .notebook_params import check_parameters, declared_parameters, read_notebook
    from .notebook_run import run_notebook

    paths = list(args.notebooks)
    if args.all:
        paths += sorted(str(p) for p in Path(args.notebooks_dir).glob("[0-9][0-9]_*.py"))
    if not paths:
        print("diffviz run: give NOTEBOOK paths or --all", file=sys.stderr)
        return 2
    runs = []
    for path in paths:  # refuse unknown names and ill-typed values before running anything
        nb = read_notebook(path)
        declared = declared_parameters(nb)
        params = {name: parse_value(text, declared.get(name)) for name, text in args.parameter or []}
        runs.append((path, check_parameters(nb, params, where=Path(path).name)))
    status = 0
    for path, params in runs:
        try:
            figures = run_notebook(path, params, args.out, timeout=args.timeout)
        except Exception as err:  # report and go on with the next notebook
            from .sweep import describe_error

            print(f"FAILED {path}: {_failed_cell(err)}{describe_error(err)}", file=sys.stderr)
            status = 1
            continue
        stem = Path(path).stem
        print(f"ok {path}: {len(figures)} figures -> {Path(args.out) / (stem + '.ipynb')}, "
              f"{Path(args.out) / (stem + '.figures.json')}")
    return status


def _failed_cell(err) -> str:
    """"cell N (execution count M): " for a notebook error that knows its cell (see `run_notebook`), else ""."""
    number = getattr(err, "cell_number", None)
    if number is None:
        return ""
    count = getattr(err, "exec_count", None)
    return f"cell {number}" + ("" if count is None else f" (execution count {count})") + ": "


# --- entry point ------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diffviz", description="diffviz: score-based diffusion, headless tools")
    sub = parser.add_subparsers(dest="command")

    sw = sub.add_parser("sweep", help="run a function or notebook over a parameter grid on Dask",
                        description="Run TARGET at every grid point on Dask and write a tidy table (one row per "
                                    "point: parameters, figures, elapsed_s, error, status, key). Re-running with "
                                    "the same --out skips the points already done. Exit status 1 if a point failed.")
    sw.add_argument("target", nargs="?",
                    help="'module:function', a notebook (.ipynb or jupytext .py) or an example name (--list)")
    sw.add_argument("--grid", action="append", metavar="NAME=V1,V2,...",
                    help="one axis of the grid (repeatable); values are parsed as JSON when they can be")
    sw.add_argument("--grid-file", metavar="FILE.json",
                    help='JSON grid: {"name": [values]} or a list of {"name": value} points')
    sw.add_argument("--out", help="results table, .parquet or .csv (also the resume file)")
    sw.add_argument("--scheduler", metavar="ADDR",
                    help="address of a running Dask scheduler (default: a local cluster)")
    sw.add_argument("--workers", type=int, help="local cluster size (default: the number of CPUs)")
    sw.add_argument("--retry-failed", action="store_true", help="re-run the points recorded as failed in --out")
    sw.add_argument("--save-every", type=int, default=10, metavar="K",
                    help="save the table every K points (10); each finished point is also journaled at once "
                         "next to --out, so a killed sweep resumes where it was")
    sw.add_argument("--timeout", type=float, help="per-cell timeout in seconds for notebook targets")
    sw.add_argument("--notebook-dir", help="where executed notebooks go (default: next to --out)")
    sw.add_argument("--no-progress", action="store_true", help="no progress bar")
    sw.add_argument("--list", action="store_true", help="list the shipped example sweeps and exit")
    sw.add_argument("--plot", action="append", metavar="SPEC",
                    help="also write a plotly HTML next to --out: FIGURE:X[:COLOR[:FACET]] (FIGURE against "
                         "parameter X, a line per COLOR, a panel per FACET) or heatmap:Z:X:Y; repeatable; "
                         "repeated points averaged")
    sw.set_defaults(func=_cmd_sweep)

    rn = sub.add_parser("run", help="execute notebooks headless (papermill) and collect their figures")
    rn.add_argument("notebooks", nargs="*", help="notebooks to run (.ipynb or jupytext .py)")
    rn.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                    help="papermill parameter (repeatable); VALUE parsed as JSON when it can be")
    rn.add_argument("--out", default="results", help="folder for executed notebooks and figures JSON (results)")
    rn.add_argument("--all", action="store_true", help="run every notebooks/NN_*.py")
    rn.add_argument("--notebooks-dir", default="notebooks", help=argparse.SUPPRESS)
    rn.add_argument("--timeout", type=float, help="per-cell timeout in seconds")
    rn.set_defaults(func=_cmd_run)
    return parser


def main(argv=None) -> int:
    """Entry point of the `diffviz` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (ValueError, ConnectionError) as err:  # a bad argument, an unreachable --scheduler: one line
        print(f"diffviz {args.command}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM during a sweep (diffviz.interrupt.Terminated)
        signum = getattr(err, "signum", signal.SIGINT)
        where = f"; the points done are saved in {args.out}, run the same command to resume" \
            if args.command == "sweep" and args.out else ""
        print(f"diffviz {args.command}: {'terminated' if signum == signal.SIGTERM else 'interrupted'}{where}",
              file=sys.stderr)
        return 128 + signum


if __name__ == "__main__":
    sys.exit(main())
