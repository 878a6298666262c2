"""Dashboards in a real browser: JupyterLab from this environment, driven by headless Chromium (Playwright).

For every notebook whose jupytext source builds a dashboard (its text contains "Dashboard("), the test
1. opens the notebook in JupyterLab and runs all cells with the notebook's default parameters (FAST=True),
   through JupyterLab's own command `notebook:run-all-cells` (the app is exposed as `window.jupyterapp`);
2. waits until every code cell has run and the kernel is idle, then until the dashboard is drawn: a read-out
   table (value cells carrying data-key / data-value, the raw number) and plotly figures holding data;
3. reads the displayed numbers (from those data attributes) and a signature of the plotted data (the traces'
   point counts and sums, as plotly.js holds them, and the `d` attribute of every SVG path);
4. moves a slider with the keyboard (focus on the handle, arrow keys; sliders report on release, and a key
   press is a release) and changes a dropdown (`<select>`), waiting each time until the kernel is idle and
   the page has settled, and checks that both the numbers and the plotted data changed; for the sandbox
   (06_sandbox), first three real mouse clicks on its data plot (two add a bead, one removes it: the bead count,
   the samples and the numbers change each time), at pixel positions computed from plotly's axes;
5. fails on any error: an `error` message or a Python traceback on the kernel's iopub channel (that also
   catches exceptions raised in widget callbacks, which show in no cell), an error or traceback in any output
   area, a widget that could not be displayed, a dashboard status starting with "⚠" (a caught
   ValueError/FloatingPointError), or a traceback in the server log (kernel process included).
   Harmless stderr is allowed and printed: warnings (lines naming a *Warning* class) and tqdm progress text.
A screenshot of each dashboard, and a JSON of what was read, goes to artifacts/browser/ (gitignored).

Isolation: JupyterLab listens on 127.0.0.1 only, on a free port, with a random token, from a temporary
root holding a copy of notebooks/ (each .ipynb regenerated from its .py source), with temporary Jupyter
config, runtime, settings and workspace folders (news and update checks off, notebook windowing off so every
output is in the DOM); the kernel gets OMP_NUM_THREADS=1 and a temporary DIFFVIZ_CACHE_DIR. The server and
the browser are shut down by the fixtures whatever happens.

Browser: Debian's /usr/bin/chromium (or $DIFFVIZ_CHROMIUM), never a Playwright download. When it is missing
the test tries `apt-get install -y chromium` (root with apt only) and otherwise skips with a loud message;
set DIFFVIZ_REQUIRE_BROWSER=1 to make a missing browser a failure instead.
For development: DIFFVIZ_BROWSER_NOTEBOOKS=03_schedules,04_phase_transitions restricts the notebooks.
"""
from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1800, "height": 1100}

# Seconds. Generous: two shared cores, a kernel start can take 20 s and a FAST notebook a minute or more.
SERVER_START_S = 180
OPEN_S = 120
KERNEL_READY_S = 180
RUN_ALL_S = 480
RENDER_S = 120
UPDATE_S = 150

# The dashboard's read-out: its "⚠ ..." message line (if any) first, then one "key = raw value" line per value cell
# of the read-out table (each carries data-key and data-value, the unformatted number; booleans read "true"/"false"
# and are not parsed as numbers). Older dashboards printed a status line in a <code>: read as a fallback.
STATUS_JS = """(root) => {
  const lines = Array.from(root.querySelectorAll('.diffviz-message')).map(e => e.innerText.trim()).filter(t => t);
  for (const e of root.querySelectorAll('.diffviz-readout [data-key][data-value]'))
    lines.push(e.getAttribute('data-key') + ' = ' + e.getAttribute('data-value'));
  if (lines.length) return lines.join('\\n');
  const code = Array.from(root.querySelectorAll('.widget-html code')).map(e => e.innerText.trim()).filter(t => t);
  return code.join('\\n');
}"""

