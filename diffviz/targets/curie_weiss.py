"""The Curie-Weiss model mu(x) ∝ exp((beta/(2d)) S^2 + (h/d) S), x in {-1, +1}^d, S = sum_i x_i.

Derivations: docs/theory.md §8.6. `beta` is the inverse temperature (beta_CW in the notebooks and docs/notation.md), `h` the field (energy h S/d).

The law of S is exact and cheap: P(S = 2k - d) ∝ C(d, k) exp(beta S^2/(2d) + h S/d) (k spins up),
computed in log space with lgamma. Exact sampler: draw S from it, then put the k = (d + S)/2 up-spins
at uniformly random positions. Features: the magnetization M = S/d, P(M > 0) and |M|.

There is no closed-form score for the noised law. Aranguri et al. (their released `cw_*` notebooks) treat
the data as a two-component product-Bernoulli mixture: a sign s = +-1 with P(s = +1) = p_plus, then
independent spins with mean s m, m the mean-field magnetization (m_CW: the largest root of
m = tanh(beta m + h/d), `mean_field_m`). `posterior_interpolant` and
`approx_score` implement that approximation (it is the authors' model, not the exact CW posterior).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..checks import check_finite, check_int, check_range
from ..processes import as_time
from ..rng import as_generator
from .base import Target, noise_coeffs, sample_device


class CurieWeiss(Target):
    """Curie-Weiss spins on {-1, +1}^d at inverse temperature beta >= 0 with field h (energy h S / d)."""

    def __init__(self, d: int, beta: float, h: float = 0.0):
        d = check_int("d", d, low=1)
        self.beta = check_range("beta", beta, 0.0, math.inf)
        self.h = check_finite("h", h)
        self.shape = (d,)
        self._pmf = None

    def _params(self):
        return {"d": self.dim, "beta": self.beta, "h": self.h}

    # --- the exact law of S ---------------------------------------------------------------------------------
    def _log_weights(self):
        """S = 2k - d for k = 0..d up-spins and log[C(d, k) exp(beta S^2/(2d) + h S/d)], float64."""
        d = self.dim
        k = torch.arange(d + 1, dtype=torch.float64)
        S = 2 * k - d
        log_binom = math.lgamma(d + 1) - torch.lgamma(k + 1) - torch.lgamma(d - k + 1)
        return S, log_binom + self.beta * S ** 2 / (2 * d) + self.h * S / d

    def log_partition(self) -> float:
        """log Z = log sum_x exp(beta S^2/(2d) + h S/d) over all 2^d configurations."""
        _, lw = self._log_weights()
        return torch.logsumexp(lw, 0).item()

    def pmf_S(self):
        """(S values -d, -d+2, ..., d as int64, their probabilities as float64), computed in log space."""
        if self._pmf is None:
            S, lw = self._log_weights()
            self._pmf = (S.to(torch.int64), torch.softmax(lw, 0))
        S, probs = self._pmf
        return S.clone(), probs.clone()

    def prob_positive(self) -> float:
        """P(M > 0) + P(M = 0)/2 (exact; 1/2 at h = 0)."""
        S, probs = self.pmf_S()
        return (probs[S > 0].sum() + 0.5 * probs[S == 0].sum()).item()

    def mean_abs_magnetization(self) -> float:
        """E|M| = E|S|/d (exact)."""
        S, probs = self.pmf_S()
        return (probs * S.abs().to(torch.float64)).sum().item() / self.dim

    # --- sampling ---------------------------------------------------------------------------------------
    def sample(self, n, *, generator=None, device=None, dtype=torch.float32):
        """Exact draws: S from `pmf_S`, then (d + S)/2 up-spins at random positions; shape (n, d), entries +-1."""
        n = check_int("n", n, low=0)
        generator = as_generator(generator, device)  # an int seed is welcome
        dev = sample_device(generator, device)
        d = self.dim
        _, probs = self.pmf_S()
        k_up = torch.multinomial(probs.to(dev), n, replacement=True, generator=generator) if n else \
            torch.zeros(0, dtype=torch.int64, device=dev)
        out = torch.empty((n, d), device=dev, dtype=dtype)
        rows = max(1, (1 << 22) // d)
        ranks = torch.arange(d, device=dev)
        for start in range(0, n, rows):
            k = k_up[start:start + rows]
            # a uniformly random order of the d sites per sample; its first k sites get spin +1
            order = torch.rand((k.shape[0], d), generator=generator, device=dev, dtype=torch.float64).argsort(dim=1)
            values = torch.where(ranks < k[:, None], 1.0, -1.0).to(dtype)
            out[start:start + rows].scatter_(1, order, values)
        return out

    def log_prob(self, x):
        """log mu(x) = beta S^2/(2d) + h S/d - log Z for x in {-1, +1}^d (not checked), shape x.shape[:-1]."""
        x = self._check_x(x)
        S = x.sum(-1, dtype=torch.float64)
        d = self.dim
        return (self.beta * S ** 2 / (2 * d) + self.h * S / d - self.log_partition()).to(x.dtype)

    @staticmethod
    def magnetization(x: torch.Tensor) -> torch.Tensor:
        """M = S/d per sample, float64 (n,)."""
        return x.sum(-1, dtype=torch.float64) / x.shape[-1]

    def mean_field_m(self) -> float:
        """Largest root of m = tanh(beta m + h/d) (the per-spin field of the energy h S/d is h/d).

        For h >= 0 this is the non-negative root: 0 for beta <= 1 at h = 0, the positive branch for beta > 1.
        """
        field = self.h / self.dim
        grid = np.linspace(-1.0, 1.0, 20001)
        f = grid - np.tanh(self.beta * grid + field)
        # f(1) > 0 > f(-1): bracket the last sign change from <= 0 to > 0, then bisect
        i = np.nonzero(f <= 0)[0].max()
        lo, hi = grid[i], grid[i + 1]
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if mid - math.tanh(self.beta * mid + field) <= 0:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)

    # --- the authors' two-mode product-Bernoulli approximation ---------------------------------------------
    def _two_mode(self, m, p_plus):
        m = self.mean_field_m() if m is None else check_range("m", m, 0.0, 1.0, high_open=True)
        if p_plus is None:
            p_plus = 1.0 / (1.0 + math.exp(-2 * self.h * m))  # e^{hm} / (2 cosh(hm)), the authors' mode weights
        p_plus = check_range("p_plus", p_plus, 0.0, 1.0, low_open=True, high_open=True)
        return m, p_plus

    def _bernoulli_posterior(self, x, alpha, beta, m, p_plus):
        """E[x_1|x] for x = alpha z + beta x_1, x_1 ~ product-Bernoulli mixture (means +-m, weights p_plus)."""
        if alpha.dim() == 1:
            alpha, beta = alpha[:, None], beta[:, None]
        a = (beta / alpha ** 2).to(x.dtype) * x  # per-coordinate log-likelihood ratio / 2
        t = torch.tanh(a)
        # log P(x | s = +1) - log P(x | s = -1) = sum_i [log(1 + m tanh a_i) - log(1 - m tanh a_i)]
        llr = (torch.log1p(m * t) - torch.log1p(-m * t)).sum(-1, dtype=torch.float64)
        w_plus = torch.sigmoid(math.log(p_plus / (1 - p_plus)) + llr).to(x.dtype)[..., None]
        shift = math.atanh(m)
        return w_plus * torch.tanh(a + shift) + (1 - w_plus) * torch.tanh(a - shift)

    def posterior_interpolant(self, x, tau, interp, *, m: float | None = None, p_plus: float | None = None):
        """(E[z|x], E[x_1|x]) for x = alpha(tau) z + beta(tau) x_1 under the two-mode product-Bernoulli model.

        Per coordinate, given the mode s: E[x_1i | x, s] = tanh(beta x_i / alpha^2 + s atanh(m)); the mode
        posterior uses P(x | s) ∝ prod_i (1 + s m tanh(beta x_i / alpha^2)). Defaults: m = `mean_field_m()`,
        p_plus = e^{hm}/(2 cosh(hm)) (Aranguri et al.'s choices). Needs alpha > 0, i.e. tau < 1.
        """
        x = self._check_x(x)
        m, p_plus = self._two_mode(m, p_plus)
        tau = as_time(tau).to(torch.float64)
        alpha = torch.as_tensor(interp.alpha(tau), dtype=torch.float64).to(x.device)
        beta = torch.as_tensor(interp.beta(tau), dtype=torch.float64).to(x.device)
        x1_hat = self._bernoulli_posterior(x, alpha, beta, m, p_plus)
        if alpha.dim() == 1:
            alpha, beta = alpha[:, None], beta[:, None]
        eps_hat = (x - beta.to(x.dtype) * x1_hat) / alpha.to(x.dtype)
        return eps_hat, x1_hat

    def approx_score(self, x, t, process, *, m: float | None = None, p_plus: float | None = None):
        """-(x - m_t E[x_1|x]) / s_t^2 under the two-mode product-Bernoulli model (an approximation), like x."""
        x = self._check_x(x)
        m, p_plus = self._two_mode(m, p_plus)
        mt, st = noise_coeffs(process, t, x)
        x1_hat = self._bernoulli_posterior(x, st, mt, m, p_plus)
        if mt.dim() == 1:
            mt, st = mt[:, None], st[:, None]
        return -(x - mt.to(x.dtype) * x1_hat) / (st ** 2).to(x.dtype)
