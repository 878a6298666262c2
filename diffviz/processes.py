"""Forward noising processes  dx = f(t) x dt + g(t) dW,  with marginal  x_t = m(t) x_0 + s(t) z.

Every process is described by its marginal (`mean_scale` m, `std` s) and by the SDE coefficients
(`f`, `g2` = g^2) that are consistent with it:  f = d log m / dt,  g^2 = d(s^2)/dt - 2 f s^2.
Time runs forward from data (t = 0) to noise (t = T); samplers run it backwards on a decreasing grid.

Times may be Python floats (computed in float64) or tensors of any shape; a tensor of shape (n,)
broadcasts against a batch x of shape (n, ...) in `drift` and `marginal`.
Times are checked: NaN, inf and t < 0 raise a ValueError (and t > 1 for an `Interpolant`, whose time has an
end); VP, sub-VP and VE accept t > T, where their formulas simply continue (a longer horizon of the same
process). Floats and CPU tensors are checked; CUDA tensors are not (reading them back would stall the device).
"""
from __future__ import annotations

import math

import torch

from .checks import check_choice, check_positive, check_range
from .rng import randn


def as_time(t) -> torch.Tensor:
    """A time as a tensor: floats become float64 scalars, tensors pass unchanged; TypeError for other types."""
    if isinstance(t, torch.Tensor):
        return t
    if t is None or isinstance(t, (str, bytes, bool)):
        raise TypeError(f"t must be a real number or a torch.Tensor of times, got {type(t).__name__} {t!r}")
    return torch.tensor(float(t), dtype=torch.float64)


def check_process(process):
    """Return `process`, or raise TypeError unless it looks like a `Process` (T, mean_scale, std, f, g2)."""
    if not all(hasattr(process, a) for a in ("T", "mean_scale", "std", "f", "g2")):
        raise TypeError(f"process must be a diffviz process such as VP(), SubVP(), VE() or Interpolant(), "
                        f"got {type(process).__name__} {process!r}")
    return process


