import os

import pytest
import torch

# Two shared cores: one intra-op thread avoids oversubscription (see README, "Performance notes").
torch.set_num_threads(int(os.environ.get("DIFFVIZ_TEST_THREADS", "1")))


@pytest.fixture
def gen():
    """A fresh CPU generator with a fixed seed."""
    g = torch.Generator()
    g.manual_seed(1234)
    return g


NOTEBOOKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "notebooks")


# Notebook executions and other kernels run in subprocesses this many at a time (2 cores, one thread each).
PARALLEL = int(os.environ.get("DIFFVIZ_TEST_PARALLEL", "2"))


def run_parallel(jobs: dict, workers: int = PARALLEL) -> dict:
    """Run {key: (argv, subprocess.run keywords)} `workers` at a time; {key: CompletedProcess or the exception}."""
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    def one(argv, kwargs):
        try:
            return subprocess.run([str(a) for a in argv], **kwargs)
        except Exception as err:  # a timeout, a missing program: reported by the test that reads it
            return err

    with ThreadPoolExecutor(max(1, workers)) as pool:
        futures = {key: pool.submit(one, argv, kwargs) for key, (argv, kwargs) in jobs.items()}
    return {key: f.result() for key, f in futures.items()}


@pytest.fixture(scope="session")
def fast_notebook(tmp_path_factory):
    """Execute notebooks/<name>.ipynb once per session with FAST=True; returns (figures, executed path).

    `fast_notebook.prefetch(*names)` executes the ones not run yet, PARALLEL at a time in subprocesses (the same
    runner and parameters); a notebook whose subprocess failed is left to `fast_notebook(name)`, which runs it
    in-process and raises its real error.
    """
    from diffviz.notebook_run import run_notebook
    from diffviz.record import load_figures

    done = {}
    cache = tmp_path_factory.mktemp("diffviz-cache")
    os.environ.setdefault("DIFFVIZ_CACHE_DIR", str(cache))

    def run(name, **params):
        if name not in done:
            out = tmp_path_factory.mktemp(name)
            figures = run_notebook(os.path.join(NOTEBOOKS, f"{name}.ipynb"), {"FAST": True, **params}, out)
            done[name] = (figures, out / f"{name}.ipynb")
        return done[name]

    def prefetch(*names):
        import sys

        code = ("import sys; from diffviz.notebook_run import run_notebook; "
                "run_notebook(sys.argv[1], {'FAST': True}, sys.argv[2])")
        outs = {name: tmp_path_factory.mktemp(name) for name in dict.fromkeys(names) if name not in done}
        jobs = {name: ([sys.executable, "-c", code, os.path.join(NOTEBOOKS, f"{name}.ipynb"), out],
                       dict(capture_output=True, text=True, timeout=900)) for name, out in outs.items()}
        for name, res in run_parallel(jobs).items():
            figures = outs[name] / f"{name}.figures.json"
            if getattr(res, "returncode", None) == 0 and figures.exists():
                done[name] = (load_figures(figures), outs[name] / f"{name}.ipynb")

    run.prefetch = prefetch
    return run
