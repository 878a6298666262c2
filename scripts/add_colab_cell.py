#!/usr/bin/env python3
"""Give every notebook source a Colab cell right after its title: install diffviz when it is missing.

    python scripts/add_colab_cell.py             # insert or refresh the cell in notebooks/NN_*.py
    python scripts/add_colab_cell.py --check     # exit 1 if a notebook lacks the current cell (changes nothing)
    python scripts/add_colab_cell.py --repo me/diffviz    # once the public repository exists
then regenerate the paired notebooks: .venv/bin/jupytext --to ipynb notebooks/NN_*.py

The cell (tagged "colab-install") is plain Python, so jupytext, papermill and nbval read it as any other cell:
where diffviz imports (make lab, Binder, papermill runs) it does nothing and prints nothing; on Colab it runs
`%pip install "diffviz @ git+https://github.com/<repo>"` through IPython and turns on Colab's manager for the
dashboards' custom widgets (plotly's FigureWidget is an anywidget).
Idempotent: an existing colab-install cell is replaced by the current text in place; other cells are not
touched (text-level edit, no jupytext round trip of the contributors' cells).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
TAG = "colab-install"
# There is no public remote yet: OWNER is a placeholder, replace it with --repo once the repository exists.
DEFAULT_REPO = "OWNER/diffviz"

CELL = '''# %% tags=["{tag}"] slideshow={{"slide_type": "skip"}}
# On Google Colab (or any Jupyter without diffviz): install diffviz. Does nothing where diffviz is installed.
try:
    import diffviz  # noqa: F401
except ImportError:
    get_ipython().run_line_magic("pip", 'install -q "diffviz @ git+https://github.com/{repo}"')  # noqa: F821
try:  # Colab only: let the dashboards' custom widgets (plotly FigureWidget via anywidget) display
    from google.colab import output

    output.enable_custom_widget_manager()
except ImportError:
    pass

'''

HEADER = re.compile(r"^# %%(?![%\w])")  # the start of a jupytext percent cell


def cell_text(repo: str = DEFAULT_REPO) -> str:
    return CELL.format(tag=TAG, repo=repo)


def _cells(lines: list[str]) -> list[int]:
    """Indices of the lines that start a cell (after the YAML header)."""
    return [i for i, line in enumerate(lines) if HEADER.match(line)]


def with_colab_cell(text: str, repo: str = DEFAULT_REPO) -> str:
    """`text` (a jupytext percent notebook) with the colab cell right after the title cell (replaced if present)."""
    lines = text.splitlines(keepends=True)
    starts = _cells(lines)
    if not starts:
        raise ValueError("no '# %%' cell found: not a jupytext percent notebook")
    new = cell_text(repo).splitlines(keepends=True)
    ends = starts[1:] + [len(lines)]
    for start, end in zip(starts, ends):  # refresh an existing cell in place
        if f'tags=["{TAG}"]' in lines[start]:  # with or without the slide metadata after it
            return "".join(lines[:start] + new + lines[end:])
    first = starts[0]
    if "[markdown]" in lines[first] and len(starts) > 1:
        at = starts[1]  # right after the title + summary markdown cell
    elif "[markdown]" in lines[first]:
        at = len(lines)
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        new = ["\n"] + new
    else:
        at = first  # no title cell: first cell
    return "".join(lines[:at] + new + lines[at:])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebook sources (default notebooks/NN_*.py)")
    parser.add_argument("--check", action="store_true", help="report notebooks lacking the current cell; change nothing")
    parser.add_argument("--repo", default=DEFAULT_REPO, help=f"GitHub owner/name to install from (default {DEFAULT_REPO})")
    args = parser.parse_args(argv)
    paths = args.paths or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
    stale = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        new = with_colab_cell(text, args.repo)
        if new == text:
            print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: up to date")
            continue
        stale.append(path)
        if not args.check:
            path.write_text(new, encoding="utf-8")
            print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: colab cell written")
    if args.check and stale:
        print("missing or outdated colab cell: " + ", ".join(p.name for p in stale), file=sys.stderr)
        return 1
    if stale and not args.check:
        print("now regenerate the paired notebooks: .venv/bin/jupytext --to ipynb notebooks/NN_*.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
