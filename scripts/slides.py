#!/usr/bin/env python
"""Static reveal.js slides of executed notebooks, readable without network (what `make slides` runs).

    python scripts/slides.py                          # every results/NN_*.ipynb -> slides/NN_*.slides.html
    python scripts/slides.py results/03_schedules.ipynb --out slides [--no-input]

Each deck is `jupyter nbconvert --to slides` of an *executed* notebook (`make notebooks` / `diffviz run` write
them to results/), with:
- the cells tagged `remove-cell` (the bookkeeping `figures` cell) and papermill's `injected-parameters` cell
  removed; `remove-input` / `remove-output` tags hide a cell's code / outputs;
- the notebook's slide metadata (`slideshow.slide_type`: slide, subslide, fragment, skip, notes, "-");
- plotly figures (`application/vnd.plotly.v1+json` outputs, which nbconvert does not draw) turned into HTML
  drawn by a local plotly.js; a dashboard (an ipywidget: no kernel in a static deck) shows the static
  `text/html` snapshot of its display bundle, or else a line saying how to run it live;
- every script and stylesheet served from `<out>/_static/` (reveal.js and require.js from
  scripts/slides_assets/, plotly.js from the installed `plotly`, MathJax 2 from `jupyter-server-mathjax`):
  no CDN, so the decks open from file:// in a lecture hall without internet.
The folder `<out>` is self-contained: copy it whole (decks + _static/).
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ASSETS = HERE / "slides_assets"
TEMPLATES = HERE / "slides_template"
TEMPLATE = "diffviz_reveal"
STATIC = "_static"

REMOVE_CELL_TAGS = ("remove-cell", "injected-parameters")
REMOVE_INPUT_TAGS = ("remove-input",)
REMOVE_OUTPUT_TAGS = ("remove-output",)
PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
DASHBOARD_CLASS = "diffviz-dashboard-static"  # wraps what a dashboard's output shows in a deck
LIVE_NOTE = ("<p class='diffviz-static-note'><em>Interactive dashboard: it runs live in JupyterLab "
             "(open the notebook, run all cells; Alt+R starts the live slideshow).</em></p>")
# Remote references a deck must not contain (hyperlinks in the text, <a href>, are fine).
REMOTE_REF = re.compile(r"""(?:<script[^>]*\bsrc|<link[^>]*\bhref|<img[^>]*\bsrc|<iframe[^>]*\bsrc)\s*=\s*["']?(?:https?:)?//"""
                        r"""|@import\s+(?:url\()?["']?(?:https?:)?//|\bimport\s[^;\n]*\bfrom\s*["'](?:https?:)?//"""
                        r"""|require\(\s*\[[^\]]*["'](?:https?:)?//""", re.I)


def remote_references(text: str) -> list[str]:
    """Script/stylesheet/image/module references to another host in an HTML text (should be empty)."""
    return [text[max(0, m.start() - 40):m.end() + 80] for m in REMOTE_REF.finditer(text)]


def _plotly_html(fig: dict) -> str:
    import plotly.io as pio

    height = (fig.get("layout") or {}).get("height")
    return pio.to_html(fig, include_plotlyjs=False, full_html=False, validate=False,
                       default_width="100%", default_height=f"{int(height)}px" if height else "450px",
                       config={"displaylogo": False, "responsive": True})


def static_outputs(nb):
    """Outputs a static page can draw: plotly JSON -> HTML, widget views -> their text/html snapshot (or a note)."""
    nb.metadata.pop("widgets", None)  # widget state would pull the widget manager from a CDN; a deck has no kernel
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            data = out.get("data")
            if not data:
                continue
            if PLOTLY_MIME in data:
                fig = data.pop(PLOTLY_MIME)
                if isinstance(fig, str):
                    fig = json.loads(fig)
                data["text/html"] = _plotly_html(fig)
                data.pop("text/plain", None)
            if WIDGET_MIME in data:
                data.pop(WIDGET_MIME)
                snapshot = data.get("text/html") or LIVE_NOTE
                data["text/html"] = f'<div class="{DASHBOARD_CLASS}">{snapshot}</div>'
                data.pop("text/plain", None)  # "VBox(children=...)" says nothing to a student
            if "text/html" in data:
                data["text/html"] = localize_plotly(data["text/html"])
    return nb


_PLOTLY_CDN = re.compile(r"<script[^>]*\bsrc=[\"'](?:https?:)?//cdn\.plot\.ly/[^\"']*[\"'][^>]*>\s*</script>", re.I)


def localize_plotly(text: str) -> str:
    """HTML with its own plotly.js (a CDN <script src>, or the whole bundle inlined by plotly's to_html) dropped:
    the deck loads one local copy in its <head>."""
    text = _PLOTLY_CDN.sub("", text)
    start = 0
    while True:
        i = text.find("<script", start)
        if i < 0:
            return text
        body = text.find(">", i) + 1
        end = text.find("</script>", body)
        if body <= 0 or end < 0:
            return text
        if re.match(r"\s*/\*\*?\s*\*?\s*plotly\.js v\d", text[body:body + 200]):
            text = text[:i] + text[end + len("</script>"):]
            start = i
        else:
            start = end


