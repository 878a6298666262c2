"""Initial distributions nu for the reverse process: the prior, fitted ("auxiliary") models of p_T, the oracle.

The reverse process starts from x_T ~ nu. The price of nu != p_T is the term KL(p_T || nu) of the bounds of
Franzese et al. (docs/theory.md §5.3) and Fassina et al. (§6.3). p_T has free samples: x_T = m(T) x_0 + s(T) z with x_0
from the data (`forward_samples`), so nu can be fitted to them by maximum likelihood:

- `StandardPrior(process, d)`: the usual N(0, prior_std^2 I) (nothing to fit).
- `MomentMatchedGaussian()`: N(mean, cov) of the samples (full or diagonal covariance, small ridge).
- `GMMInit(n_components)`: a Gaussian mixture fitted by EM (k-means++ start, log-space E-step, covariance floor).
- `FlowInit()`: a small RealNVP (affine couplings with alternating masks) trained by maximum likelihood.
- `StudentTInit()`: independent Student-t coordinates (location, scale, df) fitted by the ECM algorithm.
- `OracleInit(target, process)`: p_T itself, by forward-noising fresh data (exact log_prob where p_T has one).

Every init has `fit(x) -> self`, `sample(n, *, generator=None, device=None, dtype=torch.float32)` and
`log_prob(x)` (float64, shape (n,)), `key()`. Samples x may have any event shape, e.g. images (n, 1, 8, 8):
inits model the flattened vector and give samples back in the shape they were fitted on. All plug into any
sampler as the initial batch: `x_init = init.sample(n, generator=g)`.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn

from .checks import check_choice, check_int, check_positive, check_range
from .processes import as_time
from .rng import make_generator, randn

F64 = torch.float64
LOG_2PI = math.log(2 * math.pi)

__all__ = [
    "FlowInit",
    "GMMInit",
    "Init",
    "MomentMatchedGaussian",
    "OracleInit",
    "StandardPrior",
    "StudentTInit",
    "forward_samples",
]


def _sample_device(generator, device) -> torch.device:
    from .targets.base import sample_device

    return sample_device(generator, device)


def _digest(*tensors) -> str:
    from .targets.base import digest

    return digest(*tensors)


def forward_samples(target, process, n: int, *, t=None, generator: torch.Generator | None = None, device=None,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """n free samples x_t = m(t) x_0 + s(t) z of p_t (x_0 ~ target, t default process.T), shape (n, *target.shape)."""
    n = check_int("n", n, low=1)
    t = float(process.T) if t is None else check_range("t", t, 0.0, math.inf)
    x0 = target.sample(n, generator=generator, device=device, dtype=dtype)
    xt, _ = process.marginal(x0, t, generator=generator)
    return xt


class Init:
    """Base class: remembers the event shape at `fit`; subclasses implement `_fit`, `_sample`, `_log_prob` on (n, d)."""

    def __init__(self):
        self._shape: tuple | None = None

    # --- shape bookkeeping ------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        """Event shape of the samples it was fitted on, e.g. (d,) or (1, 8, 8)."""
        self._require_fitted()
        return self._shape

    @property
    def dim(self) -> int:
        """Flattened dimension d."""
        return math.prod(self.shape)

    @property
    def fitted(self) -> bool:
        return self._shape is not None

    def _require_fitted(self):
        if self._shape is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call .fit(x) with samples of p_T first")

    def _fit_input(self, x, min_n: int = 2) -> torch.Tensor:
        """Validate the fitting samples (n, *shape) and return them flattened to (n, d); records the shape."""
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise ValueError(f"x must be a floating-point torch.Tensor of shape (n, d), got {type(x).__name__}"
                             + (f" of dtype {x.dtype}" if isinstance(x, torch.Tensor) else ""))
        if x.dim() < 2:
            raise ValueError(f"x must have shape (n, d) or (n, *event_shape), got shape {tuple(x.shape)}")
        if x.shape[0] < min_n:
            raise ValueError(f"x must hold at least {min_n} samples to fit {type(self).__name__}, got {x.shape[0]}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError("x must be finite (it holds NaN or inf)")
        self._shape = tuple(x.shape[1:])
        return x.detach().reshape(x.shape[0], -1)

    def _flat(self, x, name: str = "x") -> torch.Tensor:
        """x of shape (n, *shape) -> (n, d), or ValueError naming the mismatch."""
        self._require_fitted()
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise ValueError(f"{name} must be a floating-point torch.Tensor, got {type(x).__name__}")
        k = len(self._shape)
        if x.dim() != k + 1 or tuple(x.shape[1:]) != self._shape:
            raise ValueError(f"{name} must have shape (n, {', '.join(map(str, self._shape))}) to match the fitted "
                             f"samples, got {tuple(x.shape)}")
        return x.reshape(x.shape[0], -1)

    # --- the interface ------------------------------------------------------------------------------------
    def fit(self, x: torch.Tensor) -> "Init":
        """Fit to samples x of p_T, shape (n, *event_shape); returns self."""
        flat = self._fit_input(x)
        self._fit(flat)
        return self

    def sample(self, n: int, *, generator: torch.Generator | None = None, device=None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """n draws, shape (n, *shape), on the generator's device (else `device`)."""
        self._require_fitted()
        n = check_int("n", n, low=0)
        dev = _sample_device(generator, device)
        out = self._sample(n, generator, dev)
        return out.to(dtype).reshape(n, *self._shape)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log nu(x) in float64, shape (n,)."""
        flat = self._flat(x)
        return self._log_prob(flat.to(F64))

    def key(self) -> dict:
        """Hyperparameters and (once fitted) a digest of the fitted parameters, for cache keys and labels."""
        out = {"init": type(self).__name__, **self._params()}
        out["fit"] = self._fit_digest() if self.fitted else None
        return out

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({fields})"

    # --- for subclasses ---------------------------------------------------------------------------------
    def _params(self) -> dict:
        return {}

    def _fit_digest(self) -> str:
        return ""

    def _fit(self, x: torch.Tensor) -> None:
        raise NotImplementedError

    def _sample(self, n: int, generator, device) -> torch.Tensor:
        raise NotImplementedError

    def _log_prob(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


# --- Gaussian pieces (float64) ------------------------------------------------------------------------------
def _gauss_log_prob_full(x, mean, chol):
    """log N(x; mean, L L^T) for x (n, d), via a triangular solve."""
    d = x.shape[-1]
    y = torch.linalg.solve_triangular(chol, (x - mean).T, upper=False)
    return -0.5 * (y ** 2).sum(0) - torch.log(torch.diagonal(chol)).sum() - 0.5 * d * LOG_2PI


def _gauss_log_prob_diag(x, mean, var):
    """log N(x; mean, diag(var)) for x (n, d)."""
    d = x.shape[-1]
    return -0.5 * (((x - mean) ** 2) / var).sum(-1) - 0.5 * torch.log(var).sum() - 0.5 * d * LOG_2PI


# --- the standard prior -------------------------------------------------------------------------------------
class StandardPrior(Init):
    """nu = process.prior(d) = N(0, prior_std^2 I_d), the usual start of the reverse process; `fit` checks the shape."""

    def __init__(self, process, d: int):
        super().__init__()
        self.process = process
        self.d = check_int("d", d, low=1)
        self.std = float(process.prior_std())
        self._shape = (self.d,)

    def _params(self):
        return {"process": self.process.key(), "d": self.d}

    def _fit_digest(self):
        return "none"

    def fit(self, x):
        """No parameters: checks that x has d coordinates and adopts its event shape; returns self."""
        if isinstance(x, torch.Tensor) and x.dim() >= 2 and math.prod(x.shape[1:]) != self.d:
            raise ValueError(f"x must have d = {self.d} coordinates per sample to match the prior, got shape "
                             f"{tuple(x.shape)}")
        self._fit_input(x, min_n=0)
        return self

    def _sample(self, n, generator, device):
        return self.std * randn((n, self.d), generator=generator, device=device, dtype=F64)

    def _log_prob(self, x):
        return _gauss_log_prob_diag(x, torch.zeros((), dtype=F64, device=x.device),
                                    torch.full((self.d,), self.std ** 2, dtype=F64, device=x.device))


# --- moment matching ----------------------------------------------------------------------------------------
class MomentMatchedGaussian(Init):
    """nu = N(mean, cov) of the samples (maximum likelihood), cov + ridge * (tr cov / d) I for stability.

    covariance="full" (d x d, Cholesky) or "diag" (per-coordinate variances; use it for large d, where a full
    covariance needs n >> d samples and d^2 memory).
    """

    def __init__(self, covariance: str = "full", ridge: float = 1e-6):
        super().__init__()
        self.covariance = check_choice("covariance", covariance, {"full", "diag"})
        self.ridge = check_range("ridge", ridge, 0.0, math.inf)

    def _params(self):
        return {"covariance": self.covariance, "ridge": self.ridge}

    def _fit_digest(self):
        return _digest(self.mean, self.cov)

    def _fit(self, x):
        x = x.to(F64)
        d = x.shape[1]
        self.mean = x.mean(0)
        xc = x - self.mean
        if self.covariance == "full":
            cov = xc.T @ xc / x.shape[0]
            cov = 0.5 * (cov + cov.T)
            floor = self.ridge * max(torch.diagonal(cov).mean().item(), 1e-300)
            self.cov = cov + floor * torch.eye(d, dtype=F64, device=x.device)
            chol, info = torch.linalg.cholesky_ex(self.cov)
            if int(info) != 0:
                raise ValueError("the sample covariance is singular even with the ridge; increase ridge "
                                 f"(got {self.ridge}) or use covariance='diag'")
            self.chol = chol
        else:
            var = (xc ** 2).mean(0)
            floor = self.ridge * max(var.mean().item(), 1e-300)
            self.cov = var + floor
            if not bool((self.cov > 0).all()):
                raise ValueError("a coordinate has zero variance; use ridge > 0")

    def _sample(self, n, generator, device):
        z = randn((n, self.mean.shape[0]), generator=generator, device=device, dtype=F64)
        mean = self.mean.to(device)
        if self.covariance == "full":
            return mean + z @ self.chol.to(device).T
        return mean + z * self.cov.to(device).sqrt()

    def _log_prob(self, x):
        mean = self.mean.to(x.device)
        if self.covariance == "full":
            return _gauss_log_prob_full(x, mean, self.chol.to(x.device))
        return _gauss_log_prob_diag(x, mean, self.cov.to(x.device))


# --- Gaussian mixture by EM ---------------------------------------------------------------------------------
class GMMInit(Init):
    """nu = sum_k w_k N(mu_k, Sigma_k) fitted by EM (Dempster et al. 1977) in float64.

    Start: k-means++ seeding (Arthur & Vassilvitskii 2007) + 10 Lloyd steps, or K random samples as means
    (init="random"); randomness from `seed` (or the generator given to `fit`). E-step in log space (logsumexp);
    M-step with a covariance floor reg_covar * (mean per-coordinate variance of x) on the diagonal, so no
    component collapses onto a point. Stops when the mean log-likelihood gains less than `tol` per iteration.
    Fitted: `weights` (K,), `means` (K, d), `covs` (K, d, d) or (K, d), `log_likelihood_`, `n_iter_`, `converged_`.
    """

    def __init__(self, n_components: int = 8, covariance: str = "full", n_iter: int = 200, tol: float = 1e-6,
                 seed: int = 0, init: str = "kmeans++", reg_covar: float = 1e-6):
        super().__init__()
        self.n_components = check_int("n_components", n_components, low=1)
        self.covariance = check_choice("covariance", covariance, {"full", "diag"})
        self.n_iter = check_int("n_iter", n_iter, low=1)
        self.tol = check_range("tol", tol, 0.0, math.inf)
        self.seed = check_int("seed", seed, low=0)
        self.init = check_choice("init", init, {"kmeans++", "random"})
        self.reg_covar = check_range("reg_covar", reg_covar, 0.0, math.inf)

    def _params(self):
        return {"n_components": self.n_components, "covariance": self.covariance, "n_iter": self.n_iter,
                "tol": self.tol, "seed": self.seed, "init": self.init, "reg_covar": self.reg_covar}

    def _fit_digest(self):
        return _digest(self.weights, self.means, self.covs)

    def fit(self, x, *, generator: torch.Generator | None = None):
        """EM on samples x (n, *shape), n >= n_components; `generator` overrides `seed` for the start; returns self."""
        flat = self._fit_input(x, min_n=2)
        if flat.shape[0] < self.n_components:
            raise ValueError(f"n_components must be <= the number of samples n = {flat.shape[0]}, "
                             f"got n_components={self.n_components}")
        gen = generator if generator is not None else make_generator(self.seed, flat.device)
        self._fit(flat, gen)
        return self

    # --- EM pieces ----------------------------------------------------------------------------------
    def _start_means(self, x, gen):
        n, K = x.shape[0], self.n_components
        if self.init == "random":
            idx = torch.randperm(n, generator=gen, device=gen.device)[:K].to(x.device)
            return x[idx].clone()
        first = torch.randint(0, n, (1,), generator=gen, device=gen.device).to(x.device)
        centers = [x[first[0]]]
        d2 = ((x - centers[0]) ** 2).sum(-1)
        for _ in range(1, K):
            total = d2.sum()
            probs = d2 / total if total > 0 else torch.full_like(d2, 1.0 / n)
            j = torch.multinomial(probs.to(gen.device), 1, generator=gen).to(x.device)
            centers.append(x[j[0]])
            d2 = torch.minimum(d2, ((x - centers[-1]) ** 2).sum(-1))
        means = torch.stack(centers)
        for _ in range(10):  # Lloyd refinement
            label = torch.cdist(x, means).argmin(-1)
            for k in range(K):
                members = x[label == k]
                if members.shape[0] > 0:
                    means[k] = members.mean(0)
        return means

    def _log_joint(self, x, weights, means, covs, chol):
        """log w_k + log N(x; mu_k, Sigma_k), shape (n, K)."""
        K, d = means.shape
        if self.covariance == "diag":
            prec = 1.0 / covs  # (K, d)
            quad = (x ** 2) @ prec.T - 2 * x @ (means * prec).T + (means ** 2 * prec).sum(-1)
            logdet = torch.log(covs).sum(-1)
            return torch.log(weights) - 0.5 * (quad.clamp_min(0) + logdet + d * LOG_2PI)
        cols = [_gauss_log_prob_full(x, means[k], chol[k]) for k in range(K)]
        return torch.log(weights) + torch.stack(cols, -1)

    def _m_step(self, x, resp, floor):
        n, d = x.shape
        nk = resp.sum(0) + 10 * torch.finfo(F64).eps  # (K,)
        weights = nk / nk.sum()
        means = (resp.T @ x) / nk[:, None]
        if self.covariance == "diag":
            covs = (resp.T @ (x ** 2)) / nk[:, None] - means ** 2
            return weights, means, covs.clamp_min(0) + floor, None
        eye = torch.eye(d, dtype=F64, device=x.device)
        covs = []
        for k in range(self.n_components):
            xc = x - means[k]
            c = (resp[:, k:k + 1] * xc).T @ xc / nk[k]
            covs.append(0.5 * (c + c.T) + floor * eye)
        covs = torch.stack(covs)
        chol, info = torch.linalg.cholesky_ex(covs)
        if bool((info != 0).any()):
            raise ValueError(f"a GMM component covariance became singular; increase reg_covar (got {self.reg_covar})")
        return weights, means, covs, chol

    def _fit(self, x, gen):
        x = x.to(F64)
        n = x.shape[0]
        floor = self.reg_covar * max((x - x.mean(0)).pow(2).mean().item(), 1e-300)
        means = self._start_means(x, gen)
        label = torch.cdist(x, means).argmin(-1)
        resp = torch.nn.functional.one_hot(label, self.n_components).to(F64)
        weights, means, covs, chol = self._m_step(x, resp, floor)
        prev = -math.inf
        self.converged_ = False
        self.n_iter_ = 0
        for it in range(1, self.n_iter + 1):
            log_joint = self._log_joint(x, weights, means, covs, chol)
            log_norm = torch.logsumexp(log_joint, -1)
            ll = log_norm.mean().item()
            resp = torch.exp(log_joint - log_norm[:, None])
            weights, means, covs, chol = self._m_step(x, resp, floor)
            self.n_iter_ = it
            if abs(ll - prev) < self.tol:
                self.converged_ = True
                break
            prev = ll
        self.weights, self.means, self.covs, self._chol = weights, means, covs, chol
        self.log_likelihood_ = self._log_prob(x).mean().item()
        self.n_fit_ = n

    def _log_prob(self, x):
        dev = x.device
        chol = None if self._chol is None else self._chol.to(dev)
        log_joint = self._log_joint(x, self.weights.to(dev), self.means.to(dev), self.covs.to(dev), chol)
        return torch.logsumexp(log_joint, -1)

    def _sample(self, n, generator, device):
        d = self.means.shape[1]
        k = torch.multinomial(self.weights.to(device), n, replacement=True, generator=generator) if n else \
            torch.zeros(0, dtype=torch.long, device=device)
        z = randn((n, d), generator=generator, device=device, dtype=F64)
        means = self.means.to(device)
        if self.covariance == "diag":
            return means[k] + z * self.covs.to(device)[k].sqrt()
        out = means[k].clone()
        chol = self._chol.to(device)
        for j in range(self.n_components):  # group by component: no (n, d, d) array
            sel = k == j
            if bool(sel.any()):
                out[sel] += z[sel] @ chol[j].T
        return out


# --- RealNVP flow ---------------------------------------------------------------------------------------------
class _Coupling(nn.Module):
    """Affine coupling (Dinh et al. 2017): y = x on the mask, y = x exp(s) + b off it, s = B tanh(raw / B)."""

    def __init__(self, d: int, mask: torch.Tensor, hidden: int, bound: float):
        super().__init__()
        self.register_buffer("mask", mask)
        self.bound = bound
        self.net = nn.Sequential(nn.Linear(d, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, 2 * d))

    def _scale_shift(self, x_kept):
        raw_s, b = self.net(x_kept).chunk(2, dim=-1)
        free = 1 - self.mask
        return self.bound * torch.tanh(raw_s / self.bound) * free, b * free

    def forward(self, x):
        """data side -> latent side; returns (y, log|det dy/dx|)."""
        s, b = self._scale_shift(x * self.mask)
        return x * torch.exp(s) + b, s.sum(-1)

    def inverse(self, y):
        s, b = self._scale_shift(y * self.mask)  # y = x on the mask
        return (y - b) * torch.exp(-s)


class _RealNVP(nn.Module):
    """x -> u = (x - center)/scale -> couplings -> z, base N(base_mean, diag exp(2 base_log_std)) (learned)."""

    def __init__(self, d: int, n_layers: int, hidden: int, bound: float, center, scale):
        super().__init__()
        self.register_buffer("center", center)
        self.register_buffer("scale", scale)
        masks = [(torch.arange(d) % 2 == (i % 2)).float() if d > 1 else torch.zeros(d) for i in range(n_layers)]
        self.layers = nn.ModuleList(_Coupling(d, m, hidden, bound) for m in masks)
        self.base_mean = nn.Parameter(torch.zeros(d))
        self.base_log_std = nn.Parameter(torch.zeros(d))

    def log_prob(self, x):
        u = (x - self.center) / self.scale
        logdet = -torch.log(self.scale).sum().expand(x.shape[0])
        for layer in self.layers:
            u, ld = layer(u)
            logdet = logdet + ld
        z = (u - self.base_mean) * torch.exp(-self.base_log_std)
        d = x.shape[-1]
        log_base = -0.5 * (z ** 2).sum(-1) - self.base_log_std.sum() - 0.5 * d * LOG_2PI
        return log_base + logdet

    def inverse(self, z_std):
        u = self.base_mean + torch.exp(self.base_log_std) * z_std
        for layer in reversed(self.layers):
            u = layer.inverse(u)
        return u * self.scale + self.center


class _Adam:
    """Adam (Kingma & Ba 2015) with global gradient-norm clipping, written out: a few lines, and it spares the
    import of torch._dynamo that torch.optim triggers (seconds on a cold start)."""

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.betas, self.eps = params, betas, eps
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    @torch.no_grad()
    def step(self, grads, lr, clip=None):
        if clip is not None:
            norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
            factor = torch.clamp(clip / (norm + 1e-6), max=1.0)
            grads = [g * factor for g in grads]
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            p.addcdiv_(m, (v / c2).sqrt_().add_(self.eps), value=-lr / c1)


class FlowInit(Init):
    """nu = a small RealNVP (Dinh et al. 2017) trained by maximum likelihood with Adam.

    x is first standardized per coordinate (a fixed affine map), then `n_layers` affine couplings with
    alternating even/odd masks and log-scales bounded by `bound` tanh(raw/bound), then a learned diagonal
    Gaussian base (initialized at N(0, I)); the last layer of each coupling starts at zero, so training
    starts from the moment-matched diagonal Gaussian. log_prob is exact (change of variables with the
    log-det of each layer); after training, a float64 copy evaluates `log_prob` and `sample`.
    Adam with a cosine-decayed learning rate (lr -> lr/20) on minibatches of `batch_size`, gradient norm
    clipped at 10.
    Reproducible: weights start from `seed`, minibatches are drawn with a generator seeded by `seed` + 1.
    For d = 1 there is nothing to condition on: each coupling is an affine map and the flow is a Gaussian.
    `history` holds the training NLL per step.
    """

    def __init__(self, n_layers: int = 6, hidden: int = 64, steps: int = 1000, lr: float = 2e-3, seed: int = 0,
                 batch_size: int = 512, bound: float = 2.0):
        super().__init__()
        self.n_layers = check_int("n_layers", n_layers, low=1)
        self.hidden = check_int("hidden", hidden, low=1)
        self.steps = check_int("steps", steps, low=0)
        self.lr = check_positive("lr", lr)
        self.seed = check_int("seed", seed, low=0)
        self.batch_size = check_int("batch_size", batch_size, low=1)
        self.bound = check_positive("bound", bound)

    def _params(self):
        return {"n_layers": self.n_layers, "hidden": self.hidden, "steps": self.steps, "lr": self.lr,
                "seed": self.seed, "batch_size": self.batch_size, "bound": self.bound}

    def _fit_digest(self):
        return _digest(*[p.detach() for p in self._flow64.state_dict().values()])

    def _fit(self, x):
        dev = x.device
        data = x.to(torch.float32)
        center = data.mean(0)
        scale = data.std(0).clamp_min(1e-12) if data.shape[0] > 1 else torch.ones_like(center)
        flow = _RealNVP(data.shape[1], self.n_layers, self.hidden, self.bound, center, scale)
        g_init = make_generator(self.seed, "cpu")
        with torch.no_grad():
            for layer in flow.layers:
                linears = [m for m in layer.net if isinstance(m, nn.Linear)]
                for lin in linears[:-1]:
                    bound = 1.0 / math.sqrt(lin.in_features)
                    lin.weight.uniform_(-bound, bound, generator=g_init)
                    lin.bias.uniform_(-bound, bound, generator=g_init)
                linears[-1].weight.zero_()
                linears[-1].bias.zero_()
        flow = flow.to(dev)
        g_batch = make_generator(self.seed + 1, dev)
        params = [p for p in flow.parameters()]
        adam = _Adam(params, self.lr)
        n = data.shape[0]
        bs = min(self.batch_size, n)
        self.history = []
        flow.train()
        for step in range(self.steps):
            idx = torch.randint(0, n, (bs,), generator=g_batch, device=dev)
            loss = -flow.log_prob(data[idx]).mean()
            grads = torch.autograd.grad(loss, params)
            # cosine decay from lr to lr/20
            lr = self.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / max(self.steps, 1))))
            adam.step(grads, lr, clip=10.0)
            self.history.append(loss.item())
        flow.eval()
        self._flow64 = copy.deepcopy(flow).to(F64)
        for p in self._flow64.parameters():
            p.requires_grad_(False)

    def _log_prob(self, x):
        flow = self._flow64.to(x.device)
        with torch.no_grad():
            return flow.log_prob(x)

    def to_latent(self, x: torch.Tensor) -> torch.Tensor:
        """The flow's map data -> standard normal coordinates z (float64 (n, d)): x ~ nu iff z ~ N(0, I)."""
        flat = self._flat(x).to(F64)
        flow = self._flow64.to(flat.device)
        with torch.no_grad():
            u = (flat - flow.center) / flow.scale
            for layer in flow.layers:
                u, _ = layer(u)
            return (u - flow.base_mean) * torch.exp(-flow.base_log_std)

    def from_latent(self, z: torch.Tensor) -> torch.Tensor:
        """The inverse map z -> x (float64, shape (n, *shape)); `sample` applies it to z ~ N(0, I)."""
        self._require_fitted()
        if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != self.dim:
            got = getattr(z, 'shape', type(z).__name__)
            raise ValueError(f"z must be a tensor of shape (n, {self.dim}), got {got}")
        flow = self._flow64.to(z.device)
        with torch.no_grad():
            return flow.inverse(z.to(F64)).reshape(z.shape[0], *self._shape)

    def _sample(self, n, generator, device):
        flow = self._flow64.to(device)
        z = randn((n, self.dim), generator=generator, device=device, dtype=F64)
        with torch.no_grad():
            return flow.inverse(z)


