"""Gaussian data N(mu, Sigma) and its noised law p_t = N(m mu, C_t), C_t = m^2 Sigma + s^2 I (docs/theory.md §3.1).

Three covariance kinds: a scalar (isotropic, never builds a d x d matrix, fine at d = 10^6), a (d,)
diagonal, or a full (d, d) symmetric positive definite matrix (stored by its eigendecomposition
Sigma = U diag(lambda) U^T, so C_t^{-1} = U diag(1/(m^2 lambda + s^2)) U^T for every t at once).
Isotropic and diagonal computations run in x's dtype; the full case computes in float64 and casts back.
"""
from __future__ import annotations

import math

import torch

from ..checks import check_int
from ..processes import expand_as
from ..rng import as_generator, randn
from .base import (LOG_2PI, Target, as_float64, check_scalar_time, check_spd, digest, noise_coeffs, row_sums,
                   sample_device)


class Gaussian(Target):
    """N(mean, cov) on R^d; cov a scalar (isotropic), a (d,) diagonal or a (d, d) SPD matrix."""

    def __init__(self, mean, cov):
        mean = as_float64("mean", mean)
        if mean.dim() != 1 or mean.numel() == 0:
            raise ValueError(f"mean must be a 1-D tensor of length d >= 1, got shape {tuple(mean.shape)}")
        d = mean.shape[0]
        cov = as_float64("cov", cov)
        self.mean = mean
        self.shape = (d,)
        self._zero_mean = bool((mean == 0).all())
        if cov.dim() == 0:
            if not cov.item() > 0:
                raise ValueError(f"cov (isotropic variance) must be > 0 (allowed range (0, inf)), got {cov.item()!r}")
            self.cov_type = "iso"
            self.var = cov.item()
        elif cov.dim() == 1:
            if cov.shape != (d,):
                raise ValueError(f"cov (diagonal) must have shape ({d},) to match mean, got {tuple(cov.shape)}")
            if not (cov > 0).all():
                raise ValueError(f"cov (diagonal) must have entries > 0, got minimum {cov.min().item()!r}")
            self.cov_type = "diag"
            self._diag = cov
        elif cov.dim() == 2:
            if cov.shape != (d, d):
                raise ValueError(f"cov (full) must have shape ({d}, {d}) to match mean, got {tuple(cov.shape)}")
            check_spd("cov", cov)
            cov = 0.5 * (cov + cov.T)
            self.cov_type = "full"
            self._cov = cov
            self._lam, self._U = torch.linalg.eigh(cov)
        else:
            raise ValueError(f"cov must be a scalar, a (d,) diagonal or a (d, d) matrix, got shape {tuple(cov.shape)}")

    # --- description ------------------------------------------------------------------------------------
    def _params(self):
        out = {"d": self.dim, "cov_type": self.cov_type, "mean": 0.0 if self._zero_mean else digest(self.mean)}
        if self.cov_type == "iso":
            out["cov"] = self.var
        else:
            out["cov"] = digest(self._diag if self.cov_type == "diag" else self._cov)
        return out

    def cov_matrix(self) -> torch.Tensor:
        """The full (d, d) covariance in float64 (for small d)."""
        if self.cov_type == "iso":
            return self.var * torch.eye(self.dim, dtype=torch.float64)
        if self.cov_type == "diag":
            return torch.diag(self._diag)
        return self._cov.clone()

    def eigvals(self) -> torch.Tensor:
        """Eigenvalues of the covariance, ascending, float64 (d,)."""
        if self.cov_type == "iso":
            return torch.full((self.dim,), self.var, dtype=torch.float64)
        if self.cov_type == "diag":
            return torch.sort(self._diag).values
        return self._lam.clone()

    # --- sampling -----------------------------------------------------------------------------------------
    def sample(self, n, *, generator=None, device=None, dtype=torch.float32):
        """x = mean + Sigma^{1/2} z, z ~ N(0, I); shape (n, d)."""
        n = check_int("n", n, low=0)
        generator = as_generator(generator, device)  # an int seed is welcome
        dev = sample_device(generator, device)
        if self.cov_type == "full":
            z = randn((n, self.dim), generator=generator, device=dev, dtype=torch.float64)
            U = self._cached("U", self._U, dev, torch.float64)
            root = self._cached("sqrt_lam", self._lam.sqrt(), dev, torch.float64)
            x = (z * root) @ U.T + self._cached("mean", self.mean, dev, torch.float64)
            return x.to(dtype)
        x = randn((n, self.dim), generator=generator, device=dev, dtype=dtype)
        if self.cov_type == "iso":
            x.mul_(math.sqrt(self.var))
        else:
            x.mul_(self._cached("sqrt_diag", self._diag.sqrt(), dev, dtype))
        if not self._zero_mean:
            x.add_(self._cached("mean", self.mean, dev, dtype))
        return x

    # --- densities and scores --------------------------------------------------------------------------------
    def _centered(self, x, m):
        """x - m mean, in x's dtype."""
        if self._zero_mean:
            return x
        return x - expand_as(m, x).to(x.dtype) * self._cached("mean", self.mean, x.device, x.dtype)

    def _log_density(self, x, m, s):
        """log N(x; m mean, m^2 Sigma + s^2 I), reductions in float64, returned in x's dtype."""
        d = self.dim
        if self.cov_type == "iso":
            c = m ** 2 * self.var + s ** 2
            _, q = row_sums(self._centered(x, m))
            out = -0.5 * q / c - 0.5 * d * (LOG_2PI + torch.log(c))
        else:
            diff = x.to(torch.float64) - expand_as(m, x) * self._cached("mean", self.mean, x.device, torch.float64)
            if self.cov_type == "diag":
                lam = self._cached("diag", self._diag, x.device, torch.float64)
                y = diff
            else:
                lam = self._cached("lam", self._lam, x.device, torch.float64)
                y = diff @ self._cached("U", self._U, x.device, torch.float64)
            c = expand_as(m ** 2, x) * lam + expand_as(s ** 2, x)
            out = -0.5 * (y ** 2 / c).sum(-1) - 0.5 * torch.log(c).sum(-1) - 0.5 * d * LOG_2PI
        return out.to(x.dtype)

    def _score(self, x, m, s):
        """-C^{-1}(x - m mean) with C = m^2 Sigma + s^2 I."""
        if self.cov_type == "iso":
            c = expand_as(m ** 2 * self.var + s ** 2, x).to(x.dtype)
            return self._centered(x, m) / (-c)
        if self.cov_type == "diag":
            c = (expand_as(m ** 2, x) * self._cached("diag", self._diag, x.device, torch.float64)
                 + expand_as(s ** 2, x)).to(x.dtype)
            return self._centered(x, m) / (-c)
        U = self._cached("U", self._U, x.device, torch.float64)
        lam = self._cached("lam", self._lam, x.device, torch.float64)
        diff = x.to(torch.float64) - expand_as(m, x) * self._cached("mean", self.mean, x.device, torch.float64)
        c = expand_as(m ** 2, x) * lam + expand_as(s ** 2, x)
        return (-((diff @ U) / c) @ U.T).to(x.dtype)

    def log_prob(self, x):
        """log N(x; mean, Sigma), shape x.shape[:-1]."""
        x = self._check_x(x)
        one = torch.ones((), dtype=torch.float64, device=x.device)
        return self._log_density(x, one, torch.zeros_like(one))

    def log_prob_t(self, x, t, process):
        """log p_t(x) = log N(x; m mean, m^2 Sigma + s^2 I)."""
        x = self._check_x(x)
        m, s = noise_coeffs(process, t, x)
        return self._log_density(x, m, s)

    def score(self, x, t, process):
        """grad log p_t(x) = -(m^2 Sigma + s^2 I)^{-1} (x - m mean), like x."""
        x = self._check_x(x)
        m, s = noise_coeffs(process, t, x)
        return self._score(x, m, s)

    def noised(self, t, process) -> "Gaussian":
        """p_t = N(m mean, m^2 Sigma + s^2 I) as a Gaussian, for a scalar time t."""
        check_scalar_time(t)
        ref = torch.zeros((1, self.dim))
        m, s = (v.item() for v in noise_coeffs(process, t, ref))
        if self.cov_type == "iso":
            cov = m ** 2 * self.var + s ** 2
        elif self.cov_type == "diag":
            cov = m ** 2 * self._diag + s ** 2
        else:
            cov = m ** 2 * self._cov + s ** 2 * torch.eye(self.dim, dtype=torch.float64)
        return Gaussian(m * self.mean, cov)
