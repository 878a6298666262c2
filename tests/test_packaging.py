"""pyproject.toml, environment.yml and binder/ must list the same packages; the core imports no Jupyter code."""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip().strip('"'), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject():
    return {_name(d) for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}


def _conda(path):
    env = yaml.safe_load(path.read_text())
    pips = [d for d in env["dependencies"] if isinstance(d, dict)][0]["pip"]
    return {_name(p) for p in pips if not p.startswith("-")}


def test_environment_yml_matches_pyproject():
    assert _conda(ROOT / "environment.yml") == _pyproject()


def test_binder_matches_pyproject_and_uses_cpu_torch():
    assert _conda(ROOT / "binder" / "environment.yml") == _pyproject()
    assert "download.pytorch.org/whl/cpu" in (ROOT / "binder" / "environment.yml").read_text()
    assert (ROOT / "binder" / "postBuild").stat().st_mode & 0o111


def test_ci_calls_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci


def test_core_import_needs_no_jupyter():
    code = ("import sys, diffviz, diffviz.samplers, diffviz.theory, diffviz.targets; "
            "bad = [m for m in ('plotly', 'ipywidgets', 'IPython', 'jupyter_client', 'papermill') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