# --- per-coordinate Student-t by ECM --------------------------------------------------------------------------
def _gamma_draws(shape: torch.Tensor, generator, device) -> torch.Tensor:
    """Gamma(shape, 1) draws, one per entry of the float64 tensor `shape` (Marsaglia-Tsang 2000; boosted below 1)."""
    shape = shape.to(device=device, dtype=F64)
    a = torch.where(shape < 1, shape + 1, shape)
    d0 = a - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d0)
    out = torch.empty_like(shape).reshape(-1)
    d0f, cf = d0.reshape(-1), c.reshape(-1)
    pending = torch.arange(out.numel(), device=device)
    while pending.numel() > 0:
        z = torch.randn(pending.numel(), generator=generator, device=device, dtype=F64)
        u = torch.rand(pending.numel(), generator=generator, device=device, dtype=F64)
        dd, cc = d0f[pending], cf[pending]
        v = (1.0 + cc * z) ** 3
        safe_v = torch.where(v > 0, v, torch.ones_like(v))
        ok = (v > 0) & (torch.log(u) < 0.5 * z ** 2 + dd - dd * safe_v + dd * torch.log(safe_v))
        out[pending[ok]] = (dd * v)[ok]
        pending = pending[~ok]
    out = out.reshape(shape.shape)
    small = shape < 1
    if bool(small.any()):
        u = torch.rand(shape.shape, generator=generator, device=device, dtype=F64)
        out = torch.where(small, out * u ** (1.0 / shape), out)
    return out


