"""Gaussian mixtures sum_k pi_k N(mu_k, Sigma_k) with the exact noised score (docs/theory.md §3.2).

p_t = sum_k pi_k N(m mu_k, C_k), C_k = m^2 Sigma_k + s^2 I, and
score(x) = sum_k w_k(x) [-C_k^{-1} (x - m mu_k)],  w = softmax_k(log pi_k + log N(x; m mu_k, C_k)),
with the responsibilities w computed in log space. Covariances: (K,) isotropic variances, (K, d)
diagonals or (K, d, d) full SPD matrices (stored by eigendecomposition); diagonal matrices are recognised and
stored as diagonals, and diagonals with equal entries as isotropic variances, so a covariance written as a
matrix costs nothing. The score at one time (what a sampler asks for) is computed by matrix products with the
components along rows: in float64 for isotropic/diagonal covariances, and for full ones by whitening each
component once, z_k = C_k^{-1/2}(x - m mu_k), in the input's dtype. Other computations (per-sample times,
log densities) are in float64 and hold an (n, K, d) array, so this class is meant for small K d (2-D toys,
moderate d); the two-mode model of Aranguri et al. at d = 10^6 has its own class, `TwoModeMixture`.
"""
from __future__ import annotations

import torch

from ..checks import check_int
from ..rng import as_generator, randn
from .base import (LOG_2PI, Target, as_float64, check_scalar_time, check_spd, digest, noise_coeffs,
                   sample_device)

WEIGHT_TOL = 1e-6


