"""I.i.d. Student-t coordinates, the heavy-tailed data of Fassina et al. (docs/theory.md §3.3 and §6.2).

Each coordinate is x = scale sqrt(W) G with G ~ N(0, 1) and W ~ InvGamma(df/2, df/2), so the noised law
is a scale mixture too: p_t(x) = E_W N(x; 0, m^2 scale^2 W + s^2) per coordinate, and the score is
  d/dx log p_t(x) = -x E_W[N / v] / E_W[N],  v = m^2 scale^2 W + s^2,  N = N(x; 0, v).
No closed form, but a 1-D integral: we integrate in u = log W with the trapezoidal rule (spectrally
accurate for these smooth, doubly-exponentially decaying integrands), on a range that covers the prior
bulk and, for far-out x, the point where v ~ x^2 (where the mass of the integrand moves). All in log
space (logsumexp over nodes), float64. This stays accurate for s -> 0 (Student-t score
-(df+1) x/(df scale^2 + x^2)) and for large s (-x/(s^2 + m^2 var)), unlike Gauss-Hermite in z.
df <= 2 is allowed (infinite variance; docs/theory.md §6.2 uses df = 1.5).

Sampling: torch has no Gamma sampler that takes a torch.Generator, so W comes from a Marsaglia-Tsang
Gamma sampler written with the generator (exact rejection method, runs on the generator's device).
"""
from __future__ import annotations

import math

import torch

from ..checks import check_int, check_positive
from ..rng import as_generator, randn
from .base import LOG_2PI, Target, noise_coeffs, sample_device

_TAIL = 30.0  # integrate until the integrand is below exp(-30) ~ 1e-13 of its peak


def standard_gamma(shape: float, size: int, *, generator=None, device=None) -> torch.Tensor:
    """Gamma(shape, 1) draws in float64 by Marsaglia-Tsang (2000) with the given generator.

    For shape < 1: Gamma(shape) = Gamma(shape + 1) U^{1/shape}.
    """
    shape = check_positive("shape", shape)
    generator = as_generator(generator, device)  # an int seed is welcome
    dev = sample_device(generator, device)
    a = shape + 1.0 if shape < 1 else shape
    d0 = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d0)
    out = torch.empty(size, dtype=torch.float64, device=dev)
    pending = torch.arange(size, device=dev)
    while pending.numel() > 0:
        k = pending.numel()
        z = torch.randn(k, generator=generator, device=dev, dtype=torch.float64)
        u = torch.rand(k, generator=generator, device=dev, dtype=torch.float64)
        v = (1.0 + c * z) ** 3
        safe_v = torch.where(v > 0, v, torch.ones_like(v))
        ok = (v > 0) & (torch.log(u) < 0.5 * z ** 2 + d0 - d0 * safe_v + d0 * torch.log(safe_v))
        out[pending[ok]] = d0 * v[ok]
        pending = pending[~ok]
    if shape < 1:
        u = torch.rand(size, generator=generator, device=dev, dtype=torch.float64)
        out = out * u ** (1.0 / shape)
    return out