def _student_t_log_density(x, loc, scale, df):
    """log t_df((x - loc)/scale) - log scale, elementwise."""
    r2 = ((x - loc) / scale) ** 2
    const = (torch.lgamma((df + 1) / 2) - torch.lgamma(df / 2) - 0.5 * torch.log(df * math.pi) - torch.log(scale))
    return const - 0.5 * (df + 1) * torch.log1p(r2 / df)


class StudentTInit(Init):
    """nu = prod_i t_{df_i}(loc_i, scale_i): independent Student-t coordinates fitted by maximum likelihood.

    Algorithm: ECM (Liu & Rubin 1995), vectorized over coordinates, with the scale-mixture representation
    x = loc + scale G / sqrt(tau), tau ~ Gamma(df/2, df/2):
      E-step  w = E[tau|x] = (df + 1)/(df + r^2), E[log tau|x] = psi((df+1)/2) - log((df + r^2)/2), r = (x-loc)/scale;
      CM-1    loc = sum w x / sum w,  scale^2 = sum w (x - loc)^2 / sum w  (the parameter-expanded form of
              Kent, Tyler & Vardi 1994: same fixed point as mean w (x - loc)^2, since sum w = n at the MLE; faster);
      CM-2    df solves log(df/2) - psi(df/2) + 1 + mean(E[log tau] - w) = 0 (bisection in log df, clipped to
              [df_min, df_max]; df_max ~ a Gaussian).
    df="per-coordinate" fits one df per coordinate; df="pooled" shares one df across coordinates (right for
    i.i.d. coordinates, as in Fassina et al.'s d = 100 experiment: d times more data for the tail index).
    Caveat: for the VE experiment x_T = x_0 + sigma_T z is a Student-t convolved with a Gaussian, which is
    not a Student-t; this is the best Student-t approximation in KL(p_T || nu), not p_T itself (the tail index
    of the convolution is still df_0, but the bulk is more Gaussian, so the fitted df lands in between).
    Starts from the median and 1.4826 MAD, df = 5. Fitted: `loc`, `scale`, `df` (d,), `n_iter_`, `converged_`.
    """

    def __init__(self, df: str = "per-coordinate", n_iter: int = 500, tol: float = 1e-7, df_min: float = 0.1,
                 df_max: float = 1000.0):
        super().__init__()
        self.df_mode = check_choice("df", df, {"per-coordinate", "pooled"})
        self.n_iter = check_int("n_iter", n_iter, low=1)
        self.tol = check_range("tol", tol, 0.0, math.inf)
        self.df_min = check_positive("df_min", df_min)
        self.df_max = check_range("df_max", df_max, self.df_min, math.inf, low_open=True)

    def _params(self):
        return {"df": self.df_mode, "n_iter": self.n_iter, "tol": self.tol, "df_min": self.df_min,
                "df_max": self.df_max}

    def _fit_digest(self):
        return _digest(self.loc, self.scale, self.df)

    def _solve_df(self, c):
        """df with log(df/2) - psi(df/2) = -c (the left side falls from inf to 0), bisection in log df."""
        lo = torch.full_like(c, math.log(self.df_min))
        hi = torch.full_like(c, math.log(self.df_max))

        def h(log_df):
            half = 0.5 * torch.exp(log_df)
            return torch.log(half) - torch.digamma(half) + c

        for _ in range(60):
            mid = 0.5 * (lo + hi)
            pos = h(mid) > 0  # root lies above mid
            lo = torch.where(pos, mid, lo)
            hi = torch.where(pos, hi, mid)
        return torch.exp(0.5 * (lo + hi))

    def _fit(self, x):
        x = x.to(F64)
        n, d = x.shape
        loc = x.median(0).values
        scale = (1.4826 * (x - loc).abs().median(0).values).clamp_min(1e-12 * (x.abs().max().item() + 1e-300))
        scale = torch.where(scale > 0, scale, x.std(0).clamp_min(1e-300))
        df = torch.full((d,), 5.0, dtype=F64, device=x.device)
        self.converged_ = False
        self.n_iter_ = 0
        for it in range(1, self.n_iter + 1):
            r2 = ((x - loc) / scale) ** 2
            w = (df + 1) / (df + r2)
            e_log_tau = torch.digamma((df + 1) / 2) - torch.log((df + r2) / 2)
            new_loc = (w * x).sum(0) / w.sum(0)
            new_scale = torch.sqrt((w * (x - new_loc) ** 2).sum(0) / w.sum(0)).clamp_min(1e-300)
            stat = (e_log_tau - w).mean(0)
            if self.df_mode == "pooled":
                stat = stat.mean().expand(d)
            new_df = self._solve_df(1.0 + stat)
            change = max(((new_loc - loc).abs() / new_scale).max().item(),
                         (torch.log(new_scale) - torch.log(scale)).abs().max().item(),
                         (torch.log(new_df) - torch.log(df)).abs().max().item())
            loc, scale, df = new_loc, new_scale, new_df
            self.n_iter_ = it
            if change < self.tol:
                self.converged_ = True
                break
        self.loc, self.scale, self.df = loc, scale, df

    def _log_prob(self, x):
        dev = x.device
        return _student_t_log_density(x, self.loc.to(dev), self.scale.to(dev), self.df.to(dev)).sum(-1)

    def _sample(self, n, generator, device):
        d = self.loc.shape[0]
        g = randn((n, d), generator=generator, device=device, dtype=F64)
        df = self.df.to(device)
        gam = _gamma_draws((0.5 * df).expand(n, d), generator, device)
        return self.loc.to(device) + self.scale.to(device) * g * torch.sqrt(0.5 * df / gam)


