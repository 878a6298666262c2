"""The lecturer's path, checked on the notebook sources (docs/notebooks.md): each notebook opens with objectives,
prerequisites, time and (for the paper notebooks) a full citation and ends with take-aways; every section is a
slide; the regression bookkeeping lives in one tagged cell at the end; FAST picks defaults only; every citation
of the theory resolves to a section of docs/theory.md; no document points outside the repository.
"""
import ast
import json
import re
from pathlib import Path

import pytest

from diffviz.notebook_params import declared_parameters, read_notebook, tagged_cell

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
NAMES = [p.stem for p in SOURCES]
PAPER_NOTEBOOKS = ("01", "02", "03", "04")
THEORY = ROOT / "docs" / "theory.md"
CITE = re.compile(r"\[theory §(\d+(?:\.\d+)?)\]\((?:\.\./docs/|docs/|)theory\.md#s(\d+(?:-\d+)?)\)")


@pytest.fixture(scope="module", params=NAMES)
def nb(request):
    return request.param, read_notebook(ROOT / "notebooks" / f"{request.param}.py")


def _tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def _slide(cell):
    return cell.get("metadata", {}).get("slideshow", {}).get("slide_type")


def _code(nb):
    return [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def test_opens_with_objectives_prerequisites_time_and_citation(nb):
    name, nb = nb
    first = next(c for c in nb.cells if c.cell_type == "markdown")
    text = first.source
    assert text.startswith("# "), f"{name}: the first markdown cell must be the title"
    for part in ("**You will learn**", "**Prerequisites**", "**Time**"):
        assert part in text, f"{name}: the title cell lacks {part}"
    assert re.search(r"FAST.*\d", text.split("**Time**")[1]), f"{name}: **Time** must give the measured FAST run time"
    if name[:2] in PAPER_NOTEBOOKS:
        paper = text.split("**Paper**")[1] if "**Paper**" in text else ""
        assert re.search(r"(19|20)\d\d", paper) and re.search(r"arXiv[: ]\d{4}\.\d{4,5}", paper), \
            f"{name}: **Paper** must give authors, title, venue or arXiv id and year"
    assert _slide(first) == "slide", f"{name}: the title cell must be a slide"


def test_ends_with_take_aways(nb):
    name, nb = nb
    heads = [c.source.splitlines()[0] for c in nb.cells if c.cell_type == "markdown" and c.source]
    assert any(h.strip() == "## Take-aways" for h in heads), f"{name}: no '## Take-aways' section"


def test_every_section_is_a_slide(nb):
    name, nb = nb
    for c in nb.cells:
        if c.cell_type == "markdown" and c.source.startswith("## "):
            assert _slide(c) == "slide", f"{name}: section {c.source.splitlines()[0]!r} is not a slide"
    for tag in ("colab-install", "parameters", "figures"):
        assert _slide(nb.cells[tagged_cell(nb, tag)]) == "skip", f"{name}: the {tag} cell must be skipped in slides"


def test_bookkeeping_lives_in_one_tagged_cell_at_the_end(nb):
    name, nb = nb
    code = _code(nb)
    figures = [i for i, c in code if "figures" in _tags(c)]
    assert len(figures) == 1, f"{name}: expected one cell tagged 'figures', found {len(figures)}"
    i = figures[0]
    assert i == code[-1][0], f"{name}: the figures cell must be the last code cell"
    assert "remove-cell" in _tags(nb.cells[i]), f"{name}: the figures cell must also be tagged remove-cell"
    assert "NBVAL_CHECK_OUTPUT" in nb.cells[i].source
    bookkeeping = re.compile(r"\brecord\(|NBVAL_CHECK_OUTPUT|perf_counter|last_update_s|process_time")
    for j, c in code:
        if j != i:
            assert not bookkeeping.search(c.source), f"{name}: bookkeeping in teaching cell {j}:\n{c.source}"


def test_fast_picks_defaults_only(nb):
    name, nb = nb
    params = set(declared_parameters(nb)) - {"FIGURES_PATH"}
    p = tagged_cell(nb, "parameters")
    for j, c in _code(nb):
        if j == p or "colab-install" in _tags(c):
            continue
        source = "\n".join(line for line in c.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        uses = re.findall(r"\bFAST\b", source)
        allowed = re.findall(r"run_defaults\(FAST\)", source)
        assert len(uses) == len(allowed), f"{name}: FAST used outside run_defaults(FAST) in cell {j}"
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) and node.target.id in params:
                raise AssertionError(f"{name}: parameter {node.target.id} changed in cell {j}")
            if not isinstance(node, ast.Assign):
                continue
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            names += [e.id for t in node.targets if isinstance(t, ast.Tuple) for e in t.elts if isinstance(e, ast.Name)]
            for target in set(names) & params:
                v = node.value
                ok = (isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "default"
                      and v.args and isinstance(v.args[0], ast.Name) and v.args[0].id == target)
                assert ok, f"{name}: parameter {target} reassigned in cell {j} (only `{target} = default({target}, ...)`)"


def test_em_is_never_an_abbreviation(nb):
    name, nb = nb
    for c in nb.cells:
        if c.cell_type == "markdown":
            assert not re.search(r"\bEM\b", c.source), f"{name}: 'EM' is ambiguous; spell out Euler–Maruyama or " \
                                                       f"expectation–maximisation:\n{c.source}"


def _theory_anchors():
    text = THEORY.read_text(encoding="utf-8")
    anchors = {}
    for m in re.finditer(r'<a id="s(\d+(?:-\d+)?)"></a>\s*\n#+ (\d+(?:\.\d+)?)[. ]', text):
        anchors[m.group(1)] = m.group(2)
    return anchors


def test_theory_sections_are_anchored_and_numbered():
    anchors = _theory_anchors()
    assert len(anchors) >= 9
    for anchor, number in anchors.items():
        assert anchor.replace("-", ".") == number, (anchor, number)


def _documents():
    docs = [(p.relative_to(ROOT).as_posix(), p.read_text(encoding="utf-8")) for p in SOURCES]
    docs += [(p.relative_to(ROOT).as_posix(), p.read_text(encoding="utf-8")) for p in (ROOT / "docs").glob("*.md")]
    docs += [("README.md", (ROOT / "README.md").read_text(encoding="utf-8"))]
    return docs


def test_every_theory_citation_resolves():
    anchors = _theory_anchors()
    cited = 0
    for where, text in _documents():
        spans = [m.span() for m in CITE.finditer(text)]
        for m in re.finditer(r"theory(?:\.md)?\]? ?§", text):
            assert any(a <= m.start() < b for a, b in spans), \
                f"{where}: a theory citation not in the form [theory §N](../docs/theory.md#sN): {text[m.start():m.start() + 60]!r}"
        for m in CITE.finditer(text):
            number, anchor = m.groups()
            assert anchor.replace("-", ".") == number, f"{where}: text §{number} but anchor #s{anchor}"
            assert anchor in anchors, f"{where}: cites theory §{number}, which docs/theory.md does not have"
            cited += 1
    assert cited >= 10


def test_no_document_points_outside_the_repository():
    for where, text in _documents():
        assert "../shared" not in text and "/work/" not in text, f"{where} points outside the repository"


def test_notation_page_defines_the_contested_symbols():
    text = (ROOT / "docs" / "notation.md").read_text(encoding="utf-8")
    for symbol in ("β_CW", "σ_w", "p_∞", "Euler–Maruyama", "expectation–maximisation", "u ∈ [0, 1]"):
        assert symbol in text, f"docs/notation.md does not define {symbol}"


def test_ipynb_pairs_carry_the_slide_metadata():
    for src in SOURCES:
        nb = json.loads(src.with_suffix(".ipynb").read_text(encoding="utf-8"))
        kinds = [c.get("metadata", {}).get("slideshow", {}).get("slide_type") for c in nb["cells"]]
        assert kinds.count("slide") >= 3, f"{src.stem}.ipynb has no slide metadata: regenerate it with jupytext"


def test_package_docstrings_cite_existing_theory_sections():
    anchors = {number for number in _theory_anchors().values()}
    cited = 0
    for path in sorted((ROOT / "diffviz").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(?<!docs/)theory\.md", text), f"{path.name}: cite docs/theory.md by its path"
        for m in re.finditer(r"docs/theory\.md (?:section |§)(\d+(?:\.\d+)?)((?:,? (?:and |with )?§\d+(?:\.\d+)?)*)", text):
            for number in [m.group(1)] + re.findall(r"§(\d+(?:\.\d+)?)", m.group(2)):
                assert number in anchors, f"{path.relative_to(ROOT)} cites docs/theory.md §{number}, which does not exist"
                cited += 1
    assert cited >= 10
