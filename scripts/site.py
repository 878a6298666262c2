#!/usr/bin/env python
"""The course site: the executed notebooks and docs/ as one static site, built offline (what `make site` runs).

    python scripts/site.py                                  # results/NN_*.ipynb + docs/ -> site/
    python scripts/site.py results/03_schedules.ipynb ... --out site --repo me/diffviz

A Sphinx site (MyST-NB, sphinx-book-theme) in four steps:
1. check: every executed notebook (`make notebooks` / `diffviz run`, FAST=True) is free of error outputs and of
   anything written to stderr (a Python warning, a traceback): the build stops and names the notebook and cell;
2. stage: a source folder (build/site-src) with scripts/site_template/ (conf.py, the landing page, the API page),
   docs/*.md and docs/img/, and the notebooks made static: plotly figures as HTML drawn by one local plotly.js,
   each dashboard as the snapshot it carries plus a line on running it live, the bookkeeping and Colab-install
   cells removed, every workshop solution folded under "Show solution";
3. build: `sphinx-build -W --keep-going`: a warning (a broken link or anchor, a docstring Sphinx cannot read, a
   notebook missing from the table of contents) fails the build; nothing is executed again;
4. assets and a last check: plotly.js and MathJax 2 (from the installed plotly and jupyter-server-mathjax) are
   copied to <out>/_static, and no page may load a script, stylesheet or image from another host.
The folder <out> is self-contained: publish it on any static host (GitHub Pages: push it to the gh-pages branch,
or upload it with the actions/upload-pages-artifact action), or open <out>/index.html from disk.
"""
from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TEMPLATE = HERE / "site_template"
DOCS = ROOT / "docs"
STATIC = "_static"
SOLUTION_TAG = "solution"
REMOVE_TAGS = ("remove-cell", "injected-parameters", "colab-install")
DASHBOARD_NOTE_CLASS = "diffviz-site-live-note"
LIVE_NOTE = (f"<p class='{DASHBOARD_NOTE_CLASS}'><strong>This dashboard needs a running kernel</strong>: the picture "
             "shows its first state. To move its controls, open this notebook live with the launch button (the "
             "rocket at the top of the page: Binder or Colab), or run <code>make lab</code> on your machine.</p>")


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


SLIDES = _load("diffviz_slides_script", HERE / "slides.py")  # static outputs and the remote-reference check
COLAB = _load("diffviz_colab_script", HERE / "add_colab_cell.py")  # the repository the launch buttons open


class SiteError(RuntimeError):
    """The site cannot be built as asked (an execution error, a warning, a remote reference)."""


# --- 1. check ----------------------------------------------------------------------------------------------------
def execution_problems(nb, name: str) -> list[str]:
    """Error outputs and stderr text of an executed notebook, one line each (empty: clean)."""
    problems = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            kind = out.get("output_type")
            if kind == "error":
                problems.append(f"{name}, cell {i}: {out.get('ename')}: {out.get('evalue')}")
            elif kind == "stream" and out.get("name") == "stderr":
                text = "".join(out.get("text", "")).strip().splitlines()
                problems.append(f"{name}, cell {i}: stderr: {text[0][:160] if text else ''}")
    return problems


# --- 2. stage ----------------------------------------------------------------------------------------------------
def site_notebook(nb):
    """A copy of an executed notebook as the site shows it (see the module docstring, step 2)."""
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if not set(c.metadata.get("tags", [])) & set(REMOVE_TAGS)]
    nb = SLIDES.static_outputs(nb)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = list(cell.metadata.get("tags", []))
        if SOLUTION_TAG in tags:
            cell.metadata["tags"] = tags + ["hide-input"]
            cell.metadata["mystnb"] = {"code_prompt_show": "Show solution", "code_prompt_hide": "Hide solution"}
        for out in cell.get("outputs", []):
            html = (out.get("data") or {}).get("text/html")
            if html and SLIDES.DASHBOARD_CLASS in html:
                out["data"]["text/html"] = html + LIVE_NOTE
    nb.metadata.pop("papermill", None)
    return nb


def stage(executed: list[Path], src: Path, *, repository: str, branch: str) -> list[str]:
    """Fill the source folder `src`; returns the staged notebooks' names. Raises SiteError on a dirty execution."""
    import nbformat

    notebooks = [(Path(p), nbformat.read(p, as_version=4)) for p in executed]
    problems = [line for path, nb in notebooks for line in execution_problems(nb, path.name)]
    if problems:
        raise SiteError("the executed notebooks hold errors or stderr output (fix them, re-run `make notebooks`):\n  "
                        + "\n  ".join(problems))
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(TEMPLATE, src, ignore=shutil.ignore_patterns("__pycache__"))
    index = src / "index.md"
    index.write_text(index.read_text(encoding="utf-8").replace("@REPOSITORY@", repository).replace("@BRANCH@", branch),
                     encoding="utf-8")
    (src / "docs").mkdir()
    for page in sorted(DOCS.glob("*.md")):
        (src / "docs" / page.name).write_text(page_for_site(page.read_text(encoding="utf-8"), repository, branch),
                                                encoding="utf-8")
    if (DOCS / "img").is_dir():
        shutil.copytree(DOCS / "img", src / "docs" / "img")
    (src / "notebooks").mkdir()
    names = []
    for path, nb in notebooks:
        nbformat.write(site_notebook(nb), src / "notebooks" / f"{path.stem}.ipynb")
        names.append(path.stem)
    return names