# --- the oracle ------------------------------------------------------------------------------------------------
class OracleInit(Init):
    """nu = p_T exactly: samples by forward-noising fresh target samples, log_prob = target.log_prob_t(x, T, process).

    log_prob exists where the target has a closed form (Gaussian, Gaussian mixtures, two-mode, Student-t by
    quadrature); otherwise it raises NotImplementedError. `t` defaults to process.T. `fit` only checks shapes.
    """

    def __init__(self, target, process, *, t=None):
        super().__init__()
        self.target = target
        self.process = process
        self.t = float(process.T) if t is None else check_range("t", t, 0.0, math.inf)
        self._shape = tuple(target.shape)

    def _params(self):
        return {"target": self.target.key(), "process": self.process.key(), "t": self.t}

    def _fit_digest(self):
        return "exact"

    def fit(self, x=None):
        """Nothing to fit; if x is given, checks that it has the target's event shape. Returns self."""
        if x is not None:
            self._flat(x)
        return self

    def sample(self, n, *, generator=None, device=None, dtype=torch.float32):
        """x_T = m(T) x_0 + s(T) z with fresh x_0 ~ target, shape (n, *target.shape)."""
        n = check_int("n", n, low=0)
        if n == 0:
            return torch.zeros((0, *self._shape), device=_sample_device(generator, device), dtype=dtype)
        x0 = self.target.sample(n, generator=generator, device=device, dtype=F64)
        xt, _ = self.process.marginal(x0, as_time(self.t), generator=generator)
        return xt.to(dtype)

    def log_prob(self, x):
        """log p_T(x) in float64, shape (n,)."""
        self._flat(x)
        return self.target.log_prob_t(x.to(F64), self.t, self.process).to(F64)