# Per plotly figure: its traces as plotly.js holds them (type, point counts, sums of x/y/z) and the `d`
# attribute of every SVG path in the plotting layers (WebGL traces only show in the trace part).
PLOTS_JS = """(root) => {
  const summary = (a) => {
    if (a === undefined || a === null) return '-';
    if (typeof a[Symbol.iterator] !== 'function' || typeof a === 'string') return 'o' + JSON.stringify(a).length;
    let n = 0, s = 0, k = 0;
    for (const v of a) { n += 1; const f = typeof v === 'number' ? v : parseFloat(v); if (isFinite(f)) { s += f; k += 1; } }
    return n + ':' + k + ':' + s.toPrecision(10);
  };
  const count = (a) => (a && typeof a.length === 'number') ? a.length : 0;
  return Array.from(root.querySelectorAll('.js-plotly-plot')).map(gd => {
    const traces = gd._fullData || gd.data || [];
    return {
      n_traces: traces.length,
      points: traces.map(t => Math.max(count(t.x), count(t.y), count(t.z))),
      traces: traces.map(t => [t.type, summary(t.x), summary(t.y), summary(t.z)].join('|')).join(';'),
      paths: Array.from(gd.querySelectorAll('.cartesianlayer path, .barlayer path, .scatterlayer path, .heatmaplayer image'))
        .map(p => p.getAttribute('d') || p.getAttribute('href') || '').join(';'),
      title: (gd.querySelector('.gtitle') || {}).textContent || '',
      legend: Array.from(gd.querySelectorAll('.legendtext')).map(e => e.textContent),
    };
  });
}"""

NUMBER = re.compile(r"([A-Za-z_][\w]*) = ([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf))")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
WIDGET_FAILURES = ("Error displaying widget", "Failed to load model class", "Could not create a view",
                   "Could not create model", "Error rendering output item", "model not found")


# --- which notebooks -----------------------------------------------------------------------------------------
def dashboard_notebooks(folder: Path = NOTEBOOKS) -> list[str]:
    """Stems of the jupytext sources NN_topic.py in `folder` that build a dashboard ("Dashboard(" in the text)."""
    names = sorted(p.stem for p in folder.glob("[0-9][0-9]_*.py") if "Dashboard(" in p.read_text(encoding="utf-8"))
    only = [n.strip() for n in os.environ.get("DIFFVIZ_BROWSER_NOTEBOOKS", "").split(",") if n.strip()]
    return [n for n in names if n in only] if only else names


NAMES = dashboard_notebooks()


# --- loud skips --------------------------------------------------------------------------------------------------
def _loud(config, message: str) -> None:
    """Write `message` to the terminal even while pytest captures output."""
    banner = "!" * 100
    text = f"\n{banner}\n!! {message}\n{banner}"
    capman = config.pluginmanager.getplugin("capturemanager")
    reporter = config.pluginmanager.getplugin("terminalreporter")
    if capman is not None and reporter is not None:
        with capman.global_and_fixture_disabled():
            reporter.write_line(text, red=True, bold=True)
    else:  # pragma: no cover - pytest always has both
        print(text, file=sys.__stderr__, flush=True)


def _skip_or_fail(config, message: str):
    _loud(config, message)
    if os.environ.get("DIFFVIZ_REQUIRE_BROWSER", "") not in ("", "0"):
        pytest.fail(message + " (DIFFVIZ_REQUIRE_BROWSER is set)")
    pytest.skip(message)


def _find_chromium(config) -> str:
    """Path of a Chromium binary: $DIFFVIZ_CHROMIUM, Debian's chromium, or one installed now with apt (root)."""
    candidates = [os.environ.get("DIFFVIZ_CHROMIUM", ""), "/usr/bin/chromium", "/usr/bin/chromium-browser",
                  shutil.which("chromium") or "", shutil.which("chromium-browser") or ""]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    apt = shutil.which("apt-get")
    if hasattr(os, "geteuid") and os.geteuid() == 0 and apt:
        _loud(config, "Chromium not found: trying `apt-get install -y chromium` (needed by tests/test_browser.py)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in ([apt, "install", "-y", "-q", "chromium"], [apt, "update", "-q"],
                    [apt, "install", "-y", "-q", "chromium"]):
            try:
                subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=900)
            except (OSError, subprocess.SubprocessError):
                break
            if os.path.isfile("/usr/bin/chromium"):
                return "/usr/bin/chromium"
    _skip_or_fail(config, "BROWSER TEST SKIPPED: no Chromium at /usr/bin/chromium (install Debian's `chromium` "
                          "package, or set DIFFVIZ_CHROMIUM=/path/to/chromium); the dashboards were NOT checked "
                          "in a browser")


