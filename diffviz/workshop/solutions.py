"""The one source of the solutions: regions of the notebook sources, copied into package data.

A solution lives in a code cell of `notebooks/NN_topic.py` tagged `solution`, whose first line is the marker
`# exercise NN.qK`, between the lines `### BEGIN SOLUTION` and `### END SOLUTION` (nbgrader's markers, at
column 0). `solution_regions(path)` reads them; `solution_source(id)` serves an exercise's region from the
notebook when the repository is around (a development checkout) and from `solutions.json` (package data,
written by `make student` = `scripts/make_student.py`, and tested to equal the notebooks' regions) otherwise.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
MARKER = re.compile(r"^#\s*exercise\s+(\d\d\.q\d+)\s*$")
PACKAGE_DATA = Path(__file__).with_name("solutions.json")
REPO_NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def cell_exercise_id(source: str) -> str | None:
    """The id in a cell's marker line `# exercise NN.qK` (its first line), or None."""
    first = source.lstrip("\n").split("\n", 1)[0].strip()
    m = MARKER.match(first)
    return m.group(1) if m else None


def split_region(source: str, where: str = "cell"):
    """(before, region, after) line lists of a cell with one BEGIN/END SOLUTION pair; ValueError otherwise."""
    lines = source.split("\n")
    begins = [i for i, line in enumerate(lines) if line.strip() == BEGIN]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if len(begins) != 1 or len(ends) != 1 or not begins[0] < ends[0]:
        raise ValueError(f"{where}: a solution cell needs exactly one '{BEGIN}' ... '{END}' pair")
    b, e = begins[0], ends[0]
    if lines[b] != BEGIN or lines[e] != END:
        raise ValueError(f"{where}: the solution markers must start at column 0")
    return lines[:b], lines[b + 1:e], lines[e + 1:]


def solution_regions(path) -> dict[str, str]:
    """{exercise id: region source} of the cells tagged `solution` in one notebook (.py or .ipynb)."""
    from ..notebook_params import read_notebook

    nb = read_notebook(path)
    out = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or "solution" not in cell.get("metadata", {}).get("tags", []):
            continue
        where = f"{Path(path).name}, cell {i + 1}"
        ex_id = cell_exercise_id(cell.source)
        if ex_id is None:
            raise ValueError(f"{where}: a solution cell must open with '# exercise NN.qK'")
        if ex_id in out:
            raise ValueError(f"{where}: a second solution cell for {ex_id}")
        _, region, _ = split_region(cell.source, where)
        out[ex_id] = "\n".join(region).strip("\n")
    return out


def notebook_sources(root=None) -> list[Path]:
    root = Path(root) if root is not None else REPO_NOTEBOOKS
    return sorted(root.glob("[0-9][0-9]_*.py"))


def all_regions(root=None) -> dict[str, str]:
    """{id: region} over every notebook source under `root` (default: the repository's notebooks/)."""
    out = {}
    for path in notebook_sources(root):
        for ex_id, src in solution_regions(path).items():
            if ex_id in out:
                raise ValueError(f"exercise {ex_id} has solution cells in two notebooks")
            if ex_id[:2] != path.name[:2]:
                raise ValueError(f"{path.name}: exercise {ex_id} belongs to notebook {ex_id[:2]}")
            out[ex_id] = src
    return out


def write_package_data(regions: dict[str, str], path=PACKAGE_DATA) -> bool:
    """Write solutions.json (sorted, stable); True when it changed."""
    text = json.dumps(dict(sorted(regions.items())), indent=1, ensure_ascii=False) + "\n"
    path = Path(path)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


@lru_cache(maxsize=None)
def _package_data() -> dict[str, str]:
    if not PACKAGE_DATA.exists():
        return {}
    return json.loads(PACKAGE_DATA.read_text(encoding="utf-8"))


def _repo_notebook(nb: str) -> Path | None:
    if not REPO_NOTEBOOKS.is_dir():
        return None
    found = sorted(REPO_NOTEBOOKS.glob(f"{nb}_*.py"))
    return found[0] if found else None


def solution_source(ex_id: str) -> str:
    """The solution region of exercise `ex_id` (the notebook source first, else package data)."""
    path = _repo_notebook(ex_id[:2])
    if path is not None:
        regions = solution_regions(path)
        if ex_id in regions:
            return regions[ex_id]
    data = _package_data()
    if ex_id in data:
        return data[ex_id]
    raise LookupError(f"no solution cell '# exercise {ex_id}' in notebook {ex_id[:2]} (nor in solutions.json)")
