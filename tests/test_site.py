"""The course site of scripts/site.py (`make site`): the executed notebooks and docs/ as a static Sphinx site.

Fast (no Sphinx): a notebook is made static as the site shows it (bookkeeping, papermill and Colab cells removed,
plotly outputs drawn by the page's plotly.js, a dashboard's snapshot with a line on running it live, solutions
folded); executions with an error or stderr stop the build with the notebook and cell named; docs/ pages get
MyST targets for their HTML anchors and GitHub links for repository files outside the site.
Small build (Sphinx, a two-page site): a broken link fails the build (warnings are errors).
Whole site (marked `browser`): built from the executions the suite already made (conftest's `fast_notebook`), then
- statically: every page exists, every internal link and #anchor resolves, no page loads a file from another host,
  every notebook page has its launch buttons (Binder, Colab) and every exercise's solution is folded;
- in Debian's Chromium (as tests/test_browser.py: never a browser download) over a loopback HTTP server, with every
  request to another host aborted: each page loads without a console error; each notebook page draws at least one
  plotly figure with data; each dashboard shows its snapshot's figure and the line on running it live; a folded
  solution opens on a click; the search page finds "tangent". Screenshots: artifacts/browser/site_*.png
  (`make screenshots` copies them to docs/img/).
"""
from __future__ import annotations

import functools
import html
import http.server
import importlib.util
import os
import re
import shutil
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "artifacts" / "browser"
NAMES = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def _site():
    spec = importlib.util.spec_from_file_location("diffviz_site_script", ROOT / "scripts" / "site.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


SITE = _site()


# --- fast: one notebook as the site shows it ---------------------------------------------------------------------
def _executed_like():
    """A small notebook with the outputs an execution leaves: a plotly figure, a dashboard, a solution, bookkeeping."""
    nb = nbformat.v4.new_notebook()
    nb.metadata.update(kernelspec={"name": "python3", "display_name": "Python 3", "language": "python"},
                       language_info={"name": "python"})
    fig = {"data": [{"type": "scatter", "x": [1, 2], "y": [3, 4]}], "layout": {"height": 300}}
    snapshot = "<div>snapshot <div class='plotly-graph-div'></div></div>"
    cells = [
        nbformat.v4.new_markdown_cell("# 9 · Title"),
        nbformat.v4.new_code_cell("%pip install diffviz", metadata={"tags": ["colab-install"]}),
        nbformat.v4.new_code_cell("FAST = True", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("FAST = True", metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_code_cell("fig", outputs=[nbformat.v4.new_output(
            "display_data", data={"application/vnd.plotly.v1+json": fig, "text/html": "<div>inline plotly</div>"})]),
        nbformat.v4.new_code_cell("dash", outputs=[nbformat.v4.new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "x", "version_major": 2, "version_minor": 0},
            "text/html": snapshot, "text/plain": "VBox()"})]),
        nbformat.v4.new_code_cell("# exercise 09.q1\nanswer = 1", metadata={"tags": ["solution"]}),
        nbformat.v4.new_code_cell("record('x', 1)", metadata={"tags": ["figures", "remove-cell"]}),
    ]
    nb.cells = cells
    return nb


def test_site_notebook_drops_bookkeeping_and_makes_outputs_static():
    nb = SITE.site_notebook(_executed_like())
    sources = [c.source for c in nb.cells]
    assert "%pip install diffviz" not in sources and "record('x', 1)" not in sources
    assert sum(s == "FAST = True" for s in sources) == 1, "papermill's injected cell must go, the parameters stay"
    figure = nb.cells[2].outputs[0]["data"]
    assert "application/vnd.plotly.v1+json" not in figure and "Plotly.newPlot" in figure["text/html"]
    dash = nb.cells[3].outputs[0]["data"]
    assert set(dash) == {"text/html"}, "the widget view (no kernel on the site) must be dropped"
    assert "snapshot" in dash["text/html"] and SITE.DASHBOARD_NOTE_CLASS in dash["text/html"]
    assert "launch button" in dash["text/html"]


def test_solutions_are_folded_under_show_solution():
    nb = SITE.site_notebook(_executed_like())
    (solution,) = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    assert "hide-input" in solution.metadata["tags"]
    assert solution.metadata["mystnb"]["code_prompt_show"] == "Show solution"
    others = [c for c in nb.cells if c is not solution]
    assert not any("hide-input" in c.metadata.get("tags", []) for c in others)


