"""The two-mode Gaussian mixture of Aranguri, Biroli, Mezard, Vanden-Eijnden (arXiv 2501.00988), docs/theory.md §8.2.

x_1 = s mu + sigma eta, s = +1 with probability p and -1 otherwise, eta ~ N(0, I_d), mu = (1, ..., 1),
so |mu|^2 = d. Every formula goes through the two scalars mu.x = sum_i x_i and |x|^2, so nothing of size
d x d is ever built and d = 10^6 with 1000 samples is fine (on a GPU: x itself is then 4 GB in float32).
For x = beta x_1 + alpha z (interpolant) or x = m x_0 + s z (diffusion; alpha = s, beta = m):
  h = 1/2 ln(p/(1-p)),  D = alpha^2 + sigma^2 beta^2,  E[s|x] = tanh(h + beta mu.x / D),
  E[x_1|x] = (beta sigma^2/D) x + (alpha^2/D) mu E[s|x],  E[z|x] = (alpha/D)(x - beta mu E[s|x]),
  score = -E[z|x]/alpha = -(x - beta mu E[s|x]) / D.
"""
from __future__ import annotations

import math

import torch

from ..checks import check_int, check_positive, check_range
from ..processes import as_time
from ..rng import as_generator, randn
from .base import LOG_2PI, Target, noise_coeffs, row_sums, sample_device
from .mixture import GaussianMixture


def _is_number(t) -> bool:
    """True for a Python (or NumPy) real number, i.e. a time whose coefficients can be Python floats."""
    return isinstance(t, (int, float)) and not isinstance(t, bool)


def _sum_mu(x: torch.Tensor) -> torch.Tensor:
    """mu.x = sum_i x_i over the last dim, returned in float64 (...,).

    One read of x and no float64 copy of it: float32 x is summed in float32 (torch's CPU sum is a cascade
    summation, error ~ eps |x|_1 / d^(1/2) in practice) and only the (n,) sums are converted; float16/bfloat16
    accumulate in float32; float64 stays float64.
    """
    if x.dtype in (torch.float16, torch.bfloat16):
        return x.sum(-1, dtype=torch.float32).to(torch.float64)
    return x.sum(-1).to(torch.float64)