class GaussianMixture(Target):
    """sum_k weights[k] N(means[k], covs[k]); covs (K,) scalars, (K, d) diagonals or (K, d, d) full."""

    def __init__(self, weights, means, covs, *, name: str | None = None):
        weights = as_float64("weights", weights)
        if weights.dim() != 1 or weights.numel() == 0:
            raise ValueError(f"weights must be a 1-D tensor of K >= 1 entries, got shape {tuple(weights.shape)}")
        if (weights < 0).any():
            raise ValueError(f"weights must be non-negative, got minimum {weights.min().item()!r}")
        total = weights.sum().item()
        if abs(total - 1.0) > WEIGHT_TOL:
            raise ValueError(f"weights must sum to 1 (tolerance {WEIGHT_TOL:g}), got sum {total!r}")
        K = weights.shape[0]
        means = as_float64("means", means)
        if means.dim() != 2 or means.shape[0] != K or means.shape[1] == 0:
            raise ValueError(f"means must have shape (K, d) with K = len(weights) = {K} and d >= 1, "
                             f"got shape {tuple(means.shape)}")
        d = means.shape[1]
        covs = as_float64("covs", covs)
        if covs.dim() == 0:
            covs = covs.expand(K).clone()
        if covs.shape == (K, d, d):
            for k in range(K):
                check_spd(f"covs[{k}]", covs[k])
        if covs.shape in ((K, d, d), (K, d)):
            covs = _simplest_form(covs)
        if covs.shape == (K,):
            if not (covs > 0).all():
                raise ValueError(f"covs (isotropic variances) must be > 0, got minimum {covs.min().item()!r}")
            self.cov_type = "iso"
            self._lam = covs[:, None].expand(K, d).clone()
            self._U = None
        elif covs.shape == (K, d):
            if not (covs > 0).all():
                raise ValueError(f"covs (diagonals) must have entries > 0, got minimum {covs.min().item()!r}")
            self.cov_type = "diag"
            self._lam = covs.clone()
            self._U = None
        elif covs.shape == (K, d, d):
            covs = 0.5 * (covs + covs.transpose(-1, -2))
            self.cov_type = "full"
            self._lam, self._U = torch.linalg.eigh(covs)
        else:
            raise ValueError(f"covs must have shape ({K},), ({K}, {d}) or ({K}, {d}, {d}) to match means of shape "
                             f"{tuple(means.shape)}, got {tuple(covs.shape)}")
        self.weights = weights / total
        self.means = means
        self.covs = covs
        self.shape = (d,)
        self.name = name

    @property
    def n_components(self) -> int:
        """K."""
        return self.weights.shape[0]

    def _params(self):
        out = {"name": self.name} if self.name is not None else {}
        out.update({"K": self.n_components, "d": self.dim, "cov_type": self.cov_type,
                    "params": digest(self.weights, self.means, self.covs)})
        return out

    def cov_matrices(self) -> torch.Tensor:
        """(K, d, d) float64 covariances (for small d)."""
        if self.cov_type == "full":
            return self.covs.clone()
        return torch.diag_embed(self._lam)

    def mixture_mean(self) -> torch.Tensor:
        """Mean of the mixture sum_k pi_k mu_k, float64 (d,)."""
        return self.weights @ self.means

    def mixture_cov(self) -> torch.Tensor:
        """Covariance of the mixture sum_k pi_k (Sigma_k + mu_k mu_k^T) - mean mean^T, float64 (d, d)."""
        mu = self.mixture_mean()
        second = torch.einsum("k,kij->ij", self.weights, self.cov_matrices())
        second = second + torch.einsum("k,ki,kj->ij", self.weights, self.means, self.means)
        return second - torch.outer(mu, mu)

    # --- sampling -------------------------------------------------------------------------------------------
    def sample(self, n, *, generator=None, device=None, dtype=torch.float32):
        """Pick k ~ pi, then x = mu_k + Sigma_k^{1/2} z; shape (n, d)."""
        n = check_int("n", n, low=0)
        generator = as_generator(generator, device)  # an int seed is welcome
        dev = sample_device(generator, device)
        if n == 0:
            return torch.zeros((0, self.dim), device=dev, dtype=dtype)
        w = self._cached("weights", self.weights, dev, torch.float64)
        k = torch.multinomial(w, n, replacement=True, generator=generator)
        z = randn((n, self.dim), generator=generator, device=dev, dtype=torch.float64)
        lam = self._cached("lam", self._lam, dev, torch.float64)
        z = z * lam[k].sqrt()
        if self._U is not None:
            z = torch.einsum("nij,nj->ni", self._cached("U", self._U, dev, torch.float64)[k], z)
        return (self._cached("means", self.means, dev, torch.float64)[k] + z).to(dtype)

    # --- the noised components ------------------------------------------------------------------------------
    def _components(self, x, m, s):
        """Per component: log pi_k + log N(x; m mu_k, C_k), shape (..., K), and -C_k^{-1}(x - m mu_k), (..., K, d)."""
        dev = x.device
        x64 = x.to(torch.float64)
        if m.dim() == 1:  # one time per sample: broadcast over (n, K, d)
            m, s = m[:, None, None], s[:, None, None]
        mu = self._cached("means", self.means, dev, torch.float64)
        diff = x64[..., None, :] - m * mu  # (..., K, d)
        lam_t = m ** 2 * self._cached("lam", self._lam, dev, torch.float64) + s ** 2  # (K, d) or (n, K, d)
        if self._U is None:
            y = diff
        else:
            U = self._cached("U", self._U, dev, torch.float64)
            y = torch.einsum("...kd,kde->...ke", diff, U)  # coordinates in each component's eigenbasis
        quad = (y ** 2 / lam_t).sum(-1)
        logdet = torch.log(lam_t).sum(-1)
        log_w = torch.log(self._cached("weights", self.weights, dev, torch.float64))
        log_joint = log_w - 0.5 * (quad + logdet + self.dim * LOG_2PI)
        prec_y = y / lam_t
        if self._U is not None:
            prec_y = torch.einsum("...ke,kde->...kd", prec_y, U)
        return log_joint, -prec_y

    def _log_density(self, x, m, s):
        log_joint, _ = self._components(x, m, s)
        return torch.logsumexp(log_joint, dim=-1).to(x.dtype)

    def log_prob(self, x):
        """log sum_k pi_k N(x; mu_k, Sigma_k) (logsumexp), shape x.shape[:-1]."""
        x = self._check_x(x)
        one = torch.ones((), dtype=torch.float64, device=x.device)
        return self._log_density(x, one, torch.zeros_like(one))

    def log_prob_t(self, x, t, process):
        """log p_t(x) = log sum_k pi_k N(x; m mu_k, m^2 Sigma_k + s^2 I)."""
        x = self._check_x(x)
        m, s = noise_coeffs(process, t, x)
        return self._log_density(x, m, s)

    def responsibilities(self, x, t, process) -> torch.Tensor:
        """w_k(x) = P(component k | x_t = x) = softmax_k(log pi_k + log N(x; m mu_k, C_k)), float64 (..., K)."""
        x = self._check_x(x)
        m, s = noise_coeffs(process, t, x)
        log_joint, _ = self._components(x, m, s)
        return torch.softmax(log_joint, dim=-1)

    def score(self, x, t, process):
        """grad log p_t(x) = sum_k w_k(x) [-C_k^{-1}(x - m mu_k)], like x."""
        x = self._check_x(x)
        m, s = noise_coeffs(process, t, x)
        if m.dim() == 0:
            return self._score_diagonal(x, m, s) if self._U is None else self._score_whitened(x, m, s)
        log_joint, neg_prec_diff = self._components(x, m, s)
        w = torch.softmax(log_joint, dim=-1)
        return (w[..., None] * neg_prec_diff).sum(-2).to(x.dtype)

    def _score_diagonal(self, x, m, s):
        """The score for diagonal C_k = diag(c_k) and one time, by matrix products (no (n, K, d) array):

        log w_k + const = log pi_k - 1/2 [x^2 . (1/c_k) - 2 m x . (mu_k/c_k) + m^2 mu_k . (mu_k/c_k) + sum log c_k],
        score = m r @ (mu/c) - x * (r @ (1/c)),  r = softmax_k; float64, components along rows so that the
        softmax over k runs over contiguous rows of n numbers (a softmax over a last dimension of K ~ 8 is slow).
        """
        dev, lead = x.device, x.shape[:-1]
        x64 = x.reshape(-1, self.dim).to(torch.float64)
        mu = self._cached("means", self.means, dev, torch.float64)
        inv_c = 1.0 / (m ** 2 * self._cached("lam", self._lam, dev, torch.float64) + s ** 2)  # (K, d)
        mu_c = mu * inv_c  # mu_k / c_k
        const = (torch.log(self._cached("weights", self.weights, dev, torch.float64))
                 - 0.5 * (m ** 2 * (mu * mu_c).sum(-1) - torch.log(inv_c).sum(-1) + self.dim * LOG_2PI))
        m_mu_c, xx = m * mu_c, (x64 * x64).T
        logits = torch.addmm(const[:, None], m_mu_c, x64.T)  # (K, n)
        if torch.is_grad_enabled() and (x.requires_grad or m.requires_grad or s.requires_grad):
            # out of place, so that autograd can differentiate the score (PF-ODE divergences, Hutchinson)
            r = torch.softmax(torch.addmm(logits, inv_c, xx, alpha=-0.5), dim=0)
        else:  # in place: no (K, n) temporaries
            logits.addmm_(inv_c, xx, alpha=-0.5)
            r = logits.sub_(logits.amax(0)).exp_()
            r.div_(r.sum(0))
        r = r.T  # (n, K) responsibilities
        out = torch.addcmul(r @ m_mu_c, x64, r @ inv_c, value=-1.0)
        return out.to(x.dtype).reshape(*lead, self.dim)

    def _score_whitened(self, x, m, s):
        """The score for full C_k = U_k diag(c_k) U_k^T and one time, by whitening each component once:

        z_k = W_k x - m W_k mu_k with W_k = diag(c_k)^{-1/2} U_k^T (so |z_k|^2 is the Mahalanobis distance),
        log w_k + const = log pi_k - |z_k|^2 / 2 - sum log c_k / 2,  score = -sum_k w_k W_k^T z_k.
        The W_k are stacked into one (K d, d) matrix, components along rows, so the work is two matrix products
        and a softmax over contiguous rows of n numbers, all in x's dtype (no float64 copy of an (n, K, d) array).
        """
        dev, dtype, lead = x.device, x.dtype, x.shape[:-1]
        K, d = self.n_components, self.dim
        c = m ** 2 * self._cached("lam", self._lam, dev, torch.float64) + s ** 2  # (K, d) eigenvalues of C_k
        U = self._cached("U", self._U, dev, torch.float64)
        W = (U * c.rsqrt()[:, None, :]).transpose(-1, -2)  # (K, d, d): W_k = diag(c_k)^{-1/2} U_k^T
        b = m * (W @ self._cached("means", self.means, dev, torch.float64)[..., None])[..., 0]  # (K, d)
        const = (torch.log(self._cached("weights", self.weights, dev, torch.float64))
                 - 0.5 * (torch.log(c).sum(-1) + d * LOG_2PI))
        W, b, const = W.reshape(K * d, d).to(dtype), b.reshape(K * d, 1).to(dtype), const.to(dtype)
        xt = x.reshape(-1, d).T  # (d, n)
        if torch.is_grad_enabled() and (x.requires_grad or m.requires_grad or s.requires_grad):
            z = (W @ xt - b).reshape(K, d, -1)  # out of place, so that autograd can differentiate the score
            r = torch.softmax(const[:, None] - 0.5 * (z * z).sum(1), dim=0)  # (K, n)
            out = -(W.T @ (z * r[:, None, :]).reshape(K * d, -1))
        else:  # in place: one (K d, n) array and one (K, n) array
            z = torch.addmm(b, W, xt, beta=-1.0).reshape(K, d, -1)  # W x - b
            logits = torch.sub(const[:, None], z.square().sum(1), alpha=0.5)  # (K, n)
            r = logits.sub_(logits.amax(0)).exp_()
            r.div_(r.sum(0))
            out = (W.T @ z.mul_(r[:, None, :]).reshape(K * d, -1)).neg_()
        return out.T.reshape(*lead, d)

    def noised(self, t, process) -> "GaussianMixture":
        """p_t as a GaussianMixture (means m mu_k, covariances m^2 Sigma_k + s^2 I), for a scalar time t."""
        check_scalar_time(t)
        ref = torch.zeros((1, self.dim))
        m, s = (v.item() for v in noise_coeffs(process, t, ref))
        if self.cov_type == "iso":
            covs = m ** 2 * self._lam[:, 0] + s ** 2
        elif self.cov_type == "diag":
            covs = m ** 2 * self._lam + s ** 2
        else:
            covs = m ** 2 * self.covs + s ** 2 * torch.eye(self.dim, dtype=torch.float64)
        return GaussianMixture(self.weights, m * self.means, covs, name=self.name)


def _simplest_form(covs: torch.Tensor) -> torch.Tensor:
    """Diagonal (K, d, d) matrices as their (K, d) diagonals, and (K, d) diagonals with equal entries as (K,)."""
    if covs.dim() == 3:
        diag = torch.diagonal(covs, dim1=-2, dim2=-1)
        if not torch.equal(covs, torch.diag_embed(diag)):
            return covs
        covs = diag.clone()
    if covs.dim() == 2 and torch.equal(covs, covs[:, :1].expand_as(covs)):
        return covs[:, 0].clone()
    return covs