def test_an_execution_error_or_stderr_stops_the_build_naming_the_cell(tmp_path):
    nb = _executed_like()
    nb.cells[4].outputs.append(nbformat.v4.new_output("error", ename="ValueError", evalue="T must be > 0",
                                                      traceback=[]))
    nb.cells[5].outputs.append(nbformat.v4.new_output("stream", name="stderr", text="UserWarning: careful\n"))
    path = tmp_path / "09_bad.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(SITE.SiteError) as err:
        SITE.build([path], tmp_path / "site", src=tmp_path / "src")
    message = str(err.value)
    assert "09_bad.ipynb, cell 4: ValueError: T must be > 0" in message
    assert "09_bad.ipynb, cell 5: stderr: UserWarning: careful" in message
    assert not (tmp_path / "site").exists()


def test_a_clean_execution_has_no_problems():
    assert SITE.execution_problems(_executed_like(), "x") == []


def test_docs_pages_get_targets_for_their_anchors_and_github_links_outside_the_site():
    text = ('<a id="s5-2"></a>\n### 5.2 Title\nSee [the README](../README.md), [theory](theory.md#s5-2), '
            '[notebook 3](../notebooks/03_schedules.ipynb) and [code](../diffviz/theory.py#L3).\n')
    out = SITE.page_for_site(text, "me/diffviz", "main")
    assert out.startswith("(s5-2)=\n### 5.2 Title")
    assert "(https://github.com/me/diffviz/blob/main/README.md)" in out
    assert "(https://github.com/me/diffviz/blob/main/diffviz/theory.py#L3)" in out
    assert "[theory](theory.md#s5-2)" in out and "(../notebooks/03_schedules.ipynb)" in out


@pytest.mark.slow
def test_a_broken_link_fails_the_build(tmp_path, monkeypatch):
    """Warnings are errors: a two-page site whose landing page links to a page that does not exist."""
    template = tmp_path / "template"
    template.mkdir()
    shutil.copytree(SITE.TEMPLATE / "_static", template / "_static")
    shutil.copy2(SITE.TEMPLATE / "conf.py", template / "conf.py")
    index = "# Home\n\n[missing](docs/no_such_page.md)\n\n```{toctree}\nnotebooks/09_bad\ndocs/theory\n```\n"
    (template / "index.md").write_text(index, encoding="utf-8")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "theory.md").write_text("# Theory\n\nok\n", encoding="utf-8")
    monkeypatch.setattr(SITE, "TEMPLATE", template)
    monkeypatch.setattr(SITE, "DOCS", docs)
    nb = _executed_like()
    path = tmp_path / "09_bad.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(SITE.SiteError, match="no_such_page"):
        SITE.build([path], tmp_path / "site", src=tmp_path / "src")
    assert not (tmp_path / "site").exists(), "a failed build must not leave a site behind"
    # the same site without the broken link builds: the failure above is the link's, not the setup's
    (template / "index.md").write_text(index.replace("[missing](docs/no_such_page.md)", "home"), encoding="utf-8")
    index = SITE.build([path], tmp_path / "site", src=tmp_path / "src")
    assert index.is_file() and (tmp_path / "site" / "_static" / "plotly.min.js").is_file()
    # a later failed build leaves that site as it was
    (template / "index.md").write_text("# Home\n\n[missing](docs/gone.md)\n\n```{toctree}\nnotebooks/09_bad\n"
                                       "docs/theory\n```\n", encoding="utf-8")
    with pytest.raises(SITE.SiteError, match="gone"):
        SITE.build([path], tmp_path / "site", src=tmp_path / "src")
    assert index.is_file(), "the last good site was removed by a failed build"


# --- the whole site ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def site(fast_notebook, tmp_path_factory):
    """The site built from the suite's FAST executions of every notebook; (out folder, build seconds).
    For development, DIFFVIZ_SITE_EXECUTED=results takes the executed notebooks from that folder instead."""
    folder = os.environ.get("DIFFVIZ_SITE_EXECUTED")
    if folder:
        executed = [Path(folder) / f"{name}.ipynb" for name in NAMES]
    else:
        fast_notebook.prefetch(*NAMES)
        executed = [fast_notebook(name)[1] for name in NAMES]
    tmp = tmp_path_factory.mktemp("site")
    t0 = time.perf_counter()
    SITE.build(executed, tmp / "site", src=tmp / "src", jobs=2)
    return tmp / "site", time.perf_counter() - t0


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])


