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


@pytest.fixture(scope="session")
def fast_notebook(tmp_path_factory):
    """Execute notebooks/<name>.ipynb once per session with FAST=True; returns (figures, executed path)."""
    from diffviz.notebook_run import run_notebook

    done = {}
    cache = tmp_path_factory.mktemp("diffviz-cache")
    os.environ.setdefault("DIFFVIZ_CACHE_DIR", str(cache))

    def run(name, **params):
        if name not in done:
            out = tmp_path_factory.mktemp(name)
            figures = run_notebook(os.path.join(NOTEBOOKS, f"{name}.ipynb"), {"FAST": True, **params}, out)
            done[name] = (figures, out / f"{name}.ipynb")
        return done[name]

    return run
