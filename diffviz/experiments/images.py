"""Images: a small score model on 8x8 digits with a short and a long horizon (Franzese et al. 2023 on real data).

A tiny U-Net (`models.ScoreConvNet`) is trained by denoising score matching on the 1500 training digits of
`targets.Digits` (x = pixel / 8 - 1 in [-1, 1], d = 64) under VP with horizon T. At a short T the forward
process stops far from N(0, I): the mean image survives as m(T) times the data mean. Starts q for the reverse
process: the prior N(0, I), or an auxiliary model fitted by maximum likelihood on free samples
x_T = m(T) x_0 + s(T) z of the training digits (moment-matched Gaussian with full covariance, GMM by
expectation-maximisation).

Numbers (all on the 297 test digits, which no model saw):
- `endpoint_xent`: the cross-entropy E_{p_T}[-log q(x_T)] in bits/dim on test x_T. It is H(p_T) + KL(p_T || q),
  so differences between starts at the same T are differences of KL(p_T || q), exactly (estimated, +- SE).
- `bits_per_dim`: the model's negative log-likelihood of test digits by the probability-flow ODE (Hutchinson
  divergence), bits/dim with 8 levels per unit of x (`metrics.bits_per_dim`, scale = DIGITS_SCALE). The ODE path
  x_0 -> x_T and its divergence integral do not depend on the start; only log q(x_T) does, so one path per
  model serves every start and their difference is paired (a small standard error).
"""
from __future__ import annotations

import math

import torch

from ..checks import check_choice, check_int, check_positive
from ..inits import GMMInit, MomentMatchedGaussian, StandardPrior, forward_samples
from ..metrics import DIGITS_SCALE
from ..rng import make_generator
from ..samplers import sample
from ..schedules import uniform
from .diffusion_time import CountingScore, endpoint_log_prob, make_process, pf_ode_path, steps_for

F64 = torch.float64
D = 64  # pixels per digit
INITS = ("prior", "gaussian", "gmm")
INIT_LABELS = {"prior": "prior p_∞ = N(0, I)", "gaussian": "Gaussian fitted to x_T", "gmm": "GMM fitted to x_T"}


def digits(split: str = "train"):
    """The digits target of `split` ("train": 1500 images, "test": 297), shape (1, 8, 8) in [-1, 1]."""
    from ..targets import Digits

    return Digits(check_choice("split", split, {"train", "test", "all"}))


def train_digits(T: float, *, steps: int = 300, base: int = 16, batch_size: int = 64, lr: float = 2e-3,
                 seed: int = 0, device=None, progress: bool = False, cache=True):
    """A ScoreConvNet(base) trained on the training digits under VP with horizon T (t ~ U[1e-3, T]); cached."""
    from ..models import ScoreConvNet
    from ..train import train_score

    net = ScoreConvNet(channels=1, base=check_int("base", base, 1))
    return train_score(digits("train"), make_process(T), net=net, steps=steps, batch_size=batch_size, lr=lr,
                       seed=seed, device=device, progress=progress, cache=cache)


def fit_image_init(name: str, T: float, *, n_fit: int = 3000, seed: int = 0, gmm_components: int = 4,
                   gmm_iter: int = 40):
    """The start `name` ("prior", "gaussian", "gmm") fitted on n_fit free samples x_T of the training digits.

    Gaussian: full 64 x 64 covariance (ridge 1e-4 of the mean variance). GMM: full covariances,
    expectation-maximisation with a covariance floor 1e-3 of the mean variance and at most `gmm_iter` iterations
    (64-D expectation-maximisation is the slow part).
    """
    name = check_choice("init", name, set(INITS))
    process = make_process(T)
    x = forward_samples(digits("train"), process, check_int("n_fit", n_fit, 2), generator=make_generator(seed, "cpu"))
    if name == "prior":
        return StandardPrior(process, D).fit(x)
    if name == "gaussian":
        return MomentMatchedGaussian(ridge=1e-4).fit(x)
    return GMMInit(check_int("gmm_components", gmm_components, 1), seed=seed, n_iter=gmm_iter, tol=1e-4,
                   reg_covar=1e-3).fit(x)


def endpoint_xent(init, T: float, *, n: int = 2000, seed: int = 1) -> tuple[float, float]:
    """E[-log q(x_T)] over n test x_T (test digits drawn with replacement + fresh noise), bits/dim and its SE."""
    x = forward_samples(digits("test"), make_process(T), check_int("n", n, 2), generator=make_generator(seed, "cpu"),
                        dtype=F64)
    bits = -init.log_prob(x).to(F64) / (D * math.log(2))
    return float(bits.mean()), float(bits.std() / math.sqrt(n))


def sample_images(model, T: float, init, n: int, *, step_size: float = 0.02, method: str = "ddim", seed: int = 0):
    """n digits from the start `init` at horizon T, `method` on a uniform grid with step <= step_size.

    Default DDIM (eta = 0), a deterministic sampler: like the probability-flow ODE whose likelihood
    `bits_per_dim` measures, it carries the start's error to the output (a stochastic sampler partly forgets it).

    Returns (images (n, 1, 8, 8) on the CPU, number of score evaluations).
    """
    process = make_process(T)
    gen = make_generator(seed, "cpu")
    x0 = init.sample(check_int("n", n, 1), generator=gen).reshape(n, 1, 8, 8)
    score = CountingScore(model)
    x = sample(score, process, x0, uniform(process, steps_for(T, step_size)), method, generator=gen)
    return x.cpu(), score.calls


def bits_per_dim(model, T: float, inits: dict, x_test: torch.Tensor, *, n_steps: int = 30, n_probes: int = 1,
                 seed: int = 2) -> dict:
    """bits/dim of 'start q, then the PF-ODE of `model`' on test digits x_test (n, 1, 8, 8), for each q in inits.

    One ODE path per model (Heun, n_steps log-SNR steps, Hutchinson divergence with n_probes Rademacher probes);
    -log p(x_0) = -log q(x_T) - int div v dt. Returns {name: {"bpd", "se", "diff_prior", "diff_prior_se"}}:
    the mean over digits with its standard error, and the paired difference to the prior start (when present).
    """
    check_positive("T", T)
    process = make_process(T)
    xT, integral = pf_ode_path(model, process, x_test.to(F64), n_steps=n_steps, divergence="hutchinson",
                               n_probes=n_probes, generator=make_generator(seed, "cpu"))
    per = {}
    for name, init in inits.items():
        nll = -(endpoint_log_prob(init, xT) + integral)
        per[name] = (nll / D + math.log(DIGITS_SCALE)) / math.log(2)
    out = {}
    n = x_test.shape[0]
    for name, bpd in per.items():
        row = {"bpd": float(bpd.mean()), "se": float(bpd.std() / math.sqrt(n))}
        if "prior" in per:
            diff = bpd - per["prior"]
            row["diff_prior"] = float(diff.mean())
            row["diff_prior_se"] = float(diff.std() / math.sqrt(n)) if n > 1 else math.nan
        out[name] = row
    return out
