"""Lecture mode: the static decks of scripts/slides.py (`make slides`) and the live RISE slideshow in JupyterLab.

Fast (no browser): a deck built from a notebook given slide metadata drops the cells tagged `remove-cell` and
papermill's `injected-parameters`, draws plotly outputs with the local plotly.js, shows a dashboard's static
snapshot, and references no other host; every local file it names is in slides/_static.

Browser (marked `browser`, Debian's Chromium through Playwright, set up as in tests/test_browser.py: never a
browser download, a loud skip where Chromium cannot be had, a failure with DIFFVIZ_REQUIRE_BROWSER=1):
- static: the deck of one dashboard notebook, built from the executed copy the suite already made (conftest's
  `fast_notebook`), opened from file:// with every non-file request aborted; the dashboard's slide shows its
  snapshot's plotly figure with data, and the console stays free of errors;
- live: the same executed notebook opened in JupyterLab (loopback, token), run once (a dashboard needs a
  kernel), the dashboard cell selected, the `RISE:slideshow` command opens the RISE slideshow in a new tab on
  that cell's slide; the dashboard cell is run there (Ctrl+Enter, as a lecturer would) and the dashboard
  renders live (a plotly figure with data and a control) and answers a dropdown.
Screenshots: artifacts/browser/slides_static.png and slides_live.png (`make screenshots` copies them to docs/img/).
The notebook: DIFFVIZ_SLIDES_NOTEBOOK (default 03_schedules, the quickest notebook with a dashboard). Until the
notebooks carry slide metadata, the copies used here get it from the conventions of docs/notebooks.md.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "artifacts" / "browser"
NAME = os.environ.get("DIFFVIZ_SLIDES_NOTEBOOK", "03_schedules")
SKIP_TAGS = {"parameters", "colab-install", "figures", "remove-cell", "injected-parameters"}
SECTION = re.compile(r"^##\s+(\d+\.|Take-aways)", re.M)


def _slides():
    spec = importlib.util.spec_from_file_location("diffviz_slides_script", ROOT / "scripts" / "slides.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


SLIDES = _slides()


def with_slide_metadata(nb):
    """Slide types after docs/notebooks.md where the notebook has none: the title and each `## k.` section a
    slide, the colab/parameters/figures cells skipped, the rest continuing the slide. Metadata already present
    is kept as it is."""
    if any("slideshow" in c.metadata for c in nb.cells):
        return nb
    for i, cell in enumerate(nb.cells):
        tags = set(cell.metadata.get("tags", []))
        if i == 0 or (cell.cell_type == "markdown" and SECTION.match(cell.source)):
            kind = "slide"
        elif tags & SKIP_TAGS:
            kind = "skip"
        else:
            kind = "-"
        cell.metadata["slideshow"] = {"slide_type": kind}
    return nb


def _local_refs(html: str) -> list[str]:
    return [m for m in re.findall(r"""(?:src|href)=["']([^"'#]+)["']""", html)
            if not re.match(r"(?:[a-z]+:)?//|data:|mailto:|javascript:", m, re.I)]


# --- fast: the builder -------------------------------------------------------------------------------------------
def _fake_outputs(nb):
    """An unexecuted notebook with outputs as an execution leaves them: a plotly figure, a dashboard (widget view
    + static snapshot), a widget without a snapshot, a bookkeeping cell and papermill's parameters cell."""
    import plotly.graph_objects as go

    code = [i for i, c in enumerate(nb.cells)  # teaching cells: on a slide, not removed
            if c.cell_type == "code" and not set(c.metadata.get("tags", [])) & (SKIP_TAGS | {"solution"})]
    fig = go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2], name="curve")).to_plotly_json()
    nb.cells[code[-2]].outputs = [nbformat.v4.new_output(
        "display_data", data={"application/vnd.plotly.v1+json": fig, "text/plain": ["Figure()"]})]
    snapshot = go.Figure(go.Bar(y=[1, 2])).to_html(include_plotlyjs="cdn", full_html=False)
    nb.cells[code[-1]].outputs = [
        nbformat.v4.new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2, "version_minor": 0},
            "text/html": snapshot + "<p>SNAPSHOT-LINE</p>", "text/plain": ["VBox(...)"]}),
        nbformat.v4.new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "def", "version_major": 2, "version_minor": 0},
            "text/plain": ["IntSlider(value=1)"]})]
    nb.cells.insert(code[1] + 1, nbformat.v4.new_code_cell(
        "# Parameters\nFIGURES_PATH = 'INJECTED-MARKER'", metadata={"tags": ["injected-parameters"]}))
    nb.cells.append(nbformat.v4.new_code_cell("record('REMOVE-MARKER', 1)",
                                              metadata={"tags": ["figures", "remove-cell"]}))
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return nb