# --- JupyterLab --------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def _prepare_root(tmp: Path, names: list[str]) -> Path:
    """A copy of notebooks/ under tmp/root, each dashboard notebook's .ipynb regenerated from its .py source."""
    import jupytext

    root = tmp / "root"
    shutil.copytree(NOTEBOOKS, root / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.figures.json"))
    for name in names:
        src = root / "notebooks" / f"{name}.py"
        nb = jupytext.read(src)
        jupytext.write(nb, src.with_suffix(".ipynb"), fmt="ipynb")
        # Paired notebooks: the text file must not be older than the .ipynb (jupytext refuses to open those).
        later = time.time() + 2
        os.utime(src, (later, later))
    return root


class Lab:
    """A JupyterLab server started by the fixture: url, token, log file, and REST helpers."""

    def __init__(self, proc, url, token, log):
        self.proc, self.url, self.token, self.log = proc, url, token, log

    def api(self, method: str, path: str, timeout: float = 20):
        req = urllib.request.Request(f"{self.url}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def shutdown_sessions(self) -> None:
        """Shut down every kernel session (frees CPU and memory between notebooks)."""
        try:
            for s in self.api("GET", "/api/sessions"):
                self.api("DELETE", f"/api/sessions/{s['id']}", timeout=60)
        except (OSError, urllib.error.URLError, ValueError):
            pass

    def log_text(self, start: int = 0) -> str:
        with open(self.log, "rb") as f:
            f.seek(start)
            return f.read().decode("utf-8", "replace")

    def log_size(self) -> int:
        return self.log.stat().st_size


def _stop(proc: subprocess.Popen, url: str | None = None, token: str | None = None) -> None:
    """Stop the server we started: the REST shutdown first (kernels included), then its process group."""
    if proc.poll() is not None:
        return
    if url:
        try:
            req = urllib.request.Request(f"{url}/api/shutdown", method="POST",
                                         headers={"Authorization": f"token {token}"})
            urllib.request.urlopen(req, timeout=10).read()
            proc.wait(timeout=20)
            return
        except (OSError, urllib.error.URLError, subprocess.TimeoutExpired):
            pass
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)  # the server was started in its own session: its group is ours alone
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def lab(tmp_path_factory, pytestconfig):
    if not NAMES:
        pytest.skip("no notebook builds a dashboard")
    tmp = tmp_path_factory.mktemp("browser-lab")
    root = _prepare_root(tmp, NAMES)
    settings = tmp / "lab-settings"
    _write_json(settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
                {"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True})
    _write_json(settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings",
                {"windowingMode": "none"})
    _write_json(tmp / "jupyter-config" / "jupyter_server_config.json", {"LabApp": {"news_url": None}})
    env = {**os.environ,
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "DIFFVIZ_CACHE_DIR": str(tmp / "diffviz-cache"),
           "JUPYTER_CONFIG_DIR": str(tmp / "jupyter-config"),
           "JUPYTER_RUNTIME_DIR": str(tmp / "jupyter-runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "lab-workspaces"),
           "IPYTHONDIR": str(tmp / "ipython"),
           "PYTHONUNBUFFERED": "1"}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    token = os.urandom(16).hex()
    log = tmp / "jupyterlab.log"
    proc = url = None
    for attempt in range(3):  # a port taken between choosing it and binding it: try another one
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.open_browser=False",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               "--LabApp.expose_app_in_browser=True", "--LabApp.extension_manager=readonly",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        logf = open(log, "ab")
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=logf,
                                stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        atexit.register(_stop, proc)
        deadline, up = time.monotonic() + SERVER_START_S, False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                req = urllib.request.Request(f"{url}/api/status", headers={"Authorization": f"token {token}"})
                urllib.request.urlopen(req, timeout=5).read()
                up = True
                break
            except (OSError, urllib.error.URLError):
                time.sleep(0.5)
        if up:
            break
        _stop(proc)
        if attempt == 2 or "already in use" not in log.read_text(errors="replace"):
            pytest.fail(f"JupyterLab did not start within {SERVER_START_S} s; log {log}:\n"
                        + log.read_text(errors="replace")[-4000:])
    server = Lab(proc, url, token, log)
    try:
        yield server
    finally:
        server.shutdown_sessions()
        _stop(proc, url, token)


@pytest.fixture(scope="module")
def browser(pytestconfig):
    if not NAMES:
        pytest.skip("no notebook builds a dashboard")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail(pytestconfig, "BROWSER TEST SKIPPED: the Python package `playwright` is missing "
                                    "(pip install -e '.[dev]'); the dashboards were NOT checked in a browser")
    executable = _find_chromium(pytestconfig)
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS, timeout=120_000)
    except Exception:
        pw.stop()
        raise
    try:
        yield b
    finally:
        try:
            b.close()
        finally:
            pw.stop()


# --- driving one notebook ----------------------------------------------------------------------------------------
class Notebook:
    """One notebook open in a page: JupyterLab state through window.jupyterapp, dashboards through the DOM."""

    def __init__(self, page, name):
        self.page, self.name = page, name
        self.timings: dict[str, float] = {}
        self.stderr_seen: list[str] = []

    def js(self, code: str, arg=None):
        return self.page.evaluate(code, arg)

    def open(self, lab: Lab) -> None:
        t = time.monotonic()
        self.page.goto(f"{lab.url}/lab/tree/notebooks/{self.name}.ipynb?reset&token={lab.token}",
                       wait_until="domcontentloaded", timeout=OPEN_S * 1000)
        self.page.wait_for_function(
            """(name) => { const app = window.jupyterapp; const w = app && app.shell.currentWidget;
                 return !!(w && w.sessionContext && w.content && w.context && w.context.path.endsWith(name + '.ipynb')); }""",
            arg=self.name, timeout=OPEN_S * 1000)
        self.js("() => window.jupyterapp.shell.collapseLeft()")
        self.timings["open_s"] = time.monotonic() - t
        t = time.monotonic()
        deadline = time.monotonic() + KERNEL_READY_S
        while True:
            state = self.js("""() => { const s = window.jupyterapp.shell.currentWidget.sessionContext;
                const k = s.session && s.session.kernel; return {ready: s.isReady, status: k ? k.status : null}; }""")
            if state["ready"] and state["status"] == "idle":
                break
            dialog = self.page.locator(".jp-Dialog")
            if dialog.count():  # e.g. a kernel chooser: take the default, but say so
                print(f"[{self.name}] dialog accepted: {dialog.first.inner_text()[:200]!r}")
                self.page.locator(".jp-Dialog .jp-mod-accept").first.click()
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: the kernel was not ready within {KERNEL_READY_S} s ({state})")
            time.sleep(0.5)
        self.timings["kernel_start_s"] = time.monotonic() - t
        # Record every iopub message that reports an error, and all stderr text, from now on.
        self.js("""() => {
          window.__diffviz = {errors: [], stderr: []};
          window.jupyterapp.shell.currentWidget.sessionContext.iopubMessage.connect((_, msg) => {
            const t = msg.header.msg_type, c = msg.content || {};
            if (t === 'error') window.__diffviz.errors.push(
                {ename: c.ename, evalue: c.evalue, traceback: (c.traceback || []).join('\\n')});
            else if (t === 'stream' && c.name === 'stderr') window.__diffviz.stderr.push(c.text);
          });
        }""")

    def kernel_status(self) -> str | None:
        return self.js("""() => { const s = window.jupyterapp.shell.currentWidget.sessionContext;
            return s.session && s.session.kernel ? s.session.kernel.status : null; }""")

    def run_all(self) -> None:
        t = time.monotonic()
        self.js("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        deadline = time.monotonic() + RUN_ALL_S
        while True:
            time.sleep(1)
            self.check_errors("while running all cells")
            st = self.js("""() => { const w = window.jupyterapp.shell.currentWidget;
                const cells = w.content.widgets.filter(c => c.model.type === 'code' &&
                                                            c.model.sharedModel.getSource().trim() !== '');
                const k = w.sessionContext.session && w.sessionContext.session.kernel;
                return {status: k ? k.status : null, done: cells.filter(c => c.model.executionCount !== null).length,
                        total: cells.length,
                        pending: cells.filter(c => (c.promptNode ? c.promptNode.textContent : '').includes('*')).length}; }""")
            if st["status"] in ("dead", "unknown", None) and time.monotonic() - t > 5:
                raise AssertionError(f"{self.name}: the kernel died while running all cells ({st})")
            if st["status"] == "idle" and st["done"] == st["total"] and st["pending"] == 0:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: running all cells took more than {RUN_ALL_S} s ({st})")
        self.timings["run_all_s"] = time.monotonic() - t

    def check_errors(self, when: str) -> None:
        """Fail on error output of any kind; remember harmless stderr (warnings, progress bars) for the report."""
        log = self.js("() => window.__diffviz")
        if log["errors"]:
            e = log["errors"][0]
            raise AssertionError(f"{self.name}: {e['ename']}: {e['evalue']} ({when})\n" + ANSI.sub("", e["traceback"]))
        for text in log["stderr"]:
            if "Traceback (most recent call last)" in text:
                raise AssertionError(f"{self.name}: a traceback on the kernel's stderr ({when}):\n{text[-3000:]}")
        self.stderr_seen = [t for t in log["stderr"]]
        bad = self.js("""(patterns) => {
          const out = [];
          for (const o of document.querySelectorAll('.jp-OutputArea-output')) {
            const mime = o.getAttribute('data-mime-type') || '';
            const text = o.innerText || '';
            if (mime === 'application/vnd.jupyter.stderr' && /Traceback|\\w+Error\\b|Exception\\b/.test(text))
              out.push('stderr/error output: ' + text.slice(0, 3000));
            else if (patterns.some(p => text.includes(p))) out.push('widget failure: ' + text.slice(0, 1000));
            else if (o.querySelector('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]')
                     && /Traceback/.test(text)) out.push('traceback: ' + text.slice(0, 3000));
          }
          return out;
        }""", list(WIDGET_FAILURES))
        # Warnings are stderr too: allow them when no line names an error class (e.g. "UserWarning: ...").
        bad = [b for b in bad if not _only_warnings(b)]
        if bad:
            raise AssertionError(f"{self.name}: error output in the notebook ({when}):\n" + "\n---\n".join(bad))

    def dashboards(self):
        loc = self.page.locator(".jp-OutputArea-output:has(.widget-slider), .jp-OutputArea-output:has(.widget-dropdown)")
        return [loc.nth(i) for i in range(loc.count())]

    def snapshot(self, dash) -> dict:
        status = dash.evaluate(STATUS_JS)
        plots = dash.evaluate(PLOTS_JS)
        return {"status": status, "numbers": parse_numbers(status), "plots": plots,
                "kernel": self.kernel_status()}

    def wait_rendered(self, dash) -> dict:
        deadline = time.monotonic() + RENDER_S
        while True:
            snap = self.snapshot(dash)
            plots = snap["plots"]
            if (snap["numbers"] and plots and all(p["n_traces"] > 0 for p in plots)
                    and sum(sum(p["points"]) for p in plots) > 0 and snap["kernel"] == "idle"):
                return snap
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: the dashboard did not render within {RENDER_S} s: {_brief(snap)}")
            time.sleep(0.5)

    def wait_changed(self, dash, before: dict) -> dict | None:
        """Wait until the kernel is idle and the dashboard has settled on a new state; None if nothing changed."""
        start = time.monotonic()
        last, stable, snap = None, 0, before
        while time.monotonic() < start + UPDATE_S:
            time.sleep(0.5)
            snap = self.snapshot(dash)
            changed = snap["status"] != before["status"] or _plot_key(snap) != _plot_key(before)
            key = (snap["status"], _plot_key(snap), snap["kernel"])
            stable = stable + 1 if key == last and snap["kernel"] == "idle" else 0
            last = key
            # settled: idle and unchanged for 2 s (after a change, or after 20 s without one)
            if stable >= 4 and (changed or time.monotonic() - start > 20):
                return snap if changed else None
        raise AssertionError(f"{self.name}: the dashboard did not settle within {UPDATE_S} s: {_brief(snap)}")


def _check_legends(name: str, snap: dict, when: str) -> None:
    """Every diffviz trace has a name: a legend entry 'trace N' means the browser lost trace properties.

    (Seen with plotly's FigureWidget: inside `batch_update`, a property set on some traces only is sent to
    plotly.js as null for the others, which resets their name, colour... to the default. Fix: set the property
    on every trace of the batch, or fill each trace's missing edits with its current values before the batch
    ends.)"""
    lost = [(p["title"], t) for p in snap["plots"] for t in p["legend"] if re.fullmatch(r"trace \d+", t.strip())]
    assert not lost, (f"{name}: legend entries {lost} ({when}): these traces lost their names (and maybe colours) in "
                      f"the browser; see _check_legends in tests/test_browser.py for the cause and the fix")


def _brief(snap: dict) -> dict:
    """What a snapshot shows, without the long path strings: status, numbers, per figure its title and point counts."""
    return {"status": snap["status"], "numbers": snap["numbers"],
            "figures": [{"title": p["title"], "points": p["points"]} for p in snap["plots"]]}


def parse_numbers(status: str) -> dict:
    return {k: float(v) for k, v in NUMBER.findall(status or "")}


def _plot_key(snap: dict) -> list:
    return [(p["traces"], p["paths"]) for p in snap["plots"]]


def _plots_changed(a: dict, b: dict) -> list[int]:
    """Indices of the figures whose plotted data differ between two snapshots."""
    pa, pb = a["plots"], b["plots"]
    if len(pa) != len(pb):
        return list(range(max(len(pa), len(pb))))
    return [i for i, (x, y) in enumerate(zip(pa, pb)) if (x["traces"], x["paths"]) != (y["traces"], y["paths"])]


def _numbers_changed(a: dict, b: dict) -> dict:
    keys = set(a["numbers"]) | set(b["numbers"])
    return {k: (a["numbers"].get(k), b["numbers"].get(k)) for k in sorted(keys)
            if a["numbers"].get(k) != b["numbers"].get(k)}


def _only_warnings(report: str) -> bool:
    """An stderr output whose error-looking lines are all warnings (e.g. 'UserWarning: ...'), no traceback."""
    text = report.split(":", 1)[1] if ":" in report else report
    if "Traceback" in text or report.startswith("widget failure"):
        return False
    lines = [ln for ln in text.splitlines() if re.search(r"\w+Error\b|Exception\b", ln)]
    return bool(lines) and all(re.search(r"\w+Warning\b", ln) or "warn" in ln.lower() for ln in lines)


def _move_slider(nb: Notebook, dash, handle) -> tuple[str, str, str]:
    """Focus a slider handle and press an arrow key three times (left at the top of its range)."""
    now, top = handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemax")
    key = "ArrowLeft" if now is not None and top is not None and float(now) >= float(top) else "ArrowRight"
    handle.scroll_into_view_if_needed()
    handle.focus()
    for _ in range(3):
        nb.page.keyboard.press(key)
        time.sleep(0.15)
    return now, handle.get_attribute("aria-valuenow"), key


def _label(control) -> str:
    lab = control.locator("label.widget-label")
    return lab.first.inner_text().strip() if lab.count() else "?"


def open_page(browser, viewport=None):
    """A fresh context and page (60 s default timeout) that collects console errors: (context, page, errors)."""
    context = browser.new_context(viewport=viewport or VIEWPORT)
    context.set_default_timeout(60_000)
    page = context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(f"pageerror: {e}"))
    return context, page, console_errors


def block_requests(context, allowed: tuple) -> list[str]:
    """Abort every request of `context` whose URL starts with none of `allowed` (offline checks); returns the
    list the aborted URLs are appended to."""
    blocked: list[str] = []

    def route(r):
        if r.request.url.startswith(allowed):
            return r.continue_()
        blocked.append(r.request.url)
        return r.abort()

    context.route("**/*", route)
    return blocked


@pytest.mark.parametrize("name", NAMES)
def test_dashboard_in_browser(name, lab, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context, page, console_errors = open_page(browser)
    log_start = lab.log_size()
    nb = Notebook(page, name)
    report = {"notebook": name}
    t0 = time.monotonic()
    try:
        nb.open(lab)
        nb.run_all()
        nb.check_errors("after running all cells")
        dashes = nb.dashboards()
        assert dashes, f"{name}: its source builds a dashboard, but no slider or dropdown was displayed"
        report["dashboards"] = []
        for k, dash in enumerate(dashes):
            dash.scroll_into_view_if_needed()
            first = nb.wait_rendered(dash)
            entry = {"initial": _brief(first)}
            _check_legends(name, first, "after running all cells")
            assert not first["status"].lstrip().startswith("⚠"), f"{name}: the dashboard shows an error: {first['status']}"
            if name == SANDBOX and k == 0:  # 0. the sandbox: beads added and removed by real clicks on the plot
                entry["clicks"] = _sandbox_clicks(nb, dash, first)

            # 1. a slider, moved with the keyboard: the first one that changes both the numbers and the plots
            sliders = dash.locator(".widget-slider")
            moved = None
            for i in range(sliders.count()):
                control = sliders.nth(i)
                handle = control.locator(".noUi-handle").first
                if not handle.count():
                    continue
                before = nb.snapshot(dash)
                old, new, key = _move_slider(nb, dash, handle)
                if old == new:
                    continue
                after = nb.wait_changed(dash, before)
                nb.check_errors(f"after moving slider {_label(control)!r}")
                if after:
                    _check_legends(name, after, f"after moving slider {_label(control)!r}")
                if after and _numbers_changed(before, after) and _plots_changed(before, after):
                    moved = {"slider": _label(control), "key": key, "from": old, "to": new,
                             "numbers_changed": _numbers_changed(before, after),
                             "figures_changed": _plots_changed(before, after), "after": _brief(after)}
                    break
            assert moved, (f"{name}: no slider changed both the displayed numbers and the plotted data "
                           f"({sliders.count()} sliders tried)")
            entry["slider"] = moved

            # 2. a dropdown: the first option (after the current one) that changes numbers and plots
            selects = dash.locator("select")
            changed = None
            for i in range(selects.count()):
                sel = selects.nth(i)
                n_opts = sel.evaluate("s => s.options.length")
                current = sel.evaluate("s => s.selectedIndex")
                for step in range(1, n_opts):
                    before = nb.snapshot(dash)
                    index = (current + step) % n_opts
                    sel.select_option(index=index)
                    after = nb.wait_changed(dash, before)
                    nb.check_errors("after changing a dropdown")
                    if after:
                        _check_legends(name, after, "after changing a dropdown")
                    if after and _numbers_changed(before, after) and _plots_changed(before, after):
                        changed = {"option": sel.evaluate("s => s.options[s.selectedIndex].text.replace(/\\s+/g, ' ')"),
                                   "numbers_changed": _numbers_changed(before, after),
                                   "figures_changed": _plots_changed(before, after), "after": _brief(after)}
                        break
                    current = index
                if changed:
                    break
            if selects.count():
                assert changed, f"{name}: no dropdown option changed both the displayed numbers and the plotted data"
            else:
                print(f"[{name}] dashboard {k} has no dropdown: only the slider was checked")
            entry["dropdown"] = changed
            final = nb.snapshot(dash)
            assert not final["status"].lstrip().startswith("⚠"), f"{name}: the dashboard shows an error: {final['status']}"
            dash.scroll_into_view_if_needed()
            time.sleep(0.5)
            shot = ARTIFACTS / (f"{name}.png" if k == 0 else f"{name}-{k}.png")
            dash.screenshot(path=str(shot))
            entry["screenshot"] = str(shot.relative_to(ROOT))
            report["dashboards"].append(entry)

        nb.check_errors("at the end")
        # The kernel's own log (comm handlers, widget callbacks) goes to the server's output: a traceback there
        # that involves the kernel or diffviz fails the test; other server tracebacks are only reported.
        server_log = lab.log_text(log_start)
        for m in re.finditer(r"Traceback \(most recent call last\)", server_log):
            block = server_log[max(0, m.start() - 300):m.start() + 3000]
            if re.search(r"diffviz|ipykernel|comm|widget", block):
                raise AssertionError(f"{name}: a kernel traceback in the JupyterLab log:\n{block}")
            print(f"[{name}] server traceback (not from the kernel), reported only:\n{block[:1500]}")
        widget_console = [c for c in console_errors if any(p in c for p in WIDGET_FAILURES)]
        assert not widget_console, f"{name}: widget errors in the browser console: {widget_console[:5]}"
    except BaseException:
        try:
            page.screenshot(path=str(ARTIFACTS / f"{name}-FAILED.png"), full_page=True)
        except Exception:
            pass
        raise
    finally:
        nb.timings["total_s"] = time.monotonic() - t0
        report.update(timings={k: round(v, 1) for k, v in nb.timings.items()}, console_errors=console_errors[:50],
                      stderr=[t[-500:] for t in nb.stderr_seen][:50])
        (ARTIFACTS / f"{name}.json").write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
        try:
            context.close()
        finally:
            lab.shutdown_sessions()
    for entry in report["dashboards"]:
        print(f"\n[{name}] {nb.timings}  screenshot {entry['screenshot']}\n"
              f"  initial: {entry['initial']['status']}\n"
              f"  slider {entry['slider']['slider']!r} {entry['slider']['from']} -> {entry['slider']['to']}: "
              f"{entry['slider']['after']['status']}  (figures changed: {entry['slider']['figures_changed']})")
        if entry["dropdown"]:
            print(f"  dropdown -> {entry['dropdown']['option']!r}: {entry['dropdown']['after']['status']}  "
                  f"(figures changed: {entry['dropdown']['figures_changed']})")
    if nb.stderr_seen:
        print(f"  harmless stderr ({len(nb.stderr_seen)} messages), first: {nb.stderr_seen[0][:200]!r}")
    if console_errors:
        print(f"  browser console errors (not widget failures): {console_errors[:3]}")


# --- the sandbox: real mouse clicks on the plot ------------------------------------------------------------------
# Pixel position of a data point (x, y) of a plotly figure: its plot area (the `.nsewdrag` rectangle) plus the axes'
# linear-to-pixel maps, as plotly.js itself computes them.
DATA_TO_PAGE_JS = """(gd, xy) => {
  const fl = gd._fullLayout, r = gd.querySelector('.nsewdrag').getBoundingClientRect();
  return {x: r.left + fl.xaxis.l2p(xy[0]), y: r.top + fl.yaxis.l2p(xy[1])};
}"""
SANDBOX = "06_sandbox"


def _sandbox_clicks(nb: Notebook, dash, snap: dict) -> list:
    """Two real mouse clicks on empty spots of the sandbox's data plot each add a bead: the read-out's bead count
    goes up, the samples move, the numbers change; a third click on the new bead removes it. Screenshot after the
    second click: 06_sandbox-clicks.png (the README's picture). Runs inside test_dashboard_in_browser (one
    notebook run: the suite's time budget)."""
    clicks = []
    plot = dash.locator(".js-plotly-plot").first  # the data plot (the first figure)
    plot.scroll_into_view_if_needed()
    for where, want in [((2.6, 2.6), +1), ((-2.6, 2.8), +1), ((2.6, 2.6), -1)]:
        before = snap
        pos = plot.evaluate(DATA_TO_PAGE_JS, list(where))
        nb.page.mouse.move(pos["x"], pos["y"])
        time.sleep(0.3)  # let plotly register the hover: a click reports the hovered point
        nb.page.mouse.click(pos["x"], pos["y"])
        snap = nb.wait_changed(dash, before)
        nb.check_errors(f"after a click at {where}")
        assert snap is not None, f"a click at {where} changed nothing: {_brief(before)}"
        _check_legends(SANDBOX, snap, f"after a click at {where}")
        n0, n1 = before["numbers"].get("n_beads"), snap["numbers"].get("n_beads")
        assert n1 == n0 + want, f"click at {where}: beads {n0} -> {n1}, expected {want:+d}"
        changed = _numbers_changed(before, snap)
        assert "kl_samples" in changed and "mean_along_e" in changed, changed
        figs = _plots_changed(before, snap)
        assert 0 in figs, "the samples did not move"
        assert not snap["status"].lstrip().startswith("⚠"), snap["status"]
        clicks.append({"at": where, "beads": [n0, n1], "numbers_changed": changed, "figures_changed": figs})
        if len(clicks) == 2:  # two beads added: the picture for the README
            time.sleep(0.5)
            dash.screenshot(path=str(ARTIFACTS / f"{SANDBOX}-clicks.png"))
    print(f"\n[{SANDBOX}] clicks: {clicks}")
    return clicks
