"""Sphinx configuration of the diffviz course site (assembled and built by scripts/site.py; `make site`).

The source folder is a staging copy that scripts/site.py fills: this file, index.md and api.md, the docs/
pages, and the executed notebooks (outputs made static: plotly figures as HTML drawn by one local plotly.js,
dashboards as their snapshot). Nothing is executed here and nothing is fetched from another host: plotly.js
and MathJax are copied into _static by scripts/site.py after the build.
"""
import os
import sys

project = "diffviz"
author = "the diffviz authors"
copyright = "the diffviz authors, MIT licence"

# scripts/site.py passes the repository ("owner/name") and the branch the launch buttons open.
REPOSITORY = os.environ.get("DIFFVIZ_SITE_REPOSITORY", "OWNER/diffviz")
BRANCH = os.environ.get("DIFFVIZ_SITE_BRANCH", "main")
sys.path.insert(0, os.environ.get("DIFFVIZ_SITE_PACKAGE_ROOT", ""))  # the diffviz being documented

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.mathjax"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
suppress_warnings = ["misc.highlighting_failure"]

# --- MyST and notebooks ----------------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "html_image"]
myst_heading_anchors = 3
myst_dmath_double_inline = True     # $$...$$ display math inside a paragraph, as JupyterLab renders it
nb_execution_mode = "off"            # scripts/site.py hands over notebooks executed once (papermill, FAST=True)
nb_output_stderr = "warn"            # a stray stderr output fails the build (-W); progress text is removed before
nb_merge_streams = True
nb_number_source_lines = False

# --- MathJax 2, local copy (jupyter-server-mathjax), no CDN ----------------------------------------------------
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
mathjax2_config = {
    "tex2jax": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]], "processEscapes": True,
                "processEnvironments": True,
                # MyST-NB wraps a notebook in `mathjax_ignore` (no $ in outputs taken for math); Sphinx's own math
                # elements carry the class `math` and are typeset
                "ignoreClass": "tex2jax_ignore|mathjax_ignore|document",
                "processClass": "tex2jax_process|mathjax_process|math|output_area"},
    # the STIX-Web fonts of the local copy (no TeX web fonts there); MathJax's font-detection face points at
    # about:blank, which Chrome refuses (a console error): a local() source that matches nothing does the same job
    "HTML-CSS": {"availableFonts": [], "preferredFont": None, "webFont": "STIX-Web", "imageFont": None,
                 "styles": {"@font-face": {"font-family": "MathJax_Blank", "src": "local('MathJax_Blank_none')"}}},
    # The MathML output's styles name six TeX web fonts (\\mathbb, \\mathcal, ...) that the local copy lacks:
    # Chrome asks for them (a 404 and a console error); a local() source that matches nothing instead.
    "NativeMML": {"styles": {f"@font-face /*{k}*/": {"font-family": family, "src": "local('MathJax_none')"}
                             for k, family in enumerate(["Caligraphic", "Caligraphic", "AMS", "Script", "Fraktur",
                                                         "Fraktur"], start=1) for family in [f"MathJax_{family}-WEB"]}},
    "messageStyle": "none",
}
mathjax3_config = None

# --- autodoc (api.md) -------------------------------------------------------------------------------------------
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_mock_imports = []

# --- HTML ------------------------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "diffviz"
html_favicon = "_static/favicon.svg"
html_static_path = ["_static"]
html_css_files = ["diffviz.css"]
html_js_files = ["plotly.min.js"]   # one copy for every figure and dashboard snapshot of the site
html_last_updated_fmt = None
html_context = {"default_mode": "light"}  # pydata-sphinx-theme: no "invalid theme mode" console error on a first visit
html_show_sourcelink = False
html_copy_source = True
html_theme_options = {
    "repository_url": f"https://github.com/{REPOSITORY}",
    "repository_branch": BRANCH,
    "path_to_docs": "",
    "use_repository_button": True,
    "use_download_button": True,
    "launch_buttons": {"binderhub_url": "https://mybinder.org", "colab_url": "https://colab.research.google.com",
                       "notebook_interface": "jupyterlab"},
    "show_toc_level": 2,
    "home_page_in_toc": True,
}


# --- docstrings: diffviz writes them as plain text (as help() shows them), not reStructuredText -------------------
import re  # noqa: E402

_CODE = re.compile(r"`([^`]+)`")
_SPECIAL = re.compile(r"([\\*|_<>\[\]])")


def _escape(text: str) -> str:
    """Plain text as reStructuredText: `name` becomes inline code, every other markup character is literal."""
    parts = _CODE.split(text.replace("``", "`"))
    return "".join(_SPECIAL.sub(r"\\\1", p) if i % 2 == 0 else f"\\ ``{p}``\\ " for i, p in enumerate(parts))


def plain_docstring(app, what, name, obj, options, lines):
    """First paragraph (the one-line statement of the math) as a paragraph; the rest preformatted, as written."""
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return
    k = next((i for i, line in enumerate(lines) if not line.strip()), len(lines))
    head = _escape(" ".join(line.strip() for line in lines[:k]))
    rest = lines[k + 1:]
    while rest and not rest[0].strip():
        rest.pop(0)
    lines[:] = [head, ""] + (["::", ""] + ["    " + line for line in rest] + [""] if rest else [])


def setup(app):
    app.connect("autodoc-process-docstring", plain_docstring)