def test_builder_drops_tagged_cells_draws_plotly_and_stays_offline(tmp_path):
    import jupytext

    nb = _fake_outputs(jupytext.read(NOTEBOOKS / f"{NAME}.py"))
    nb = with_slide_metadata(nb)
    src = tmp_path / f"{NAME}.ipynb"
    nbformat.write(nb, src)
    out = tmp_path / "slides"
    static = SLIDES.copy_assets(out)
    deck = SLIDES.build_deck(src, out)
    assert deck == out / f"{NAME}.slides.html"
    html = deck.read_text(encoding="utf-8")

    assert "REMOVE-MARKER" not in html and "INJECTED-MARKER" not in html, "tagged cells must not reach the deck"
    kinds = [c.metadata["slideshow"]["slide_type"] for c in nb.cells
             if not set(c.metadata.get("tags", [])) & {"remove-cell", "injected-parameters"}]
    assert html.count("<section") == 2 * kinds.count("slide") + kinds.count("subslide"), \
        "a slide is an outer and an inner <section>, each subslide one more inner <section>"
    assert "colab-install" not in html and "google.colab" not in html, "the skipped Colab cell is in the deck"
    # plotly JSON drawn by the local plotly.js; the snapshot's CDN <script> dropped; widgets without one explained
    assert html.count("Plotly.newPlot") == 2 and "cdn.plot.ly" not in html
    assert html.count(f'class="{SLIDES.DASHBOARD_CLASS}"') == 2 and "SNAPSHOT-LINE" in html
    assert "runs live in JupyterLab" in html
    assert "VBox(" not in html and "IntSlider(" not in html and "widget-state" not in html
    # offline: no script, stylesheet or module from another host; every local file present
    assert SLIDES.remote_references(html) == []
    assert not re.search(r"(?:unpkg\.com|cdnjs|cdn\.jsdelivr|cdn\.plot\.ly)", html)
    refs = _local_refs(html)
    for needed in ("_static/reveal.js/dist/reveal.css", "_static/reveal.js/dist/theme/white.css",
                   "_static/plotly.min.js", "_static/require.js/require.js"):
        assert needed in refs, f"the deck does not load {needed}"
    missing = [r for r in refs if not (out / r.split("?")[0]).is_file()]
    assert not missing, f"the deck names files that are not in {out}: {missing}"
    for f in ("reveal.js/dist/reveal.js", "reveal.js/plugin/notes/notes.js", "mathjax/MathJax.js",
              "mathjax/config/TeX-AMS-MML_HTMLorMML-full.js", "mathjax/fonts/HTML-CSS/STIX-Web"):
        assert (static / f).exists(), f"_static/{f} missing"
    assert f'"{SLIDES.STATIC}/reveal.js/dist/reveal.js"' in html


def test_localize_plotly_drops_cdn_and_inlined_bundles():
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(y=[1, 2]))
    for include in (True, "cdn", "require", False):
        text = SLIDES.localize_plotly(fig.to_html(include_plotlyjs=include, full_html=False))
        assert "Plotly.newPlot" in text and len(text) < 20_000 and SLIDES.remote_references(text) == [], include