def _exporter(no_input: bool = False):
    from nbconvert import SlidesExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    from traitlets.config import Config

    c = Config()
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_cell_tags = set(REMOVE_CELL_TAGS)
    c.TagRemovePreprocessor.remove_input_tags = set(REMOVE_INPUT_TAGS)
    c.TagRemovePreprocessor.remove_all_outputs_tags = set(REMOVE_OUTPUT_TAGS)
    c.SlidesExporter.reveal_url_prefix = f"{STATIC}/reveal.js"
    c.SlidesExporter.reveal_theme = "white"
    c.SlidesExporter.reveal_transition = "none"
    c.SlidesExporter.reveal_number = "c/t"
    c.SlidesExporter.reveal_width = "1280"
    c.SlidesExporter.reveal_height = "800"
    c.HTMLExporter.require_js_url = f"{STATIC}/require.js/require.js"
    c.HTMLExporter.mathjax_url = f"{STATIC}/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
    c.HTMLExporter.jquery_url = ""
    c.HTMLExporter.jupyter_widgets_base_url = ""
    c.TemplateExporter.exclude_input_prompt = True
    c.TemplateExporter.exclude_output_prompt = True
    c.TemplateExporter.exclude_input = no_input
    exporter = SlidesExporter(config=c, template_name=TEMPLATE, extra_template_basedirs=[str(TEMPLATES)])
    exporter.register_preprocessor(TagRemovePreprocessor(config=c), enabled=True)
    return exporter


def copy_plotly_and_mathjax(static: Path) -> None:
    """plotly.min.js (from the installed plotly) and MathJax 2 (from jupyter-server-mathjax) into `static`."""
    import jupyter_server_mathjax
    import plotly

    plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    mathjax = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not plotly_js.is_file() or not (mathjax / "MathJax.js").is_file():
        raise FileNotFoundError(f"plotly.js ({plotly_js}) or MathJax ({mathjax}) missing: reinstall plotly / "
                                "jupyter-server-mathjax")
    static.mkdir(parents=True, exist_ok=True)
    shutil.copytree(mathjax, static / "mathjax", dirs_exist_ok=True, ignore=shutil.ignore_patterns("localization"))
    shutil.copy2(plotly_js, static / "plotly.min.js")


def copy_assets(out: Path) -> Path:
    """Fill out/_static with reveal.js, require.js, plotly.js and MathJax (only what is missing or older)."""
    static = Path(out) / STATIC
    copy_plotly_and_mathjax(static)
    for src, dst in [(ASSETS / "reveal.js", static / "reveal.js"), (ASSETS / "require.js", static / "require.js")]:
        shutil.copytree(src, dst, dirs_exist_ok=True)
    for name in ("LICENSE", "README.md"):
        shutil.copy2(ASSETS / "reveal.js" / "LICENSE" if name == "LICENSE" else ASSETS / name,
                     static / ("reveal.js.LICENSE" if name == "LICENSE" else name))
    return static


def build_deck(executed, out, *, no_input: bool = False) -> Path:
    """Write out/<stem>.slides.html from an executed notebook; returns its path (assets: copy_assets)."""
    import nbformat

    executed, out = Path(executed), Path(out)
    nb = nbformat.read(executed, as_version=4)
    nb = static_outputs(copy.deepcopy(nb))
    body, _ = _exporter(no_input).from_notebook_node(
        nb, resources={"diffviz_static": STATIC, "metadata": {"name": executed.stem}})
    bad = remote_references(body)
    if bad:
        raise RuntimeError(f"{executed.name}: the deck still references another host: {bad[:3]}")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{executed.stem}.slides.html"
    path.write_text(body, encoding="utf-8")
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("notebooks", nargs="*", help="executed notebooks (default: RESULTS/NN_*.ipynb)")
    p.add_argument("--results", default=str(ROOT / "results"), help="folder of executed notebooks (results)")
    p.add_argument("--out", default=str(ROOT / "slides"), help="folder for the decks and _static/ (slides)")
    p.add_argument("--no-input", action="store_true", help="hide all code (outputs and text only)")
    args = p.parse_args(argv)
    paths = [Path(n) for n in args.notebooks] or sorted(Path(args.results).glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        print(f"slides: no executed notebook in {args.results} (run `make notebooks` first)", file=sys.stderr)
        return 1
    out = Path(args.out)
    copy_assets(out)
    for path in paths:
        deck = build_deck(path, out, no_input=args.no_input)
        print(f"slides: {path} -> {deck}")
    print(f"slides: open {out / paths[0].stem}.slides.html in a browser (offline: everything is in {out}/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
