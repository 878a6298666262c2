"""Data distributions with samplers and, where a closed form exists, exact log-densities and noised scores.

Every target has `dim`, `shape`, `sample(n, *, generator=None, device=None, dtype=torch.float32)`,
`key()`; exact ones add `log_prob(x)`, `log_prob_t(x, t, process)` and `score(x, t, process)` = grad log p_t,
p_t the law of m(t) x_0 + s(t) z, and `posterior(x, t, process)` = (E[x_0|x_t], E[z|x_t]) by Tweedie.
"""
from .base import Target, noise_coeffs, tweedie
from .curie_weiss import CurieWeiss
from .digits import Digits
from .gaussian import Gaussian
from .mixture import GaussianMixture
from .student_t import StudentT, standard_gamma
from .toys import TOY_NAMES, toy
from .twomode import TwoModeMixture

__all__ = [
    "CurieWeiss",
    "Digits",
    "Gaussian",
    "GaussianMixture",
    "StudentT",
    "TOY_NAMES",
    "Target",
    "TwoModeMixture",
    "noise_coeffs",
    "standard_gamma",
    "toy",
    "tweedie",
]