class TwoModeMixture(Target):
    """p N(mu, sigma2 I) + (1 - p) N(-mu, sigma2 I) on R^d with mu = ones(d) (Aranguri et al.)."""

    def __init__(self, d: int, p: float = 0.5, sigma2: float = 1.0):
        d = check_int("d", d, low=1)
        self.p = check_range("p", p, 0.0, 1.0, low_open=True, high_open=True)
        self.sigma2 = check_positive("sigma2", sigma2)
        self.shape = (d,)
        self.h = 0.5 * math.log(self.p / (1 - self.p))

    def _params(self):
        return {"d": self.dim, "p": self.p, "sigma2": self.sigma2}

    @property
    def mu(self) -> torch.Tensor:
        """The mode direction mu = (1, ..., 1), float64 (d,)."""
        return torch.ones(self.dim, dtype=torch.float64)

    def as_mixture(self) -> GaussianMixture:
        """The same law as a generic `GaussianMixture` (for small d: it builds (2, d) means)."""
        mu = self.mu
        return GaussianMixture([self.p, 1 - self.p], torch.stack([mu, -mu]), [self.sigma2, self.sigma2],
                               name="TwoModeMixture")

    # --- sampling ---------------------------------------------------------------------------------------
    def sample(self, n, *, generator=None, device=None, dtype=torch.float32):
        """x = s mu + sigma eta with P(s = +1) = p; shape (n, d)."""
        n = check_int("n", n, low=0)
        generator = as_generator(generator, device)  # an int seed is welcome
        dev = sample_device(generator, device)
        sign = torch.where(torch.rand(n, generator=generator, device=dev, dtype=torch.float64) < self.p, 1.0, -1.0)
        x = randn((n, self.dim), generator=generator, device=dev, dtype=dtype)
        return x.mul_(math.sqrt(self.sigma2)).add_(sign.to(dtype)[:, None])

    def _coeffs(self, process, t: float) -> tuple[float, float]:
        """(m(t), s(t)) as floats, remembered for the last (process, t): a sampler that scores x a block of rows
        at a time (diffviz.fused) asks for the same time many times in a row. Processes are treated as immutable."""
        last = self.__dict__.get("_last_coeffs")
        if last is not None and last[0] is process and last[1] == t:
            return last[2], last[3]
        m, s = float(process.mean_scale(t)), float(process.std(t))
        self._last_coeffs = (process, t, m, s)
        return m, s

    # --- posterior means in terms of (alpha, beta) ------------------------------------------------------------
    def _posterior_sign(self, sum_x, alpha, beta):
        """E[s | x] = tanh(h + beta mu.x / D), D = alpha^2 + sigma^2 beta^2 (float64); alpha, beta floats or tensors."""
        D = alpha ** 2 + self.sigma2 * beta ** 2
        return torch.tanh(self.h + (beta / D) * sum_x), D

    def posterior_interpolant(self, x, tau, interp):
        """(E[z|x], E[x_1|x]) for x = alpha(tau) z + beta(tau) x_1 (docs/theory.md §8.2), each like x.

        `interp` is anything with `alpha(tau)` and `beta(tau)`, e.g. `diffviz.Interpolant`; tau is a float or a
        tensor of shape (n,). Both means stay finite at tau = 0 (pure noise) and tau = 1 (data).
        Each mean is affine in x with a per-row shift, E = a x + col, written in one pass over x.
        """
        x = self._check_x(x)
        if _is_number(tau):  # Python-float coefficients: no small tensors, no host-device copies
            alpha, beta = float(interp.alpha(tau)), float(interp.beta(tau))
            e_sign, D = self._posterior_sign(_sum_mu(x), alpha, beta)
            # E[z|x] = (alpha/D) x - (alpha beta/D) mu E[s|x],  E[x_1|x] = (beta sigma^2/D) x + (alpha^2/D) mu E[s|x]
            eps_hat = torch.add((e_sign * (-alpha * beta / D)).to(x.dtype)[..., None], x, alpha=alpha / D)
            x1_hat = torch.add((e_sign * (alpha ** 2 / D)).to(x.dtype)[..., None], x, alpha=beta * self.sigma2 / D)
            return eps_hat, x1_hat
        tau = as_time(tau).to(torch.float64)
        if tau.dim() > 1 or (tau.dim() == 1 and (x.dim() < 2 or tau.shape[0] != x.shape[0])):
            raise ValueError(f"tau must be a scalar or have shape ({x.shape[0]},) to match x of shape "
                             f"{tuple(x.shape)}, got shape {tuple(tau.shape)}")
        alpha = torch.as_tensor(interp.alpha(tau), dtype=torch.float64).to(x.device)
        beta = torch.as_tensor(interp.beta(tau), dtype=torch.float64).to(x.device)
        e_sign, D = self._posterior_sign(_sum_mu(x), alpha, beta)
        lead = x.shape[:-1]

        def col(v):
            return v.expand(lead)[..., None].to(x.dtype)

        eps_hat = torch.addcmul(col(-alpha * beta / D * e_sign), x, col(alpha / D))
        x1_hat = torch.addcmul(col(alpha ** 2 / D * e_sign), x, col(beta * self.sigma2 / D))
        return eps_hat, x1_hat

    # --- densities and scores --------------------------------------------------------------------------------
    def _log_density(self, x, m, s):
        """log [p N(x; m mu, C I) + (1-p) N(x; -m mu, C I)], C = m^2 sigma^2 + s^2."""
        d = self.dim
        sum_x, sq_x = row_sums(x)
        c = m ** 2 * self.sigma2 + s ** 2
        base = -0.5 * (sq_x + m ** 2 * d) / c - 0.5 * d * (LOG_2PI + torch.log(c))
        cross = m * sum_x / c
        out = torch.logaddexp(math.log(self.p) + cross, math.log1p(-self.p) - cross) + base
        return out.to(x.dtype)

    def log_prob(self, x):
        """log p_0(x), shape x.shape[:-1]."""
        x = self._check_x(x)
        one = torch.ones((), dtype=torch.float64, device=x.device)
        return self._log_density(x, one, torch.zeros_like(one))

    def log_prob_t(self, x, t, process):
        """log p_t(x) for x = m x_1 + s z."""
        x = self._check_x(x)
        m, s = noise_coeffs(process, t, x)
        return self._log_density(x, m, s)

    def score(self, x, t, process):
        """grad log p_t(x) = -(x - m mu E[s|x]) / (m^2 sigma^2 + s^2), like x; no d x d matrix.

        Cost: one read of x (the sums mu.x) and one pass writing the result (score = shift - x / D).
        """
        coef, shift = self.score_affine(x, t, process)
        if isinstance(coef, torch.Tensor):
            return torch.addcmul(shift, x, coef)
        return torch.add(shift, x, alpha=coef)

    def score_affine(self, x, t, process):
        """(coef, shift) with score(x) = coef x + shift: coef = -1/D, shift = (m E[s|x] / D) mu, D = m^2 sigma^2 + s^2.

        coef is a float for a scalar time t given as a number, else a tensor broadcasting like shift; shift has
        shape (..., 1) in x's dtype (mu = ones). Lets a sampler write x' = a x + b score in one pass
        (`diffviz.fused`). Reads x once (mu.x).
        """
        x = self._check_x(x)
        if _is_number(t):  # Python-float coefficients: no small tensors, no host-device copies
            m, s = self._coeffs(process, t)
            e_sign, D = self._posterior_sign(_sum_mu(x), s, m)
            return -1.0 / D, (e_sign * (m / D)).to(x.dtype)[..., None]
        m, s = noise_coeffs(process, t, x)
        e_sign, D = self._posterior_sign(_sum_mu(x), s, m)
        lead = x.shape[:-1]
        shift = (m * e_sign / D).expand(lead)[..., None].to(x.dtype)
        coef = (-1.0 / D).expand(lead)[..., None].to(x.dtype)
        return coef, shift

    # --- features (docs/theory.md §8.3)-------------------------------------------------------------------------------
    @staticmethod
    def mode_weight(x: torch.Tensor) -> float:
        """High-level feature p_hat = fraction of samples with mu.x / d > 0 (target p); x of shape (n, d)."""
        sum_x, _ = row_sums(x)
        return (sum_x > 0).to(torch.float64).mean().item()

    @staticmethod
    def within_mode_var(x: torch.Tensor) -> float:
        """Low-level feature sigma2_hat = mean |x - sign(mu.x) mu|^2 / d (target sigma2); x of shape (n, d)."""
        d = x.shape[-1]
        sum_x, sq_x = row_sums(x)
        return ((sq_x - 2 * sum_x.abs() + d) / d).mean().item()
