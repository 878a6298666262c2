"""scikit-learn's 8x8 handwritten digits (bundled with the package: no download), as images in [-1, 1].

1797 images of shape (1, 8, 8); pixels 0..16 are mapped by x / 8 - 1. No exact score: this is the data
set for training small networks. Deterministic split: the first 1500 images train, the remaining 297 test.
"""
from __future__ import annotations

from functools import lru_cache

import torch

from ..checks import check_choice, check_int
from ..rng import as_generator
from .base import Target, sample_device

N_TRAIN = 1500


@lru_cache(maxsize=1)
def _load():
    from sklearn.datasets import load_digits  # reads the copy shipped inside scikit-learn

    raw = load_digits()
    images = torch.as_tensor(raw.images, dtype=torch.float32) / 8.0 - 1.0
    return images[:, None], torch.as_tensor(raw.target, dtype=torch.int64)


class Digits(Target):
    """sklearn digits as a target of shape (1, 8, 8); `split` ("all", "train", "test") is what `sample` draws from."""

    shape = (1, 8, 8)

    def __init__(self, split: str = "all"):
        self.split = check_choice("split", split, {"all", "train", "test"})
        images, labels = _load()
        part = {"all": slice(None), "train": slice(0, N_TRAIN), "test": slice(N_TRAIN, None)}[self.split]
        self.data = images[part]  # float32 (N, 1, 8, 8) in [-1, 1]
        self.labels = labels[part]  # int64 (N,) digit classes

    def _params(self):
        return {"split": self.split}

    def __len__(self) -> int:
        return self.data.shape[0]

    @property
    def train(self) -> torch.Tensor:
        """The first 1500 images, float32 (1500, 1, 8, 8)."""
        return _load()[0][:N_TRAIN]

    @property
    def test(self) -> torch.Tensor:
        """The remaining 297 images, float32 (297, 1, 8, 8)."""
        return _load()[0][N_TRAIN:]

    def sample(self, n, *, generator=None, device=None, dtype=torch.float32):
        """n images drawn uniformly with replacement from the split, shape (n, 1, 8, 8)."""
        n = check_int("n", n, low=0)
        generator = as_generator(generator, device)  # an int seed is welcome
        dev = sample_device(generator, device)
        idx = torch.randint(0, len(self), (n,), generator=generator, device=dev)
        return self._cached("data", self.data, dev, dtype)[idx]