@functools.lru_cache(maxsize=None)
def _parse(path: Path) -> _Links:
    p = _Links()
    p.feed(path.read_text(encoding="utf-8", errors="replace"))
    return p


def _pages(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*.html") if "_static" not in p.parts and "_sources" not in p.parts)


@pytest.mark.browser
@pytest.mark.slow
def test_site_pages_links_and_anchors(site):
    out, seconds = site
    print(f"site built in {seconds:.0f} s")
    pages = _pages(out)
    names = {str(p.relative_to(out)) for p in pages}
    expected = {"index.html", "api.html", "search.html", "docs/theory.html", "docs/notation.html",
                "docs/workshop.html"} | {f"notebooks/{n}.html" for n in NAMES}
    assert expected <= names, f"missing pages: {sorted(expected - names)}"
    broken = []
    for page in pages:
        for href in _parse(page).hrefs:
            url = urlparse(href)
            if url.scheme or href.startswith(("//", "mailto:", "javascript:")):
                continue
            target = (page.parent / unquote(url.path)).resolve() if url.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{page.relative_to(out)} -> {href} (no file)")
            elif url.fragment and target.suffix == ".html" and url.fragment not in _parse(target).ids:
                broken.append(f"{page.relative_to(out)} -> {href} (no anchor)")
    assert not broken, "broken internal links:\n" + "\n".join(broken[:40])
    assert SITE.remote_pages(out) == {}


def _prose(page: Path) -> str:
    """A page's text outside code, scripts and typeset math (Sphinx's math elements)."""
    text = re.sub(r"<(pre|code|script|style)\b[^>]*>.*?</\1>", " ", page.read_text(encoding="utf-8"), flags=re.S)
    text = re.sub(r'<(span|div) class="math[^"]*"[^>]*>.*?</\1>', " MATH ", text, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", text))


@pytest.mark.browser
@pytest.mark.slow
def test_no_formula_is_left_as_dollar_signs(site):
    """Every $...$ and $$...$$ of the notebooks and docs became math (a $$ block inside a paragraph included)."""
    out, _ = site
    left = {}
    for page in _pages(out / "notebooks") + _pages(out / "docs"):
        text = _prose(page)
        hits = [text[max(0, m.start() - 50):m.end() + 50].replace("\n", " ") for m in re.finditer(r"\$", text)]
        if hits:
            left[str(page.relative_to(out))] = hits[:3]
    assert not left, f"dollar signs left in the text (math not parsed): {left}"


@pytest.mark.browser
@pytest.mark.slow
def test_notebook_pages_have_launch_buttons_and_folded_solutions(site):
    out, _ = site
    for name in NAMES:
        html = (out / "notebooks" / f"{name}.html").read_text(encoding="utf-8")
        assert re.search(rf'href="https://mybinder\.org/v2/gh/[^"]+notebooks/{name}\.ipynb"', html), name
        assert re.search(rf'href="https://colab\.research\.google\.com/github/[^"]+notebooks/{name}\.ipynb"', html), name
        source = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        solutions = sum("solution" in c.metadata.get("tags", []) for c in source.cells)
        assert html.count("Show solution") == solutions, f"{name}: {solutions} solutions, each folded once"
        assert "NBVAL_CHECK_OUTPUT" not in html and "record(" not in html, f"{name}: bookkeeping cell shown"


# --- in the browser ------------------------------------------------------------------------------------------------
sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_browser as tb  # noqa: E402  (Chromium helpers)
from test_browser import browser  # noqa: E402,F401  (fixture)
from test_slides import PAGE_SIZE, PLOTS_IN  # noqa: E402


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(site):
    """The site on a loopback HTTP server (as a static host serves it); yields its base URL."""
    out, _ = site
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(out)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _offline_page(browser, base: str):
    """(context, page, console errors, requests to other hosts): every request off the loopback server is aborted."""
    context, page, errors = tb.open_page(browser, PAGE_SIZE)
    remote = tb.block_requests(context, (base, "data:", "blob:"))
    return context, page, errors, remote


MATH_STATE = """() => {
  const math = Array.from(document.querySelectorAll('span.math.notranslate, div.math.notranslate'));
  const raw = math.filter(m => !m.querySelector('script[type^="math/tex"]')).map(m => m.textContent.slice(0, 60));
  const busy = !window.MathJax || !MathJax.Hub || MathJax.Hub.queue.pending > 0 || MathJax.Hub.queue.running > 0;
  return {count: math.length, raw: raw, busy: math.length > 0 && busy};
}"""


def _wait_math(page, timeout_s: float = 60) -> dict:
    """Wait until MathJax has typeset the page; {count, raw (formulas left as TeX source), busy}."""
    deadline = time.time() + timeout_s
    while True:
        state = page.evaluate(MATH_STATE)
        if (not state["busy"] and not state["raw"]) or time.time() > deadline:
            return state
        time.sleep(0.5)


def _wait_plots(page, selector: str = "body", timeout_s: float = 60) -> list[dict]:
    deadline = time.time() + timeout_s
    while True:
        plots = page.locator(selector).first.evaluate(PLOTS_IN)
        if any(p["points"] > 0 and p["drawn"] > 0 for p in plots) or time.time() > deadline:
            return plots
        time.sleep(0.5)


@pytest.mark.browser
@pytest.mark.slow
def test_site_in_the_browser(site, served, browser):
    out, _ = site
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    problems, seconds = [], {}
    context, page, errors, remote = _offline_page(browser, served)
    try:
        for page_path in _pages(out):
            rel = str(page_path.relative_to(out))
            t0 = time.perf_counter()
            errors.clear()
            remote.clear()
            page.goto(urljoin(served, rel), wait_until="load")
            math = _wait_math(page)
            if math["raw"] or math["busy"]:
                problems.append(f"{rel}: {len(math['raw'])} of {math['count']} formulas not typeset "
                                f"(MathJax busy: {math['busy']}): {math['raw'][:3]}")
            if rel.startswith("notebooks/"):
                plots = _wait_plots(page)
                if not any(p["points"] > 0 and p["drawn"] > 0 for p in plots):
                    problems.append(f"{rel}: no plotly figure drew its data ({len(plots)} figures: {plots[:3]})")
                if page.locator(".diffviz-dashboard-static").count():
                    snap = _wait_plots(page, ".diffviz-dashboard-static")
                    if not any(p["points"] > 0 and p["drawn"] > 0 for p in snap):
                        problems.append(f"{rel}: the dashboard's snapshot drew no data")
                    if not page.locator(f".{SITE.DASHBOARD_NOTE_CLASS}").first.is_visible():
                        problems.append(f"{rel}: no visible line on running the dashboard live")
                if rel == "notebooks/03_schedules.html":  # its first figure, with the text above it
                    page.locator(".js-plotly-plot").first.evaluate("e => e.scrollIntoView({block: 'end'})")
                    page.wait_for_timeout(300)
                    page.screenshot(path=str(ARTIFACTS / "site_notebook.png"))
            if rel == "index.html":
                page.screenshot(path=str(ARTIFACTS / "site_index.png"))
            page.wait_for_timeout(200)  # late console errors of this page
            if errors:
                problems.append(f"{rel}: console errors {errors[:3]}")
            if remote:
                problems.append(f"{rel}: requests to other hosts {remote[:3]}")
            seconds[rel] = round(time.perf_counter() - t0, 1)
    finally:
        context.close()
    print("seconds per page:", seconds)
    assert not problems, "\n".join(problems)


@pytest.mark.browser
@pytest.mark.slow
def test_a_folded_solution_opens_on_click(site, served, browser):
    context, page, errors, _ = _offline_page(browser, served)
    try:
        page.goto(urljoin(served, "notebooks/00_tour.html"), wait_until="load")
        toggle = page.locator("summary", has_text="Show solution").first
        details = toggle.locator("xpath=..")
        assert details.evaluate("d => d.tagName") == "DETAILS" and not details.evaluate("d => d.open")
        code = details.locator("pre").first
        assert not code.is_visible(), "the solution is shown before a click"
        toggle.click()
        code.wait_for(state="visible", timeout=10_000)
        assert "BEGIN SOLUTION" in code.inner_text()
        assert not errors
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.slow
def test_search_finds_tangent(site, served, browser):
    context, page, errors, _ = _offline_page(browser, served)
    try:
        page.goto(urljoin(served, "search.html?q=tangent"), wait_until="load")
        results = page.locator("#search-results ul.search li")
        results.first.wait_for(state="attached", timeout=60_000)
        page.wait_for_timeout(500)
        links = results.locator("a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
        assert any("03_schedules" in h for h in links), f"'tangent' should find notebook 3: {links}"
        assert any("theory" in h for h in links), f"'tangent' should find the theory page: {links}"
        assert not errors, errors
    finally:
        context.close()
