"""Binder and Colab readiness: the files in binder/ parse and agree with pyproject.toml, a fresh virtual
environment built from them (plus `--no-deps -e .`, as postBuild does) warms the model cache and executes every
notebook, and every notebook starts with the Colab install cell (scripts/add_colab_cell.py), a no-op here.

The slow test builds that environment with `uv venv` + `uv pip install` in a temporary folder:
- packages: the pip list of binder/environment.yml, verbatim;
- torch: the build already installed here (a `torch==<version>` constraint; `--find-links /opt/wheels` when that
  folder exists, as scripts/setup.sh does), and the environment file's `--extra-index-url` line is left out, so
  no CPU/CUDA wheel is downloaded; Binder itself gets the CPU build through that line (checked below);
- then, through binder/start (OMP_NUM_THREADS=1): `python -m diffviz.warmup` (what postBuild runs), a check that
  papermill's kernel is the fresh environment's Python, and every notebook run with papermill with its default
  parameters (FAST=True), all within about 2-4 minutes on two shared cores; the notebooks must add no model
  to the warmed cache (the warm-up covers every model they train).
If uv is missing, or the packages cannot be fetched (no network and nothing cached), the test skips with a
loud message; DIFFVIZ_REQUIRE_BINDER_ENV=1 turns those skips into failures.
DIFFVIZ_BINDER_NOTEBOOKS=00_tour,03_schedules restricts the notebooks (development only).
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
NOTEBOOKS = ROOT / "notebooks"
INSTALL_S = 1200
NOTEBOOK_S = 600
NETWORK_ERRORS = ("network", "connect", "dns", "timed out", "timeout", "resolve", "offline", "unreachable",
                  "Temporary failure", "Name or service not known")


# --- helpers ---------------------------------------------------------------------------------------------------
def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def binder_env() -> dict:
    return yaml.safe_load((BINDER / "environment.yml").read_text(encoding="utf-8"))


def binder_pip() -> tuple[list[str], list[str]]:
    """(pip options such as --extra-index-url, requirements) of binder/environment.yml."""
    pips = [d for d in binder_env()["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pips) == 1, "binder/environment.yml must hold exactly one `pip:` list"
    options = [p for p in pips[0]["pip"] if str(p).startswith("-")]
    return options, [str(p) for p in pips[0]["pip"] if not str(p).startswith("-")]


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower().replace("_", "-")


def _loud(config, message: str) -> None:
    banner = "!" * 100
    capman = config.pluginmanager.getplugin("capturemanager")
    reporter = config.pluginmanager.getplugin("terminalreporter")
    with capman.global_and_fixture_disabled():
        reporter.write_line(f"\n{banner}\n!! {message}\n{banner}", red=True, bold=True)


def _skip_or_fail(config, message: str):
    _loud(config, message)
    if os.environ.get("DIFFVIZ_REQUIRE_BINDER_ENV", "") not in ("", "0"):
        pytest.fail(message + " (DIFFVIZ_REQUIRE_BINDER_ENV is set)")
    pytest.skip(message)


def notebook_sources() -> list[Path]:
    found = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
    only = [n.strip() for n in os.environ.get("DIFFVIZ_BINDER_NOTEBOOKS", "").split(",") if n.strip()]
    return [p for p in found if p.stem in only] if only else found


# --- the binder files (fast) -------------------------------------------------------------------------------------
def test_environment_yml_pip_list_equals_pyproject_dependencies_with_versions():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    _, reqs = binder_pip()
    assert sorted(map(_norm, reqs)) == sorted(map(_norm, deps)), (
        "binder/environment.yml's pip list must repeat pyproject.toml's dependencies, version bounds included")


def test_environment_yml_python_pip_and_cpu_torch():
    env = binder_env()
    assert env.get("name") and "conda-forge" in env.get("channels", [])
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert "pip" in conda
    pythons = [d for d in conda if re.fullmatch(r"python\s*=+\s*3\.\d+", d)]
    assert pythons, "pin a Python version (python=3.X) in binder/environment.yml"
    minor = int(pythons[0].split(".")[1])
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert minor >= int(re.search(r">=\s*3\.(\d+)", required).group(1)), f"{pythons[0]} vs requires-python {required}"
    options, reqs = binder_pip()
    assert any(o.split()[0] == "--extra-index-url" and o.rstrip("/").endswith("download.pytorch.org/whl/cpu")
               for o in options), "Binder must install the CPU build of torch (--extra-index-url .../whl/cpu)"
    assert "torch" in {_name(r) for r in reqs}


def test_binder_scripts():
    for script in ("postBuild", "start"):
        path = BINDER / script
        text = path.read_text(encoding="utf-8")
        assert path.stat().st_mode & 0o111, f"binder/{script} must be executable"
        assert text.startswith("#!/usr/bin/env bash") or text.startswith("#!/bin/bash"), f"binder/{script}: shebang"
        check = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert check.returncode == 0, f"binder/{script} is not valid bash: {check.stderr}"
    post = (BINDER / "postBuild").read_text()
    assert re.search(r"pip install[^\n]*--no-deps[^\n]*-e \.", post), "postBuild must install diffviz itself"
    assert "python -m diffviz.warmup" in post
    start = (BINDER / "start").read_text()
    assert "OMP_NUM_THREADS=1" in start and "DIFFVIZ_CACHE_DIR" in start
    assert start.rstrip().splitlines()[-1].strip() == 'exec "$@"', "binder/start must end by exec'ing its arguments"


def test_warmup_covers_every_training_notebook():
    """Each notebook that trains a score network (train_score / train_models / train_digits) has a warm-up job."""
    from diffviz import warmup

    training = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.py")
                      if re.search(r"\btrain_(score|models|digits)\(", p.read_text(encoding="utf-8")))
    missing = [n for n in training if n not in warmup.JOBS]
    assert not missing, f"notebooks {missing} train models but diffviz/warmup.py has no job for them"


def test_warmup_imports_every_module(tmp_path):
    env = {**os.environ, "DIFFVIZ_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "diffviz.warmup", "--skip-models"], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "imported every module" in out.stdout and "failed" not in out.stdout, out.stdout


# --- the Colab cell (fast) -------------------------------------------------------------------------------------
def _colab():
    spec = importlib.util.spec_from_file_location("add_colab_cell", ROOT / "scripts" / "add_colab_cell.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_notebook_starts_with_the_colab_cell():
    import jupytext
    import nbformat

    colab = _colab()
    sources = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
    assert sources
    for src in sources:
        text = src.read_text(encoding="utf-8")
        repo = re.search(r"git\+https://github\.com/([\w.-]+/[\w.-]+)\"", text)
        assert repo, f"{src.name} has no Colab cell: run `python scripts/add_colab_cell.py` and `jupytext --to ipynb`"
        assert colab.with_colab_cell(text, repo.group(1)) == text, (
            f"{src.name}: the Colab cell is outdated or misplaced: run `python scripts/add_colab_cell.py`")
        cells = jupytext.read(src).cells
        assert cells[0].cell_type == "markdown" and cells[0].source.lstrip().startswith("# "), f"{src.name}: title first"
        assert cells[1].cell_type == "code" and colab.TAG in cells[1].metadata.get("tags", []), src.name
        ipynb = src.with_suffix(".ipynb")
        if ipynb.exists():  # the paired notebook must carry the same cell
            paired = nbformat.read(ipynb, as_version=4).cells
            assert (paired[1].cell_type == "code" and paired[1].source == cells[1].source
                    and colab.TAG in paired[1].metadata.get("tags", [])), (
                f"{ipynb.name} lacks the Colab cell: .venv/bin/jupytext --to ipynb notebooks/{src.name}")


def _run_cell(prelude: str) -> subprocess.CompletedProcess:
    code = _colab().cell_text().split("\n", 1)[1]  # the cell without its "# %%" line
    prog = (prelude + "\nns = {'get_ipython': globals().get('get_ipython')} if 'get_ipython' in globals() else {}\n"
            f"exec(compile({code!r}, 'colab-cell', 'exec'), ns)\n"
            "import json, sys\nprint(json.dumps({'colab': 'google.colab' in sys.modules, "
            "'calls': globals().get('CALLS', [])}))")
    return subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_colab_cell_is_a_no_op_where_diffviz_is_installed():
    # no get_ipython here: were the install branch taken, the cell would raise NameError
    out = _run_cell("")
    assert out.returncode == 0 and out.stderr == "", out.stdout + out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"colab": False, "calls": []}
    assert out.stdout.strip().count("\n") == 0, f"the cell printed something: {out.stdout!r}"


def test_colab_cell_installs_diffviz_where_it_is_missing():
    prelude = ("import sys\nsys.modules['diffviz'] = None  # import diffviz -> ImportError\nCALLS = []\n"
               "class _Shell:\n    def run_line_magic(self, name, line):\n        CALLS.append([name, line])\n"
               "def get_ipython():\n    return _Shell()")
    out = _run_cell(prelude)
    assert out.returncode == 0, out.stdout + out.stderr
    calls = json.loads(out.stdout.strip().splitlines()[-1])["calls"]
    assert calls == [["pip", 'install -q "diffviz @ git+https://github.com/OWNER/diffviz"']], calls


# --- a fresh environment (slow) ----------------------------------------------------------------------------------
def _run(cmd, *, env=None, timeout=NOTEBOOK_S, cwd=ROOT):
    return subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def _torch_constraint() -> str:
    import torch

    return "torch==" + torch.__version__.split("+")[0]


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory, pytestconfig):
    """A virtual environment built from binder/environment.yml plus `--no-deps -e .`: its bin folder."""
    uv = shutil.which("uv")
    if not uv:
        _skip_or_fail(pytestconfig, "BINDER ENVIRONMENT TEST SKIPPED: `uv` is not installed (pip install uv); the "
                                    "environment Binder builds was NOT checked")
    tmp = tmp_path_factory.mktemp("binder-env")
    venv = tmp / "venv"
    t = time.monotonic()
    made = _run([uv, "venv", "-q", "-p", sys.executable, venv], timeout=300)
    assert made.returncode == 0, made.stdout + made.stderr
    _, reqs = binder_pip()
    (tmp / "requirements.txt").write_text("\n".join(reqs) + "\n")
    (tmp / "constraints.txt").write_text(_torch_constraint() + "\n")
    base = [uv, "pip", "install", "-q", "-p", venv / "bin" / "python", "-c", tmp / "constraints.txt"]
    if Path("/opt/wheels").is_dir():
        base += ["--find-links", "/opt/wheels"]
    for extra in ([], ["--offline"]):  # offline: only what uv has cached, when the network is unreachable
        out = _run(base + extra + ["-r", tmp / "requirements.txt"], timeout=INSTALL_S)
        if out.returncode == 0:
            break
    if out.returncode != 0:
        text = out.stdout + out.stderr
        if any(w.lower() in text.lower() for w in NETWORK_ERRORS):
            _skip_or_fail(pytestconfig, "BINDER ENVIRONMENT TEST SKIPPED: the packages of binder/environment.yml "
                                        f"could not be fetched (network?):\n{text[-1500:]}")
        pytest.fail(f"installing binder/environment.yml's packages failed:\n{text[-4000:]}")
    own = _run([uv, "pip", "install", "-q", "-p", venv / "bin" / "python", "--no-deps", "-e", ROOT], timeout=600)
    assert own.returncode == 0, own.stdout + own.stderr
    print(f"\n[binder env] built {venv} in {time.monotonic() - t:.1f} s")
    try:
        yield venv / "bin"
    finally:
        shutil.rmtree(venv, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.notebook
def test_fresh_binder_env_warms_up_and_runs_every_notebook(fresh_env, tmp_path):
    bin_ = fresh_env
    py = bin_ / "python"
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "JUPYTER_PATH", "PYTHONHOME", "DIFFVIZ_DEVICE")}
    env.update(PATH=str(bin_) + os.pathsep + env.get("PATH", ""), HOME=str(tmp_path / "home"),
               DIFFVIZ_CACHE_DIR=str(tmp_path / "cache"), JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-rt"),
               IPYTHONDIR=str(tmp_path / "ipython"), PYTHONUNBUFFERED="1")
    (tmp_path / "home").mkdir()
    start = ["bash", BINDER / "start"]  # what Binder runs every command through
    timings = {}

    # the environment: its own Python, diffviz from this checkout, the frontend extensions (dashboards, live slides)
    info = _run(start + [py, "-c", "import sys, json, torch, diffviz; print(json.dumps([sys.prefix, "
                         "diffviz.__file__, torch.__version__, torch.get_num_threads()]))"], env=env, timeout=300)
    assert info.returncode == 0, info.stdout + info.stderr
    prefix, diffviz_file, torch_version, threads = json.loads(info.stdout.strip().splitlines()[-1])
    assert Path(prefix).resolve() == bin_.parent.resolve()
    assert Path(diffviz_file).resolve().is_relative_to(ROOT.resolve())
    assert threads == 1, "binder/start must give the kernel one torch thread"
    ext = _run(start + [bin_ / "jupyter", "labextension", "list"], env=env, timeout=300)
    listing = ext.stdout + ext.stderr
    for needed in ("@jupyter-widgets/jupyterlab-manager", "jupyterlab-plotly", "anywidget", "jupyterlab-rise"):
        assert needed in listing, f"JupyterLab extension {needed} missing in the fresh environment:\n{listing}"

    # postBuild's warm-up
    t = time.monotonic()
    warm = _run(start + [py, "-m", "diffviz.warmup"], env=env, timeout=NOTEBOOK_S)
    timings["warmup"] = time.monotonic() - t
    assert warm.returncode == 0, warm.stdout + warm.stderr
    print(f"[binder env] warm-up ({timings['warmup']:.0f} s):\n{warm.stdout}")
    cache = Path(env["DIFFVIZ_CACHE_DIR"])
    warmed = sorted(p.name for p in cache.glob("*.pt"))

    # papermill's kernel is this environment's Python
    import nbformat

    probe = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; print(sys.executable)")])
    probe.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(probe, tmp_path / "probe.ipynb")
    ran = _run(start + [bin_ / "papermill", "-k", "python3", "--no-progress-bar", tmp_path / "probe.ipynb",
                        tmp_path / "probe.out.ipynb"], env=env, timeout=300)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    out = nbformat.read(tmp_path / "probe.out.ipynb", as_version=4).cells[0].outputs[0]["text"].strip()
    assert Path(out).parent.resolve() == bin_.resolve(), f"the kernel ran {out}, not the fresh environment's Python"

    # every notebook, default parameters (FAST=True), as a Binder user would run it
    # (side by side, conftest.PARALLEL at a time: each kernel uses one thread)
    from conftest import run_parallel

    jobs = {}
    for src in notebook_sources():
        ipynb, executed = tmp_path / f"{src.stem}.ipynb", tmp_path / f"{src.stem}.executed.ipynb"
        conv = _run([bin_ / "jupytext", "--to", "ipynb", "-o", ipynb, src], env=env, timeout=300)
        assert conv.returncode == 0, conv.stdout + conv.stderr
        jobs[src.stem] = (start + [bin_ / "papermill", "-k", "python3", "--cwd", NOTEBOOKS, "--no-progress-bar",
                                   ipynb, executed], dict(env=env, cwd=ROOT, timeout=NOTEBOOK_S, capture_output=True, text=True))
    t = time.monotonic()
    failures = []
    for stem, res in run_parallel(jobs).items():
        if isinstance(res, Exception):
            failures.append(f"{stem}: {res!r}")
        elif res.returncode != 0:
            failures.append(f"{stem}: papermill exit {res.returncode}\n{(res.stdout + res.stderr)[-3000:]}")
    timings["all notebooks"] = time.monotonic() - t
    print("[binder env] seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    assert not failures, "notebooks failed in the fresh Binder environment:\n" + "\n\n".join(failures)
    added = sorted(set(p.name for p in cache.glob("*.pt")) - set(warmed))
    assert not added, (f"the notebooks trained {len(added)} model(s) the warm-up had not cached: make "
                       f"diffviz/warmup.py's calls match the notebooks' (FAST=True) training calls")