_HTML_ANCHOR = re.compile(r'^<a id="([A-Za-z0-9_-]+)"></a>\s*$', re.M)
_REPO_LINK = re.compile(r"\]\((\.\./(?!docs/|notebooks/[0-9][0-9]_[a-z_]+\.(?:ipynb|py)\b)[^)#\s]+)")


def page_for_site(text: str, repository: str, branch: str = "main") -> str:
    """A docs/ page as the site reads it: the HTML anchors that GitHub uses (`<a id="s5-2"></a>`) become MyST
    targets (`(s5-2)=`) so that links like theory.md#s5-2 resolve, and links to repository files outside the site
    (../README.md, ../LICENSE, ../diffviz/...) point to the repository on GitHub."""
    text = _HTML_ANCHOR.sub(r"(\1)=", text)
    return _REPO_LINK.sub(lambda m: f"](https://github.com/{repository}/blob/{branch}/{m.group(1)[3:]}", text)


# --- 3. build, 4. assets ---------------------------------------------------------------------------------------------
def remote_pages(out: Path) -> dict[str, list[str]]:
    """Pages that load a script, stylesheet or image from another host (hyperlinks are fine): should be empty."""
    found = {}
    for page in sorted(out.rglob("*.html")):
        bad = SLIDES.remote_references(page.read_text(encoding="utf-8", errors="replace"))
        if bad:
            found[str(page.relative_to(out))] = bad
    return found


def build(executed, out, *, src=None, repository: str | None = None, branch: str = "main", jobs: int = 1,
          quiet: bool = True) -> Path:
    """Build the site from executed notebooks into `out`; returns out/index.html. Raises SiteError."""
    repository = repository or COLAB.DEFAULT_REPO
    executed = [Path(p) for p in executed]
    if not executed:
        raise SiteError("no executed notebook given (run `make notebooks`, or pass results/NN_topic.ipynb files)")
    out = Path(out)
    src = Path(src) if src else ROOT / "build" / "site-src"
    stage(executed, src, repository=repository, branch=branch)
    env = dict(os.environ, DIFFVIZ_SITE_REPOSITORY=repository, DIFFVIZ_SITE_BRANCH=branch,
               DIFFVIZ_SITE_PACKAGE_ROOT=str(ROOT), OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore::DeprecationWarning")
    # Sphinx writes into a work folder beside the sources (MyST-NB puts its jupyter_execute/ beside that folder);
    # `out` is replaced only by a complete, checked site, so a failed build leaves the last good one in place
    html = src.parent / "site-html"
    if html.exists():
        shutil.rmtree(html)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-E", "-a", "-j", str(jobs),
           "-d", str(src.parent / "site-doctrees"), str(src), str(html)]
    if quiet:
        cmd.insert(3, "-q")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SiteError(f"sphinx-build failed (exit {proc.returncode}): a warning is an error here.\n"
                        f"{proc.stdout[-4000:]}{proc.stderr[-8000:]}")
    SLIDES.copy_plotly_and_mathjax(html / STATIC)  # what conf.py's html_js_files and mathjax_path name
    bad = remote_pages(html)
    if bad:
        raise SiteError(f"pages load files from another host (the site must work offline): {bad}")
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(html), str(out))
    return out / "index.html"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("notebooks", nargs="*", help="executed notebooks (default: RESULTS/NN_*.ipynb)")
    p.add_argument("--results", default=str(ROOT / "results"), help="folder of executed notebooks (results)")
    p.add_argument("--out", default=str(ROOT / "site"), help="folder of the built site (site)")
    p.add_argument("--repo", default=os.environ.get("DIFFVIZ_REPOSITORY", COLAB.DEFAULT_REPO),
                   help="GitHub owner/name the launch buttons open (default: $DIFFVIZ_REPOSITORY or %(default)s)")
    p.add_argument("--branch", default="main", help="branch the launch buttons open (main)")
    p.add_argument("-j", "--jobs", type=int, default=1, help="Sphinx processes (1)")
    args = p.parse_args(argv)
    paths = [Path(n) for n in args.notebooks] or sorted(Path(args.results).glob("[0-9][0-9]_*.ipynb"))
    t0 = time.perf_counter()
    try:
        index = build(paths, args.out, repository=args.repo, branch=args.branch, jobs=args.jobs, quiet=False)
    except SiteError as e:
        print(f"site: {e}", file=sys.stderr)
        return 1
    print(f"site: {len(paths)} notebooks and docs/ -> {index} in {time.perf_counter() - t0:.0f} s "
          f"(open it in a browser, or publish the folder {args.out}/ on a static host)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