def expand_as(coef: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape a per-sample coefficient (shape () or (n,)) so that it broadcasts against x of shape (n, ...)."""
    if coef.dim() == 0:
        return coef
    if coef.dim() == 1 and coef.shape[0] == x.shape[0]:
        return coef.reshape(coef.shape[0], *([1] * (x.dim() - 1)))
    raise ValueError(f"t must be a scalar or have shape ({x.shape[0]},) to match x of shape {tuple(x.shape)}, "
                     f"got shape {tuple(coef.shape)}")


class Process:
    """Base class: subclasses define `mean_scale`, `std`, `f`, `g2`; the rest follows."""

    T: float = 1.0  # horizon: the forward process runs on [0, T]
    t_min: float = 0.0  # default end of reverse-time grids (small > 0 where the score blows up at t = 0)
    t_end: float = math.inf  # largest valid time: the formulas continue past T unless a subclass says otherwise

    def time(self, t) -> torch.Tensor:
        """t as a tensor (`as_time`), or ValueError unless it lies in [0, t_end] (CUDA tensors pass unchecked)."""
        t = as_time(t)
        if t.device.type != "cpu" or t.numel() == 0:
            return t
        lo, hi = (t.item(),) * 2 if t.numel() == 1 else (v.item() for v in torch.aminmax(t.detach()))
        if not (lo >= 0 and hi <= self.t_end * (1 + 1e-9) and math.isfinite(hi)):  # NaN fails; slack at t_end
            got = repr(lo) if t.numel() == 1 else "a NaN" if math.isnan(lo) else f"values in [{lo!r}, {hi!r}]"
            end = f"{self.t_end:g}]" if math.isfinite(self.t_end) else "inf)"
            raise ValueError(f"t must be a finite time in [0, {end} for {type(self).__name__} (t = 0 is the data, "
                             f"T = {self.T:g} the horizon), got {got}")
        return t

    # --- marginal and SDE coefficients (override) -------------------------------------------------
    def mean_scale(self, t) -> torch.Tensor:
        """m(t): E[x_t | x_0] = m(t) x_0."""
        raise NotImplementedError

    def std(self, t) -> torch.Tensor:
        """s(t): Std[x_t | x_0] = s(t) (isotropic)."""
        raise NotImplementedError

    def f(self, t) -> torch.Tensor:
        """Drift coefficient f(t) = d log m / dt."""
        raise NotImplementedError

    def g2(self, t) -> torch.Tensor:
        """Squared diffusion coefficient g(t)^2 = d(s^2)/dt - 2 f s^2."""
        raise NotImplementedError

    # --- derived ----------------------------------------------------------------------------------
    def drift(self, x: torch.Tensor, t) -> torch.Tensor:
        """Forward drift f(t) x, same shape as x."""
        return expand_as(self.f(t), x).to(x.dtype) * x

    def diffusion(self, t) -> torch.Tensor:
        """g(t)."""
        return torch.sqrt(self.g2(t))

    def var(self, t) -> torch.Tensor:
        """s(t)^2."""
        return self.std(t) ** 2

    def sigma(self, t) -> torch.Tensor:
        """Noise-to-signal ratio s(t)/m(t) (the EDM 'sigma'); log-SNR = -2 log sigma."""
        return self.std(t) / self.mean_scale(t)

    def t_of_sigma(self, sigma) -> torch.Tensor:
        """Inverse of `sigma` on [0, T] by bisection in float64 (subclasses give closed forms)."""
        target = as_time(sigma).to(torch.float64)
        lo = torch.zeros_like(target)
        hi = torch.full_like(target, self.T)
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            below = self.sigma(mid) < target
            lo = torch.where(below, mid, lo)
            hi = torch.where(below, hi, mid)
        return 0.5 * (lo + hi)

    def prior_std(self) -> float:
        """Standard deviation of the reference distribution the reverse process starts from."""
        return 1.0

    def prior(self, d: int):
        """The reference N(0, prior_std^2 I_d) as a `diffviz.targets.Gaussian` (sample, log_prob, score)."""
        from .targets import Gaussian

        d = int(d)
        return Gaussian(torch.zeros(d, dtype=torch.float64), self.prior_std() ** 2)

    def marginal(self, x0: torch.Tensor, t, *, generator: torch.Generator | None = None):
        """Draw x_t = m(t) x_0 + s(t) z; returns (x_t, z)."""
        z = randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        t = as_time(t)
        m = expand_as(self.mean_scale(t), x0).to(x0.dtype).to(x0.device)
        s = expand_as(self.std(t), x0).to(x0.dtype).to(x0.device)
        return m * x0 + s * z, z

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({fields})"

    def _params(self) -> dict:
        return {}

    def key(self) -> dict:
        """Everything that defines the process, for cache keys and figure labels."""
        return {"process": type(self).__name__, **self._params()}


class VP(Process):
    """Variance preserving: beta(t) = beta_min + t (beta_max - beta_min), m = exp(-B/2), s^2 = 1 - m^2 (Song et al. 2021)."""

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, T: float = 1.0, t_min: float = 1e-3):
        self.beta_min = check_positive("beta_min", beta_min)
        self.beta_max = check_range("beta_max", beta_max, self.beta_min, math.inf)
        self.T = check_positive("T", T)
        self.t_min = check_range("t_min", t_min, 0.0, self.T, high_open=True)

    def _params(self):
        return {"beta_min": self.beta_min, "beta_max": self.beta_max, "T": self.T}

    def beta(self, t):
        """beta(t) = beta_min + t (beta_max - beta_min)."""
        return self.beta_min + self.time(t) * (self.beta_max - self.beta_min)

    def B(self, t):
        """B(t) = int_0^t beta = beta_min t + (beta_max - beta_min) t^2 / 2."""
        t = self.time(t)
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t ** 2

    def mean_scale(self, t):
        return torch.exp(-0.5 * self.B(t))

    def std(self, t):
        return torch.sqrt(-torch.expm1(-self.B(t)))

    def f(self, t):
        return -0.5 * self.beta(t)

    def g2(self, t):
        return self.beta(t)

    def sigma(self, t):
        return torch.sqrt(torch.expm1(self.B(t)))

    def t_of_sigma(self, sigma):
        b = torch.log1p(as_time(sigma).to(torch.float64) ** 2)  # B(t) = log(1 + sigma^2)
        a = 0.5 * (self.beta_max - self.beta_min)
        if a == 0:
            return b / self.beta_min
        return (-self.beta_min + torch.sqrt(self.beta_min ** 2 + 4 * a * b)) / (2 * a)


class SubVP(VP):
    """Sub-VP: m = exp(-B/2), s = 1 - exp(-B), g^2 = beta (1 - exp(-2B)) (Song et al. 2021)."""

    def std(self, t):
        return -torch.expm1(-self.B(t))

    def g2(self, t):
        return -self.beta(t) * torch.expm1(-2 * self.B(t))

    def sigma(self, t):
        return self.std(t) / self.mean_scale(t)

    def t_of_sigma(self, sigma):
        return Process.t_of_sigma(self, sigma)


class VE(Process):
    """Variance exploding: s(t) = sigma(t) = sigma_min (sigma_max/sigma_min)^t, m = 1, f = 0, g^2 = d sigma^2/dt.

    diffviz convention: x_t = x_0 + sigma(t) z, so sigma_min acts as a tiny smoothing of the data at t = 0.
    Set the horizon either by `T` (default 1) or by its noise level `sigma_T` (T = log(sigma_T/sigma_min)
    / log(sigma_max/sigma_min); sigma_T above sigma_max continues the geometric schedule). The reverse
    process starts from the prior N(0, sigma_T^2 I).
    """

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0, T: float | None = None,
                 sigma_T: float | None = None):
        self.sigma_min = check_positive("sigma_min", sigma_min)
        self.sigma_max = check_range("sigma_max", sigma_max, self.sigma_min, math.inf, low_open=True)
        self._log_ratio = math.log(self.sigma_max / self.sigma_min)
        if T is not None and sigma_T is not None:
            raise ValueError("give the VE horizon either as T or as sigma_T, not both")
        if sigma_T is not None:
            sigma_T = check_range("sigma_T", sigma_T, self.sigma_min, math.inf, low_open=True)
            self.T = math.log(sigma_T / self.sigma_min) / self._log_ratio
        else:
            self.T = check_positive("T", 1.0 if T is None else T)
        self.t_min = 0.0

    def _params(self):
        return {"sigma_min": self.sigma_min, "sigma_max": self.sigma_max, "sigma_T": self.sigma_T}

    @property
    def sigma_T(self) -> float:
        """Noise level at the horizon, sigma(T)."""
        return self.sigma_min * math.exp(self._log_ratio * self.T)

    def mean_scale(self, t):
        return torch.ones_like(self.time(t))

    def std(self, t):
        return self.sigma_min * torch.exp(self._log_ratio * self.time(t))

    def f(self, t):
        return torch.zeros_like(self.time(t))

    def g2(self, t):
        return 2 * self._log_ratio * self.std(t) ** 2

    def sigma(self, t):
        return self.std(t)

    def t_of_sigma(self, sigma):
        return torch.log(as_time(sigma).to(torch.float64) / self.sigma_min) / self._log_ratio

    def prior_std(self) -> float:
        return self.sigma_T


class Interpolant(Process):
    """Stochastic interpolant I_tau = alpha(tau) z + beta(tau) x_1 (Aranguri et al. 2025), as a diffusion process.

    alpha = c (1 - tau), beta = tau, with c = 1 ("vp") or c = sqrt(d) ("ve"); data at tau = 1, noise at tau = 0.
    Their sampling time u in [0, 1] runs noise -> data with a dilation tau = tau(u); here the diffusion time
    t = 1 - u runs data -> noise, so m(t) = tau(1 - t), s(t) = c (1 - tau(1 - t)), prior N(0, c^2 I_d).
    Dilations (eps = kappa / sqrt(d)): "none" tau = u; "dilated" VP tau = 2 eps u on [0, 1/2], then
    eps + (1 - eps)(2u - 1); "dilated" VE tau = 2 (1 - eps) u on [0, 1/2], then 1 - eps + eps (2u - 1).
    The probability-flow ODE is best run in the velocity form dX/du = tau'(u) b(X, tau) (`velocity`),
    which stays finite at the noise end where m = 0.
    """

    def __init__(self, kind: str = "vp", dilation: str = "none", d: int = 1000, kappa: float = 3.0):
        self.kind = check_choice("kind", kind, {"vp", "ve"})
        self.dilation = check_choice("dilation", dilation, {"none", "dilated"})
        if isinstance(d, bool) or not float(d).is_integer() or int(d) < 1:
            raise ValueError(f"d must be an integer >= 1, got {d!r}")
        self.d = int(d)
        self.kappa = check_positive("kappa", kappa)
        self.c = math.sqrt(self.d) if self.kind == "ve" else 1.0
        self.eps = self.kappa / math.sqrt(self.d)
        if self.dilation == "dilated" and not self.eps < 1:
            raise ValueError(f"dilated schedules need kappa/sqrt(d) < 1, i.e. d > kappa^2 = {self.kappa ** 2:g}; "
                             f"got d={self.d}, kappa={self.kappa}")
        self.T = 1.0
        self.t_min = 0.0
        self.t_end = 1.0  # t = 1 - u: outside [0, 1] the coefficients change sign

    def _params(self):
        return {"kind": self.kind, "dilation": self.dilation, "d": self.d, "kappa": self.kappa}

    # --- interpolant coefficients in tau ------------------------------------------------------------
    def alpha(self, tau):
        """alpha(tau) = c (1 - tau)."""
        return self.c * (1 - as_time(tau))

    def beta(self, tau):
        """beta(tau) = tau."""
        return as_time(tau) * 1.0

    def dalpha(self, tau):
        """d alpha / d tau = -c."""
        return torch.full_like(as_time(tau), -self.c)

    def dbeta(self, tau):
        """d beta / d tau = 1."""
        return torch.ones_like(as_time(tau))

    # --- the time dilation u -> tau -------------------------------------------------------------------
    def _pieces(self):
        if self.dilation == "none":
            return 0.5, 0.5  # tau(1/2) and tau(1) - tau(1/2)
        first = self.eps if self.kind == "vp" else 1 - self.eps
        return first, 1 - first

    def tau(self, u):
        """Dilation tau(u), u in [0, 1] (sampling time, noise -> data)."""
        u = as_time(u)
        a, b = self._pieces()
        return torch.where(u <= 0.5, 2 * a * u, a + b * (2 * u - 1))

    def dtau(self, u):
        """tau'(u), piecewise constant; at the kink u = 1/2 the right derivative (forward Euler steps need it)."""
        u = as_time(u)
        a, b = self._pieces()
        return torch.where(u < 0.5, torch.full_like(u, 2 * a), torch.full_like(u, 2 * b))

    # --- Process interface (diffusion time t = 1 - u) ------------------------------------------------
    def mean_scale(self, t):
        return self.beta(self.tau(1 - self.time(t)))

    def std(self, t):
        return self.alpha(self.tau(1 - self.time(t)))

    def f(self, t):
        u = 1 - self.time(t)
        return -self.dtau(u) / self.tau(u)

    def g2(self, t):
        u = 1 - self.time(t)
        tau, dtau = self.tau(u), self.dtau(u)
        return 2 * self.c ** 2 * dtau * (1 - tau) / tau

    def prior_std(self) -> float:
        return self.c

    def velocity(self, eps_hat: torch.Tensor, x1_hat: torch.Tensor, u) -> torch.Tensor:
        """dX/du = tau'(u) [alpha'(tau) E[z|x] + beta'(tau) E[x_1|x]] from the two posterior means."""
        u = as_time(u)
        tau = self.tau(u)
        dt = self.dtau(u)
        return (dt * self.dalpha(tau)).to(eps_hat.dtype) * eps_hat + (dt * self.dbeta(tau)).to(x1_hat.dtype) * x1_hat