def test_make_slides_builds_from_the_executed_notebooks():
    make = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^slides:.*\$\(EXECUTED\)", make, re.M), "make slides must depend on the executed notebooks"
    assert re.search(r"^results/%\.ipynb: notebooks/%\.py", make, re.M)
    assert "scripts/slides.py" in make and "slides/" in (ROOT / ".gitignore").read_text()


# --- browser -----------------------------------------------------------------------------------------------------
sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_browser as tb  # noqa: E402  (Chromium, JupyterLab helpers)
from test_browser import browser  # noqa: E402,F401  (fixture)

browser_only = [pytest.mark.browser, pytest.mark.slow]
NOT_FILE_ERRORS = ("net::ERR_", "Failed to load resource")


@pytest.fixture(scope="module")
def executed(fast_notebook, tmp_path_factory):
    """The suite's executed copy of NAME, with slide metadata (a copy in a temporary folder)."""
    if NAME not in tb.dashboard_notebooks():
        pytest.fail(f"DIFFVIZ_SLIDES_NOTEBOOK={NAME} builds no dashboard")
    _, path = fast_notebook(NAME)
    nb = with_slide_metadata(nbformat.read(path, as_version=4))
    tmp = tmp_path_factory.mktemp("slides")
    copy = tmp / f"{NAME}.ipynb"
    nbformat.write(nb, copy)
    return copy


PAGE_SIZE = {"width": 1400, "height": 900}
OFFLINE = ("file://", "data:", "blob:")  # a static deck may reach nothing else


PLOTS_IN = """(root) => Array.from(root.querySelectorAll('.js-plotly-plot')).map(gd => {
  const traces = gd._fullData || [];
  const n = (a) => (a && typeof a.length === 'number') ? a.length : 0;
  const box = gd.getBoundingClientRect();
  return {traces: traces.length, points: traces.reduce((s, t) => s + Math.max(n(t.x), n(t.y), n(t.z)), 0),
          drawn: gd.querySelectorAll('.scatterlayer .trace, .barlayer .trace, .heatmaplayer image, .contourlayer path').length,
          width: box.width, height: box.height};
})"""


@pytest.mark.browser
@pytest.mark.slow
def test_static_deck_draws_the_dashboard_snapshot_offline(executed, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    out = executed.parent / "slides"
    SLIDES.copy_assets(out)
    deck = SLIDES.build_deck(executed, out)
    size = deck.stat().st_size
    assert size < 3_000_000, f"{deck.name} is {size / 1e6:.1f} MB: an inlined plotly.js left in an output?"
    context, page, errors = tb.open_page(browser, PAGE_SIZE)
    remote = tb.block_requests(context, OFFLINE)
    try:
        page.goto(deck.as_uri(), wait_until="load")
        page.wait_for_function("() => window.Reveal && window.Reveal.isReady()", timeout=60_000)
        total = page.evaluate("() => Reveal.getTotalSlides()")
        where = page.evaluate(f"""() => {{
            const d = document.querySelector('.{SLIDES.DASHBOARD_CLASS}');
            if (!d) return null;
            const s = d.closest('section');
            Reveal.slide(Reveal.getIndices(s).h, Reveal.getIndices(s).v);
            return Reveal.getIndices();
        }}""")
        assert where is not None, f"{deck.name}: no dashboard output in the deck"
        snapshot = page.locator(f"section.present .{SLIDES.DASHBOARD_CLASS}").first
        assert not snapshot.inner_text().strip().startswith("Interactive dashboard: it runs live"), (
            f"{deck.name}: the dashboard's display bundle has no static text/html snapshot, only the deck's note")
        deadline = time.monotonic() + 60
        while True:
            plots = snapshot.evaluate(PLOTS_IN)
            if plots and all(p["traces"] > 0 and p["points"] > 0 and p["drawn"] > 0 and p["width"] > 50
                             for p in plots):
                break
            assert time.monotonic() < deadline, f"{deck.name}: the snapshot's plotly figure did not draw: {plots}"
            time.sleep(0.5)
        snapshot.scroll_into_view_if_needed()
        time.sleep(1)
        page.screenshot(path=str(ARTIFACTS / "slides_static.png"))
        math = page.evaluate("() => document.querySelectorAll('.MathJax, .MathJax_Display').length")
        report = {"deck": deck.name, "bytes": size, "slides": total, "dashboard_slide": where, "plots": plots, "mathjax": math,
                  "console_errors": errors, "remote_requests": remote}
        (ARTIFACTS / "slides_static.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
        print(f"\n[slides static] {report}")
        assert not remote, f"{deck.name} asked for other hosts: {remote[:5]}"
        assert not errors, f"{deck.name}: console errors: {errors[:5]}"
        assert math > 0, f"{deck.name}: MathJax typeset nothing"
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / "slides_static-FAILED.png"))
        raise
    finally:
        context.close()