class StudentT(Target):
    """d i.i.d. Student-t coordinates with `df` degrees of freedom and scale `scale`.

    `step` is the trapezoid spacing in log W (default min(0.25, 0.4 sqrt(2/df)): log p_t to ~1e-12).
    """

    def __init__(self, d: int, df: float, scale: float = 1.0, *, step: float | None = None):
        d = check_int("d", d, low=1)
        self.df = check_positive("df", df)
        self.scale = check_positive("scale", scale)
        self.shape = (d,)
        # trapezoid step in u = log W: the integrand has width ~ sqrt(2/df) in u near its bulk
        self.step = check_positive("step", step) if step is not None else min(0.25, 0.4 * math.sqrt(2.0 / self.df))

    def _params(self):
        return {"d": self.dim, "df": self.df, "scale": self.scale}

    @property
    def variance(self) -> float:
        """Per-coordinate variance scale^2 df/(df - 2), inf for df <= 2."""
        return self.scale ** 2 * self.df / (self.df - 2) if self.df > 2 else math.inf

    def quantile(self, q):
        """Per-coordinate quantile scale * t_df^{-1}(q) (scipy.stats.t.ppf); q a float or array."""
        from scipy.stats import t as student_t

        return self.scale * student_t.ppf(q, self.df)

    # --- sampling ----------------------------------------------------------------------------------------
    def sample(self, n, *, generator=None, device=None, dtype=torch.float32):
        """x = scale G sqrt(df / (2 Gamma(df/2))) coordinate-wise; shape (n, d)."""
        n = check_int("n", n, low=0)
        generator = as_generator(generator, device)  # an int seed is welcome
        dev = sample_device(generator, device)
        g = randn((n, self.dim), generator=generator, device=dev, dtype=torch.float64)
        gam = standard_gamma(0.5 * self.df, n * self.dim, generator=generator, device=dev).reshape(n, self.dim)
        return (self.scale * g * torch.sqrt(0.5 * self.df / gam)).to(dtype)

    # --- densities -----------------------------------------------------------------------------------------
    def log_prob(self, x):
        """sum_i log t_df(x_i / scale) - d log scale (closed form), shape x.shape[:-1]."""
        x = self._check_x(x)
        nu = self.df
        const = math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2) - 0.5 * math.log(nu * math.pi) - math.log(self.scale)
        z2 = (x.to(torch.float64) / self.scale) ** 2
        return (self.dim * const - 0.5 * (nu + 1) * torch.log1p(z2 / nu).sum(-1)).to(x.dtype)

    def score0(self, x):
        """Score of the data law itself (t = 0): -(df + 1) x / (df scale^2 + x^2), like x."""
        x = self._check_x(x)
        return -(self.df + 1) * x / (self.df * self.scale ** 2 + x ** 2)

    def _nodes(self, x2max: float, m: torch.Tensor, s: torch.Tensor):
        """Trapezoid nodes u_j = log W_j and log weights log(step * density of log W at u_j), float64 (J,)."""
        a = b = 0.5 * self.df
        # lower end: the integrand in u is at most prior(u) v^{-3/2} with v >= m^2 scale^2 e^u, i.e.
        # exp(-(a + 3/2) u - b e^{-u}), peaked at u0 = log(b/(a + 3/2)); go down until it has fallen by e^-TAIL
        r = a + 1.5
        u0 = math.log(b / r)
        psi = lambda u: -r * u - b * math.exp(-u)  # noqa: E731
        lo, hi = u0 - 60.0, u0
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if psi(u0) - psi(mid) > _TAIL else (lo, mid)
        u_lo = lo
        # upper end: past the "knee" where m^2 scale^2 W exceeds both x^2 and s^2, the integrand decays
        # like exp(-(a + 1/2) u); before it, anything can happen, so the grid covers it
        ms2 = (m ** 2 * self.scale ** 2).min().item()
        if ms2 > 0:
            knee = max(0.0, math.log(max(x2max, (s ** 2).max().item(), 1e-300) / ms2))
            u_hi = knee + _TAIL / (a + 0.5) + 1.0
        else:  # m = 0: v = s^2 does not depend on W, only the prior's tail exp(-a u) matters
            u_hi = _TAIL / a + 1.0
        n_nodes = int(math.ceil((u_hi - u_lo) / self.step)) + 1
        u = u_lo + self.step * torch.arange(n_nodes, dtype=torch.float64)
        log_w = (math.log(self.step) + a * math.log(b) - math.lgamma(a)) - a * u - b * torch.exp(-u)
        return u, log_w

    def _integrals(self, x, m, s):
        """Per coordinate, in float64: log p_t(x_i) and the ratio E_W[N/v]/E_W[N] (score = -x * ratio)."""
        x64 = x.to(torch.float64)
        flat = x64.reshape(-1, self.dim)
        per_sample = m.dim() == 1
        x2max = (flat ** 2).max().item() if flat.numel() else 0.0
        u, log_w = self._nodes(x2max, m, s)
        u, log_w = u.to(x.device), log_w.to(x.device)
        W = torch.exp(u)
        J = u.shape[0]
        rows = max(1, (1 << 22) // (self.dim * J))
        log_p, ratio = [], []
        for start in range(0, flat.shape[0], rows):
            block = flat[start:start + rows]
            if per_sample:
                mb, sb = m[start:start + rows, None, None], s[start:start + rows, None, None]
            else:
                mb, sb = m, s
            v = mb ** 2 * self.scale ** 2 * W + sb ** 2  # (J,) or (r, 1, J)
            # log of (weight_j * N(x; 0, v_j)) for every coordinate and node: (r, d, J)
            L = (log_w - 0.5 * (LOG_2PI + torch.log(v))) - block[..., None] ** 2 * (0.5 / v)
            L_max = L.amax(dim=-1, keepdim=True)
            e = torch.exp(L - L_max)
            s0 = e.sum(-1)  # E_W[N] / exp(L_max)
            s1 = (e * (1.0 / v)).sum(-1)  # E_W[N / v] / exp(L_max)
            log_p.append(L_max[..., 0] + torch.log(s0))
            ratio.append(s1 / s0)
        shape = x.shape
        if not log_p:
            empty = torch.zeros(shape, dtype=torch.float64, device=x.device)
            return empty, empty.clone()
        return torch.cat(log_p).reshape(shape), torch.cat(ratio).reshape(shape)

    def log_prob_t(self, x, t, process):
        """log p_t(x) = sum_i log E_W N(x_i; 0, m^2 scale^2 W + s^2) by quadrature in log W, shape x.shape[:-1]."""
        x = self._check_x(x)
        m, s = noise_coeffs(process, t, x)
        log_p, _ = self._integrals(x, m, s)
        return log_p.sum(-1).to(x.dtype)

    def score(self, x, t, process):
        """grad log p_t(x) = -x E_W[N/v] / E_W[N] per coordinate (quadrature in log W, float64), like x."""
        x = self._check_x(x)
        m, s = noise_coeffs(process, t, x)
        _, ratio = self._integrals(x, m, s)
        return (-x.to(torch.float64) * ratio).to(x.dtype)
