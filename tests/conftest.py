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