# --- the live slideshow --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def live_lab(executed, tmp_path_factory, pytestconfig):
    """JupyterLab (loopback, random token, temporary config) on a root holding the executed notebook."""
    tmp = tmp_path_factory.mktemp("slides-lab")
    root = tmp / "root"
    (root / "notebooks").mkdir(parents=True)
    nb = nbformat.read(executed, as_version=4)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    nb.metadata.pop("jupytext", None)  # no pairing with a text file in the copy
    nbformat.write(nb, root / "notebooks" / f"{NAME}.ipynb")
    settings = tmp / "lab-settings"
    tb._write_json(settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
                   {"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True})
    tb._write_json(settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings",
                   {"windowingMode": "none"})
    tb._write_json(tmp / "jupyter-config" / "jupyter_server_config.json", {"LabApp": {"news_url": None}})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "DIFFVIZ_CACHE_DIR": os.environ.get("DIFFVIZ_CACHE_DIR", str(tmp / "diffviz-cache")),
           "JUPYTER_CONFIG_DIR": str(tmp / "jupyter-config"), "JUPYTER_RUNTIME_DIR": str(tmp / "jupyter-runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "lab-workspaces"),
           "IPYTHONDIR": str(tmp / "ipython"), "PYTHONUNBUFFERED": "1",
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    token, log = os.urandom(16).hex(), tmp / "jupyterlab.log"
    port = tb._free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
           "--LabApp.extension_manager=readonly", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    with open(log, "ab") as logf:
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=logf,
                                stderr=subprocess.STDOUT, start_new_session=True)
    server = tb.Lab(proc, url, token, log)
    try:
        deadline = time.monotonic() + tb.SERVER_START_S
        while True:
            try:
                server.api("GET", "/api/status", timeout=5)
                break
            except (OSError, urllib.error.URLError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start; log {log}:\n" + log.read_text(errors="replace")[-4000:])
                time.sleep(0.5)
        yield server
    finally:
        server.shutdown_sessions()
        tb._stop(proc, url, token)


@pytest.mark.browser
@pytest.mark.slow
def test_live_slideshow_runs_the_dashboard(live_lab, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context, page, errors = tb.open_page(browser, PAGE_SIZE)
    nb = tb.Notebook(page, NAME)
    report: dict = {"notebook": NAME}
    rise = None
    try:
        nb.open(live_lab)
        nb.run_all()
        nb.check_errors("after running all cells")
        index = nb.js("""() => { const w = window.jupyterapp.shell.currentWidget;
            const i = w.content.widgets.findIndex(c => c.node.querySelector('.widget-slider, .widget-dropdown'));
            if (i >= 0) w.content.activeCellIndex = i;
            return i; }""")
        assert index >= 0, f"{NAME}: no dashboard control after running all cells"
        commands = nb.js("() => window.jupyterapp.commands.listCommands().filter(c => c.startsWith('RISE:'))")
        assert "RISE:slideshow" in commands, f"jupyterlab-rise is not loaded in JupyterLab (RISE commands: {commands})"
        with context.expect_page(timeout=60_000) as new:
            nb.js("() => window.jupyterapp.commands.execute('RISE:slideshow')")
        rise = new.value
        rise.on("console", lambda m: errors.append("rise: " + m.text) if m.type == "error" else None)
        rise.on("pageerror", lambda e: errors.append(f"rise pageerror: {e}"))
        report["url"] = rise.url.split("?")[0].replace(live_lab.url, "")
        rise.wait_for_selector(".reveal .slides section.present .jp-Cell.jp-mod-active", timeout=tb.OPEN_S * 1000)
        slide = rise.locator(".reveal .slides section.present").last
        # The slideshow opened on the dashboard's slide. Widgets restored from the kernel lose plotly's traces
        # (FigureWidget state), so the lecturer runs the dashboard cell in the slideshow: Ctrl+Enter on it.
        time.sleep(3)
        active = slide.locator(".jp-Cell.jp-mod-active").first
        active.locator(".jp-InputPrompt").first.click()
        rise.keyboard.press("Escape")
        rise.keyboard.press("Control+Enter")
        dash = slide.locator(".jp-OutputArea-output:has(.widget-slider), .jp-OutputArea-output:has(.widget-dropdown)")
        deadline = time.monotonic() + tb.RENDER_S
        while True:
            plots = dash.first.evaluate(PLOTS_IN) if dash.count() else []
            if plots and all(p["traces"] > 0 and p["points"] > 0 and p["width"] > 50 for p in plots):
                break
            assert time.monotonic() < deadline, (
                f"{NAME}: the dashboard did not render live on the slideshow's current slide "
                f"({dash.count()} dashboards there, plots {plots})")
            time.sleep(0.5)
        report["plots"] = plots
        # live: another option in a dropdown changes the plotted data (a round trip through the kernel; arrow
        # keys belong to reveal.js in a slideshow, so no slider is moved with the keyboard here)
        key = lambda: json.dumps(dash.first.evaluate("""(root) => Array.from(root.querySelectorAll('.js-plotly-plot'))
            .map(gd => (gd._fullData || []).map(t => [t.x && t.x.length, t.y && Array.from(t.y).slice(0, 50)]))"""))
        before = key()
        select = dash.first.locator("select").first
        assert select.count(), f"{NAME}: the dashboard on the slide has no dropdown"
        n_opts, current = select.evaluate("s => [s.options.length, s.selectedIndex]")
        select.select_option(index=(current + 1) % n_opts)
        deadline = time.monotonic() + tb.UPDATE_S
        while key() == before:
            assert time.monotonic() < deadline, f"{NAME}: changing a dropdown in the slideshow changed no plotted data"
            time.sleep(0.5)
        report["dropdown"] = select.evaluate("s => s.options[s.selectedIndex].text")
        time.sleep(1.5)
        rise.screenshot(path=str(ARTIFACTS / "slides_live.png"))
        widget_errors = [e for e in errors if any(p in e for p in tb.WIDGET_FAILURES)]
        report["console_errors"] = errors[:30]
        assert not widget_errors, f"{NAME}: widget errors in the slideshow: {widget_errors[:5]}"
        nb.check_errors("after the slideshow")
    except BaseException:
        for p, n in ((rise, "slides_live-FAILED.png"), (page, "slides_live-lab-FAILED.png")):
            if p is not None:
                try:
                    p.screenshot(path=str(ARTIFACTS / n))
                except Exception:
                    pass
        raise
    finally:
        (ARTIFACTS / "slides_live.json").write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
        context.close()
    print(f"\n[slides live] {report}")
