"""Closed forms for diffusion on Gaussian data: Gaussian KLs, endpoint KLs, exact laws of discretized samplers.

Everything is float64. Data N(mu, Sigma) is described in the eigenbasis of Sigma: `eigvals` lambda_i > 0 and
`mean` mu_i = u_i . mu (the data mean along eigenvector u_i). With the exact score every sampler step is an
affine map per eigendirection, x' = a x + b + sqrt(q) xi, so the output law is Gaussian and its mean and
variance follow an exact recursion (docs/theory.md §4.3). Labels as in docs/theory.md: (standard), (paper), (derived).

Sections:
- Gaussian KL divergences: `kl_gaussian`, `kl_gaussian_diag`, `gaussian_eigenbasis`.
- Endpoint KL(p_T || prior): `endpoint_kl`, `endpoint_kl_vp`, `endpoint_kl_ve` and their large-horizon
  leading orders `endpoint_kl_vp_leading`, `endpoint_kl_ve_leading`.
- Sampler laws: `sampler_steps`, `sampler_moments`, `sampler_kl`, `sampler_output_law`; the continuous-time
  reference `continuous_moments` (with `continuous_limit_eta` naming each sampler's limit).
- Sun, Poor, Zhang scheduling (DDIM on a Gaussian source): `ddim_angles`, `ddim_cosine_gain`,
  `ddim_variance_closed_form`, `ddim_log_rho`, `ddim_kl_closed_form`, `psi_action`, `ddim_kl_asymptotic`,
  `tangent_grid_sigmas`, `tangent_grid_sigmas_multi`.
- Franzese et al. diffusion-time toy: `franzese_bound_terms`, `franzese_bound`, `franzese_optimal_T`,
  `franzese_optimal_T_vp_closed_form`.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .checks import check_choice, check_int, check_positive, check_range
from .processes import VP, as_time

F64 = torch.float64
METHODS = ("em", "ode-euler", "heun", "ddim", "pc")


# ------------------------------------------------------------------------------------------------
# input helpers
# ------------------------------------------------------------------------------------------------
def _vec(name: str, value, *, positive: bool = False, nonneg: bool = False) -> torch.Tensor:
    """A float64 1-D CPU tensor from a scalar, list, array or tensor; finite, optionally > 0 or >= 0."""
    try:
        v = torch.as_tensor(value, dtype=F64).detach().cpu()
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be a number or a 1-D array of numbers, got {value!r}") from err
    if v.dim() == 0:
        v = v.reshape(1)
    if v.dim() != 1 or v.numel() == 0:
        raise ValueError(f"{name} must be a number or a non-empty 1-D array, got shape {tuple(v.shape)}")
    if not bool(torch.isfinite(v).all()):
        raise ValueError(f"{name} must be finite, got {v.tolist()[:6]}")
    if positive and not bool((v > 0).all()):
        raise ValueError(f"{name} must be > 0 (allowed range (0, inf)), got {v.tolist()[:6]}")
    if nonneg and not bool((v >= 0).all()):
        raise ValueError(f"{name} must be >= 0 (allowed range [0, inf)), got {v.tolist()[:6]}")
    return v


def _eig_and_mean(eigvals, mean):
    lam = _vec("eigvals", eigvals, positive=True)
    if mean is None:
        return lam, torch.zeros_like(lam)
    mu = _vec("mean", mean)
    if mu.numel() == 1 and lam.numel() > 1:
        mu = mu.expand(lam.numel()).clone()
    if mu.shape != lam.shape:
        raise ValueError(f"mean must hold one data mean per eigendirection, shape {tuple(lam.shape)}, "
                         f"got shape {tuple(mu.shape)}")
    return lam, mu


def _grid(process, grid) -> torch.Tensor:
    from .schedules import check_grid, uniform

    if isinstance(grid, int) and not isinstance(grid, bool):
        grid = uniform(process, grid)
    return check_grid(grid, process)


def _t(x) -> torch.Tensor:
    return as_time(x).to(F64)


def _x_minus_log1p(x: torch.Tensor) -> torch.Tensor:
    """x - log(1 + x) for x > -1, accurate near 0 (series x^2/2 - x^3/3 + ... for |x| < 1e-2)."""
    x = torch.as_tensor(x, dtype=F64)
    small = x.abs() < 1e-2
    xs = torch.where(small, x, torch.zeros_like(x))
    series = sum(((-1) ** k) * xs ** k / k for k in range(2, 10))
    return torch.where(small, series, x - torch.log1p(torch.where(small, torch.zeros_like(x), x)))


def _expm1_minus_x(x: torch.Tensor) -> torch.Tensor:
    """e^x - 1 - x, accurate near 0 (series x^2/2 + x^3/6 + ... for |x| < 1e-2)."""
    x = torch.as_tensor(x, dtype=F64)
    small = x.abs() < 1e-2
    xs = torch.where(small, x, torch.zeros_like(x))
    series = sum(xs ** k / math.factorial(k) for k in range(2, 10))
    return torch.where(small, series, torch.expm1(torch.where(small, torch.zeros_like(x), x)) - x)


# ------------------------------------------------------------------------------------------------
# KL divergences between Gaussians (standard)
# ------------------------------------------------------------------------------------------------
def kl_gaussian_diag(mean0, var0, mean1, var1) -> torch.Tensor:
    """Elementwise KL(N(mean0, var0) || N(mean1, var1)) = ½[var0/var1 - 1 - ln(var0/var1) + (mean1-mean0)²/var1].

    Arguments broadcast against each other (float64 tensors out); var1 must be > 0, var0 >= 0 (0 gives inf).
    """
    m0, v0, m1, v1 = (torch.as_tensor(a, dtype=F64) for a in (mean0, var0, mean1, var1))
    if not bool((v1 > 0).all()):
        raise ValueError("var1 must be > 0 (allowed range (0, inf))")
    if not bool((v0 >= 0).all()):
        raise ValueError("var0 must be >= 0 (allowed range [0, inf))")
    x = (v0 - v1) / v1  # var0/var1 - 1, without cancellation when the variances are close
    near = x.abs() < 1e-2
    safe_v0 = torch.where(v0 > 0, v0, torch.ones_like(v0))
    far = x - (torch.log(safe_v0) - torch.log(v1))  # accurate also when var0/var1 is near 0
    part = torch.where(near, _x_minus_log1p(torch.where(near, x, torch.zeros_like(x))), far)
    part = torch.where(v0 > 0, part, torch.full_like(part, math.inf))
    return 0.5 * (part + (m1 - m0) ** 2 / v1)


def _as_cov(name: str, cov, d: int) -> tuple[str, torch.Tensor]:
    c = torch.as_tensor(cov, dtype=F64).detach().cpu()
    if c.dim() == 0:
        return "diag", c.expand(d).clone()
    if c.dim() == 1:
        if c.numel() != d:
            raise ValueError(f"{name} as a 1-D diagonal must have length d={d}, got {c.numel()}")
        return "diag", c
    if c.dim() == 2 and c.shape == (d, d):
        if not torch.allclose(c, c.T, rtol=1e-10, atol=1e-12 * float(c.abs().max())):
            raise ValueError(f"{name} must be symmetric")
        return "full", c
    raise ValueError(f"{name} must be a scalar, a 1-D diagonal of length {d} or a ({d}, {d}) matrix, "
                     f"got shape {tuple(c.shape)}")


def kl_gaussian(mean0, cov0, mean1, cov1) -> float:
    """KL(N(a, A) || N(b, B)) = ½[tr(B⁻¹A) + (b-a)ᵀB⁻¹(b-a) - d + ln det B - ln det A] (float64, Cholesky).

    Means are 1-D of length d (or scalars, broadcast against the covariances); each covariance is a scalar
    (isotropic), a 1-D diagonal or a (d, d) symmetric positive-definite matrix.
    """
    a = torch.as_tensor(mean0, dtype=F64).detach().cpu().reshape(-1)
    b = torch.as_tensor(mean1, dtype=F64).detach().cpu().reshape(-1)
    cov_sizes = [torch.as_tensor(c).shape[0] for c in (cov0, cov1) if torch.as_tensor(c).dim() >= 1]
    d = max([a.numel(), b.numel()] + cov_sizes)
    a, b = (v.expand(d).clone() if v.numel() == 1 else v for v in (a, b))
    if a.numel() != d or b.numel() != d:
        raise ValueError(f"mean0 and mean1 must have the same length d={d}, got {a.numel()} and {b.numel()}")
    if not (bool(torch.isfinite(a).all()) and bool(torch.isfinite(b).all())):
        raise ValueError("mean0 and mean1 must be finite")
    kind0, c0 = _as_cov("cov0", cov0, d)
    kind1, c1 = _as_cov("cov1", cov1, d)
    for name, kind, c in (("cov0", kind0, c0), ("cov1", kind1, c1)):
        if not bool(torch.isfinite(c).all()):
            raise ValueError(f"{name} must be finite")
        if kind == "diag" and not bool((c > 0).all()):
            raise ValueError(f"{name} must be positive definite (diagonal entries > 0), got min {c.min().item():g}")
    if kind0 == "diag" and kind1 == "diag":
        return float(kl_gaussian_diag(a, c0, b, c1).sum())
    full0 = torch.diag(c0) if kind0 == "diag" else c0
    full1 = torch.diag(c1) if kind1 == "diag" else c1
    l0, info0 = torch.linalg.cholesky_ex(full0)
    l1, info1 = torch.linalg.cholesky_ex(full1)
    if int(info0) != 0:
        raise ValueError("cov0 must be positive definite (Cholesky failed)")
    if int(info1) != 0:
        raise ValueError("cov1 must be positive definite (Cholesky failed)")
    m = torch.linalg.solve_triangular(l1, l0, upper=False)  # L1⁻¹ L0, so tr(B⁻¹A) = ||M||_F²
    r = torch.linalg.solve_triangular(l1, (b - a).unsqueeze(1), upper=False).squeeze(1)
    logdet_ratio = 2 * (torch.log(torch.diagonal(l1)).sum() - torch.log(torch.diagonal(l0)).sum())
    return float(0.5 * ((m ** 2).sum() + (r ** 2).sum() - d + logdet_ratio))


def gaussian_eigenbasis(mean, cov):
    """Eigenbasis of data N(mean, cov): (eigvals (d,), mean along the eigenvectors (d,), eigenvectors (d, d))."""
    mu = torch.as_tensor(mean, dtype=F64).detach().cpu().reshape(-1)
    d = mu.numel()
    kind, c = _as_cov("cov", cov, d)
    if kind == "diag":
        lam, u = c.clone(), torch.eye(d, dtype=F64)
    else:
        lam, u = torch.linalg.eigh(c)
    if not bool((lam > 0).all()):
        raise ValueError(f"cov must be positive definite, got smallest eigenvalue {lam.min().item():g}")
    return lam, u.T @ mu, u


# ------------------------------------------------------------------------------------------------
# endpoint KL(p_T || prior) (standard)
# ------------------------------------------------------------------------------------------------
def endpoint_kl(process, eigvals, mean=None, *, T=None, per_direction: bool = False):
    """KL(p_T || N(0, prior_std² I)) with p_T = N(m(T) mu, m(T)² lambda + s(T)²) per eigendirection (any process).

    `T` defaults to process.T; the prior is always the process's own (`prior_std()`, for VE sigma_T of the
    process), so for VE change the horizon by building VE(sigma_T=...) instead. `mean` has one entry per
    eigenvalue; only |mean|² enters, so the data mean in any orthonormal basis will do. Float, or a (k,)
    tensor with `per_direction=True`.
    """
    lam, mu = _eig_and_mean(eigvals, mean)
    t = float(process.T) if T is None else check_positive("T", T)
    m, s = _t(process.mean_scale(t)), _t(process.std(t))
    p2 = process.prior_std() ** 2
    kl = kl_gaussian_diag(m * mu, m ** 2 * lam + s ** 2, torch.zeros_like(lam), torch.full_like(lam, p2))
    return kl if per_direction else float(kl.sum())


def endpoint_kl_vp(eigvals, mean=None, T=None, process=None, *, per_direction: bool = False):
    """VP: KL(p_T || N(0, I)) = ½ Σ_i [u(λ_i - 1) - ln(1 + u(λ_i - 1))] + ½ u |μ|², u = m(T)² = e^{-B(T)}.

    `process` defaults to VP(); `T` to process.T (beta(t) keeps its formula for any T).
    """
    process = VP() if process is None else process
    if not hasattr(process, "B"):
        raise ValueError(f"process must be a VP process (with B(t)), got {type(process).__name__}")
    lam, mu = _eig_and_mean(eigvals, mean)
    t = float(process.T) if T is None else check_positive("T", T)
    u = torch.exp(-_t(process.B(t)))
    kl = 0.5 * (_x_minus_log1p(u * (lam - 1)) + u * mu ** 2)
    return kl if per_direction else float(kl.sum())


def endpoint_kl_vp_leading(eigvals, mean=None, T=None, process=None) -> float:
    """Leading order of `endpoint_kl_vp` for large T: ½ u |μ|² + ¼ u² Σ(λ_i - 1)², u = e^{-B(T)}.

    So KL ~ e^{-B(T)} when μ ≠ 0 but ~ e^{-2B(T)} for centred data (derived from the series of x - ln(1+x)).
    """
    process = VP() if process is None else process
    lam, mu = _eig_and_mean(eigvals, mean)
    t = float(process.T) if T is None else check_positive("T", T)
    u = float(torch.exp(-_t(process.B(t))))
    return float(0.5 * u * (mu ** 2).sum() + 0.25 * u ** 2 * ((lam - 1) ** 2).sum())


def endpoint_kl_ve(eigvals, sigma_T, mean=None, *, per_direction: bool = False):
    """VE: KL(p_T || N(0, σ_T² I)) = ½ Σ_i [r_i - ln(1 + r_i)] + |μ|²/(2σ_T²), r = λ/σ_T² (x_T = x_0 + σ_T z)."""
    lam, mu = _eig_and_mean(eigvals, mean)
    s2 = check_positive("sigma_T", sigma_T) ** 2
    kl = 0.5 * _x_minus_log1p(lam / s2) + mu ** 2 / (2 * s2)
    return kl if per_direction else float(kl.sum())


def endpoint_kl_ve_leading(eigvals, sigma_T, mean=None) -> float:
    """Leading order of `endpoint_kl_ve` for large σ_T: |μ|²/(2σ_T²) + Σλ_i²/(4σ_T⁴)."""
    lam, mu = _eig_and_mean(eigvals, mean)
    s2 = check_positive("sigma_T", sigma_T) ** 2
    return float((mu ** 2).sum() / (2 * s2) + (lam ** 2).sum() / (4 * s2 ** 2))


# ------------------------------------------------------------------------------------------------
# exact laws of discretized samplers on Gaussian data (standard; docs/theory.md §4.3)
# ------------------------------------------------------------------------------------------------
def _coefficients(process, ts: torch.Tensor, lam: torch.Tensor, mu: torch.Tensor) -> dict:
    """m, s, f, g2 at times ts (n,) and the score as c1 x + c0 per eigendirection, shapes (n, k)."""
    m = _t(process.mean_scale(ts)).reshape(-1, 1)
    s = _t(process.std(ts)).reshape(-1, 1)
    f = _t(process.f(ts)).reshape(-1, 1)
    g2 = _t(process.g2(ts)).reshape(-1, 1)
    v = m ** 2 * lam + s ** 2  # marginal variance along each eigendirection
    # exact score -(x - m mu)/v = c1 x + c0
    return {"m": m, "s": s, "f": f, "g2": g2, "v": v, "c1": -1.0 / v, "c0": m * mu / v}


def _require_finite(process, ts, c, names, method, positive=()):
    for name in names:
        val = c[name].reshape(c[name].shape[0], -1)[:, 0]
        bad = ~torch.isfinite(val)
        if name in positive:
            bad = bad | (val <= 0)
        if bool(bad.any()):
            i = int(torch.nonzero(bad)[0])
            raise ValueError(f"the {type(process).__name__} process is singular at t={ts[i].item():g} for "
                             f"method={method!r} ({name} = {val[i].item():g}); start the grid below it")


def sampler_steps(process, grid, eigvals, mean=None, method: str = "em", *, eta: float = 0.0,
                  snr: float = 0.16, n_corrector: int = 1):
    """Per-step affine maps x' = a x + b + sqrt(q) xi of a sampler with the exact score; returns (a, b, q), each (N, k).

    Step i goes from t = grid[i] to t' = grid[i+1], h = t - t', score -(x - m mu)/v at the left point t:
    em:        x' = x - h [f x - g² score] + sqrt(g² h) xi
    ode-euler: x' = x - h [f x - ½ g² score]
    heun:      x' = x - h (v1 + v2)/2, v1 = vel(x, t), v2 = vel(x - h v1, t'), vel = f x - ½ g² score
    ddim:      x' = m' x0_hat + sqrt(s'² - s_eta²) eps_hat + s_eta xi, x0_hat = (x + s² score)/m,
               eps_hat = -s score, s_eta² = max(eta² s'² (1 - (m s'/(m' s))²), 0)
    pc:        an em step to t', then n_corrector Langevin steps x <- x + e score(x, t') + sqrt(2e) xi,
               e = 2 snr² s(t')² (skipped when e = 0).
    """
    method = check_choice("method", method, METHODS)
    eta = check_range("eta", eta, 0.0, 1.0)
    snr = check_positive("snr", snr)
    n_corrector = check_int("n_corrector", n_corrector, 0)
    ts = _grid(process, grid)
    lam, mu = _eig_and_mean(eigvals, mean)
    c = _coefficients(process, ts, lam, mu)
    left = {k: v[:-1] for k, v in c.items()}
    right = {k: v[1:] for k, v in c.items()}
    h = (ts[:-1] - ts[1:]).reshape(-1, 1)
    zero = torch.zeros_like(left["v"])

    if method in ("em", "pc"):
        _require_finite(process, ts[:-1], left, ("f", "g2"), method)
        a = 1 - h * left["f"] + h * left["g2"] * left["c1"]
        b = h * left["g2"] * left["c0"]
        q = (h * left["g2"]).expand_as(a).clone()
        if method == "pc":
            _require_finite(process, ts[1:], right, ("s",), method)
            e = (2 * snr ** 2 * right["s"] ** 2).expand_as(a)
            on = e > 0
            ac = torch.where(on, 1 + e * right["c1"], torch.ones_like(a))
            bc = torch.where(on, e * right["c0"], zero)
            qc = torch.where(on, 2 * e, zero)
            for _ in range(n_corrector):
                a, b, q = ac * a, ac * b + bc, ac ** 2 * q + qc
    elif method == "ode-euler":
        _require_finite(process, ts[:-1], left, ("f", "g2"), method)
        a = 1 - h * left["f"] + 0.5 * h * left["g2"] * left["c1"]
        b = 0.5 * h * left["g2"] * left["c0"]
        q = zero
    elif method == "heun":
        _require_finite(process, ts, c, ("f", "g2"), method)
        # vel(x, t) = A x + B with A = f - ½ g² c1, B = -½ g² c0
        a0, b0 = left["f"] - 0.5 * left["g2"] * left["c1"], -0.5 * left["g2"] * left["c0"]
        a1, b1 = right["f"] - 0.5 * right["g2"] * right["c1"], -0.5 * right["g2"] * right["c0"]
        # x_pred = (1 - h a0) x - h b0;  v2 = a1 x_pred + b1
        a = 1 - 0.5 * h * (a0 + a1 * (1 - h * a0))
        b = -0.5 * h * (b0 - h * a1 * b0 + b1)
        q = zero
    else:  # ddim
        _require_finite(process, ts[:-1], left, ("m",), method, positive=("m",))
        _require_finite(process, ts[1:], right, ("m", "s"), method)
        m, s, m1, s1 = left["m"], left["s"], right["m"], right["s"]
        ratio = torch.where(s > 0, (m * s1) / (m1 * torch.where(s > 0, s, torch.ones_like(s))), torch.zeros_like(s))
        s_eta2 = (eta ** 2 * s1 ** 2 * (1 - ratio ** 2)).clamp_min(0.0)
        k = torch.sqrt((s1 ** 2 - s_eta2).clamp_min(0.0))
        # x' = m' (x + s² (c1 x + c0))/m - k s (c1 x + c0) + s_eta xi
        a = m1 * (1 + s ** 2 * left["c1"]) / m - k * s * left["c1"]
        b = m1 * s ** 2 * left["c0"] / m - k * s * left["c0"]
        q = s_eta2.expand_as(a).clone()
    return a, b, q


def _init_moments(process, t0: float, lam, mu, init):
    if isinstance(init, str):
        check_choice("init", init, {"prior", "exact"})
        if init == "prior":
            return torch.zeros_like(lam), torch.full_like(lam, process.prior_std() ** 2)
        m, s = _t(process.mean_scale(t0)), _t(process.std(t0))
        return m * mu, m ** 2 * lam + s ** 2
    if not isinstance(init, (tuple, list)) or len(init) != 2:
        raise ValueError(f"init must be 'prior', 'exact' or a pair (mean, var) of per-eigendirection arrays, "
                         f"got {init!r}")
    m0 = _vec("init mean", init[0])
    v0 = _vec("init var", init[1], nonneg=True)
    k = lam.numel()
    m0 = m0.expand(k).clone() if m0.numel() == 1 else m0
    v0 = v0.expand(k).clone() if v0.numel() == 1 else v0
    if m0.shape != lam.shape or v0.shape != lam.shape:
        raise ValueError(f"init (mean, var) must have one entry per eigendirection ({k}), "
                         f"got shapes {tuple(m0.shape)} and {tuple(v0.shape)}")
    return m0, v0


def sampler_moments(process, grid, eigvals, mean=None, method: str = "em", *, init="prior", eta: float = 0.0,
                    snr: float = 0.16, n_corrector: int = 1, trajectory: bool = False):
    """Exact output law N(out_mean, out_var) per eigendirection of a sampler with exact score on N(mu, diag(lambda)).

    M <- a M + b, V <- a² V + q along the steps of `sampler_steps` (see there for the step rules).
    `grid`: decreasing times (or an int N for the uniform N-step grid). `init`: "prior" = N(0, prior_std²),
    "exact" = p_{grid[0]} = N(m mu, m² lambda + s²), or a pair (mean, var) of per-eigendirection arrays.
    Returns (out_mean, out_var), float64 tensors of shape (k,); with `trajectory=True` shapes (N+1, k),
    row i the law at grid[i].
    """
    a, b, q = sampler_steps(process, grid, eigvals, mean, method, eta=eta, snr=snr, n_corrector=n_corrector)
    ts = _grid(process, grid)
    lam, mu = _eig_and_mean(eigvals, mean)
    mm, vv = _init_moments(process, float(ts[0]), lam, mu, init)
    means, vars_ = [mm], [vv]
    for i in range(a.shape[0]):
        mm = a[i] * mm + b[i]
        vv = a[i] ** 2 * vv + q[i]
        if trajectory:
            means.append(mm)
            vars_.append(vv)
    if trajectory:
        return torch.stack(means), torch.stack(vars_)
    return mm, vv


def _kl_direction(lam, mu, out_mean, out_var, direction):
    check_choice("direction", direction, {"data||output", "output||data"})
    if direction == "data||output":
        return kl_gaussian_diag(mu, lam, out_mean, out_var)
    return kl_gaussian_diag(out_mean, out_var, mu, lam)


def sampler_kl(process, grid, eigvals, mean=None, method: str = "em", *, init="prior", direction: str = "data||output",
               reference: str = "data", per_direction: bool = False, **options):
    """KL(p_data || p_output) of a sampler with the exact score on Gaussian data (Sun et al.'s direction; float).

    Per eigendirection ½(ρ - 1 - ln ρ) + (μ - μ̂)²/(2λ̂), ρ = λ/λ̂. `direction="output||data"` gives the
    other one. `reference="data"` compares with N(mu, lambda); "grid_end" with the exact p at grid[-1]
    (= N(m mu, m² lambda + s²), the law the sampler actually targets when grid[-1] > 0).
    `options`: eta, snr, n_corrector as in `sampler_moments`.
    """
    check_choice("reference", reference, {"data", "grid_end"})
    out_mean, out_var = sampler_moments(process, grid, eigvals, mean, method, init=init, **options)
    lam, mu = _eig_and_mean(eigvals, mean)
    if reference == "grid_end":
        t_end = float(_grid(process, grid)[-1])
        m, s = _t(process.mean_scale(t_end)), _t(process.std(t_end))
        lam, mu = m ** 2 * lam + s ** 2, m * mu
    kl = _kl_direction(lam, mu, out_mean, out_var, direction)
    return kl if per_direction else float(kl.sum())


def sampler_output_law(process, grid, mean, cov, method: str = "em", *, init="prior", **options):
    """The sampler's exact output N(mean_out, cov_out) in data coordinates for data N(mean, cov) (any covariance).

    Rotates into the eigenbasis (`gaussian_eigenbasis`), runs `sampler_moments`, rotates back:
    cov_out = U diag(out_var) Uᵀ, mean_out = U out_mean. `init` as in `sampler_moments` ((mean, var) pairs
    are given in the eigenbasis). Returns float64 tensors (d,), (d, d).
    """
    lam, mu_eig, u = gaussian_eigenbasis(mean, cov)
    out_mean, out_var = sampler_moments(process, grid, lam, mu_eig, method, init=init, **options)
    return u @ out_mean, (u * out_var) @ u.T


def continuous_moments(process, t_start, t_end, eigvals, mean=None, *, init="prior", eta: float = 0.0):
    """Exact law at t_end of the continuous reverse dynamics from t_start, per eigendirection (derived closed form).

    Dynamics dx = [f x - ½(1 + eta²) g² score] dt + eta g dW̄: eta = 0 is the PF-ODE, eta = 1 the reverse SDE
    (the small-step limit of DDIM(eta) in between). With v = m² lambda + s², sigma = s/m and the identity
    g²/v = d ln(lambda + sigma²)/dt, the deviation y = x - m mu from the exact mean evolves by the factor
        k = sqrt(v'/v) · ((lambda + sigma'²)/(lambda + sigma²))^(eta²/2)
    so out_mean = m' mu + k (M0 - m mu), out_var = v' + k² (V0 - v). From init="exact" the answer is p_{t_end}.
    `init` as in `sampler_moments`. Returns (out_mean, out_var), float64 (k,).
    """
    eta = check_range("eta", eta, 0.0, math.inf)
    t0 = check_range("t_start", t_start, 0.0, math.inf)
    t1 = check_range("t_end", t_end, 0.0, math.inf)
    if not t1 <= t0:
        raise ValueError(f"t_end must be <= t_start (reverse time), got t_start={t0}, t_end={t1}")
    lam, mu = _eig_and_mean(eigvals, mean)
    m0, v0 = _init_moments(process, t0, lam, mu, init)
    m, s = _t(process.mean_scale(t0)), _t(process.std(t0))
    m1, s1 = _t(process.mean_scale(t1)), _t(process.std(t1))
    if not float(m1) > 0:
        raise ValueError(f"continuous_moments needs m(t_end) > 0, got m({t1:g}) = {float(m1):g}")
    v, v1 = m ** 2 * lam + s ** 2, m1 ** 2 * lam + s1 ** 2
    # (lambda + sigma'^2)/(lambda + sigma^2) = (v'/m'^2)(m^2/v), written to allow m = 0 at the start
    ratio = (v1 * m ** 2) / (v * m1 ** 2)
    k = torch.sqrt(v1 / v) * ratio ** (0.5 * eta ** 2)
    return m1 * mu + k * (m0 - m * mu), v1 + k ** 2 * (v0 - v)


def continuous_limit_eta(method: str, eta: float = 0.0) -> float:
    """The eta of `continuous_moments` a sampler converges to: em 1, ode-euler/heun 0, ddim its eta (pc has none)."""
    check_choice("method", method, {"em", "ode-euler", "heun", "ddim"})
    return {"em": 1.0, "ode-euler": 0.0, "heun": 0.0}.get(method, check_range("eta", eta, 0.0, 1.0))


# ------------------------------------------------------------------------------------------------
# Sun, Poor, Zhang: DDIM (eta = 0) scheduling on a Gaussian source (paper / derived)
# ------------------------------------------------------------------------------------------------
def _alpha_bar(alpha_bar) -> torch.Tensor:
    ab = _vec("alpha_bar", alpha_bar)
    if ab.numel() < 2:
        raise ValueError("alpha_bar must hold at least 2 values (N steps = N + 1 points)")
    if not bool(((ab > 0) & (ab <= 1)).all()):
        raise ValueError(f"alpha_bar must lie in (0, 1], got min {ab.min().item():g}, max {ab.max().item():g}")
    if not bool((ab[1:] > ab[:-1]).all()):
        raise ValueError("alpha_bar must be strictly increasing (sampling order: noisiest first, data last)")
    return ab


def _lam_like(lam):
    """lam as float64: a 0-d tensor for a scalar (results per grid point), (k,) for an array (results (..., k))."""
    t = torch.as_tensor(lam, dtype=F64).detach().cpu()
    if t.dim() > 1 or t.numel() == 0 or not bool(torch.isfinite(t).all()) or not bool((t > 0).all()):
        raise ValueError(f"lam must be a finite eigenvalue > 0 or a 1-D array of them, got {lam!r}")
    return t


def ddim_angles(alpha_bar, lam) -> torch.Tensor:
    """ψ_i = arctan(√((1 - ᾱ_i)/(ᾱ_i λ))) = arctan(σ_i/√λ), σ² = (1 - ᾱ)/ᾱ; shape (N+1,) or (N+1, k) for k λ's."""
    ab = _alpha_bar(alpha_bar)
    lam = _lam_like(lam)
    sigma = torch.sqrt((1 - ab) / ab)
    if lam.dim() == 1:
        sigma = sigma[:, None]
    return torch.atan(sigma / torch.sqrt(lam))


def ddim_cosine_gain(alpha_bar, lam) -> torch.Tensor:
    """DDIM(η=0) gain per eigendirection, x_end = G x_start: G = √(v_end/v_start) Π cos(ψ_i - ψ_{i+1}), v = ᾱλ+1-ᾱ."""
    ab = _alpha_bar(alpha_bar)
    lam = _lam_like(lam)
    psi = ddim_angles(ab, lam)
    abx = ab[:, None] if lam.dim() == 1 else ab
    v = abx * lam + 1 - abx
    return torch.sqrt(v[-1] / v[0]) * torch.cos(psi[1:] - psi[:-1]).prod(0)


def ddim_variance_closed_form(alpha_bar, lam) -> torch.Tensor:
    """DDIM(η=0) output variance from the exact p at the start: v_end Π cos²(ψ_i - ψ_{i+1}) (λ Π cos² if ᾱ_end = 1)."""
    ab = _alpha_bar(alpha_bar)
    lam = _lam_like(lam)
    psi = ddim_angles(ab, lam)
    v_end = ab[-1] * lam + 1 - ab[-1]
    return v_end * (torch.cos(psi[1:] - psi[:-1]) ** 2).prod(0)


def ddim_log_rho(alpha_bar, lam) -> torch.Tensor:
    """ln ρ = -2 Σ ln cos(ψ_i - ψ_{i+1}), ρ = v_end / (DDIM output variance) >= 1."""
    psi = ddim_angles(alpha_bar, lam)
    return -2 * torch.log(torch.cos(psi[1:] - psi[:-1])).sum(0)


def ddim_kl_closed_form(alpha_bar, lam):
    """KL(N(0, v_end) || N(0, λ̂)) = ½(ρ - 1 - ln ρ), ρ = Π sec²(ψ_i - ψ_{i+1}) (Sun et al.; v_end = λ when ᾱ_end = 1).

    The data-to-output direction, as `sampler_kl` (the mean is exact under DDIM). Float for a scalar lam,
    (k,) tensor for an array.
    """
    out = 0.5 * _expm1_minus_x(ddim_log_rho(alpha_bar, lam))
    return float(out) if out.dim() == 0 else out


def psi_action(sigma_of_u, lam, *, n_quad: int = 100_000) -> float:
    """A = ∫₀¹ ψ'(u)² du for the schedule u -> σ(u) (u = 0 noisiest), ψ = arctan(σ/√λ).

    `sigma_of_u`: a callable on a float64 tensor of u in [0, 1], or a 1-D array of σ at a fine uniform grid
    in u (first value the noisiest). Computed as M Σ (Δψ)² over M fine steps (exact for linear ψ).
    """
    lam = check_positive("lam", lam)
    if callable(sigma_of_u):
        n = check_int("n_quad", n_quad, 2)
        u = torch.linspace(0.0, 1.0, n + 1, dtype=F64)
        sig = torch.as_tensor(sigma_of_u(u), dtype=F64)
    else:
        sig = _vec("sigma_of_u", sigma_of_u, nonneg=True)
    if sig.dim() != 1 or sig.numel() < 3:
        raise ValueError("sigma_of_u must give a 1-D array of at least 3 noise levels")
    psi = torch.atan(sig / math.sqrt(lam))
    return float((sig.numel() - 1) * (torch.diff(psi) ** 2).sum())


def ddim_kl_asymptotic(n_steps: int, sigma_of_u, lam, *, n_quad: int = 100_000) -> float:
    """Euler–Maclaurin leading term KL ≈ (1/(4N²)) (∫₀¹ ψ'(u)² du)² (Sun et al.); see `psi_action` for sigma_of_u."""
    n = check_int("n_steps", n_steps, 1)
    return psi_action(sigma_of_u, lam, n_quad=n_quad) ** 2 / (4 * n ** 2)


def _sigma_ends(sigma_max, sigma_min):
    hi = check_positive("sigma_max", sigma_max)
    lo = check_range("sigma_min", sigma_min, 0.0, hi, high_open=True)
    return hi, lo


def tangent_grid_sigmas(n_steps: int, lam, sigma_max, sigma_min=0.0) -> torch.Tensor:
    """Tangent law: σ_i = √λ tan(θ_max + (i/N)(θ_min - θ_max)), θ = arctan(σ/√λ); (N+1,) decreasing, i = 0 noisiest.

    Sun et al.'s optimal DDIM grid for one eigenvalue (sigma_min = 0 gives √λ tan((1 - i/N) arctan(σ_max/√λ))).
    For a fixed pair of ends it minimises ρ = Π sec²Δψ for every N (ln sec² is convex), not only asymptotically.
    """
    n = check_int("n_steps", n_steps, 1)
    lam = check_positive("lam", lam)
    hi, lo = _sigma_ends(sigma_max, sigma_min)
    r = math.sqrt(lam)
    th_hi, th_lo = math.atan(hi / r), math.atan(lo / r)
    u = torch.arange(n + 1, dtype=F64) / n
    out = r * torch.tan(th_hi + u * (th_lo - th_hi))
    out[0], out[-1] = hi, lo
    return out


def tangent_grid_sigmas_multi(n_steps: int, eigvals, weights=None, sigma_max=1.0, sigma_min=0.0,
                              *, n_quad: int = 200_000) -> torch.Tensor:
    """Several eigenvalues: Φ(σ_i) linear in i, Φ(σ) = ∫₀^σ √F, F(σ) = Σ_j w_j λ_j/(λ_j + σ²)² (derived, unconfirmed).

    Φ linear in u minimises Σ_j w_j ∫ψ_j'(u)² du, i.e. the first-order variance deficit Σ_j w_j (ρ_j - 1);
    the summed KL Σ_j (∫ψ_j'²)²/(4N²) is a different functional, so this grid is optimal for it only when
    all ψ_j' are proportional (one eigenvalue). Φ is integrated on a fine grid in θ = arctan(σ/c),
    c = √(geometric mean of λ) (trapezoid, `n_quad` intervals) and inverted by interpolation. (N+1,) decreasing.
    """
    n = check_int("n_steps", n_steps, 1)
    lam = _vec("eigvals", eigvals, positive=True)
    w = torch.full_like(lam, 1.0 / lam.numel()) if weights is None else _vec("weights", weights, nonneg=True)
    if w.shape != lam.shape or not float(w.sum()) > 0:
        raise ValueError(f"weights must be >= 0, not all zero, one per eigenvalue ({lam.numel()}), "
                         f"got {w.tolist()[:6]}")
    hi, lo = _sigma_ends(sigma_max, sigma_min)
    nq = check_int("n_quad", n_quad, 100)
    c = math.exp(0.5 * float(torch.log(lam).mean()))
    th = torch.linspace(math.atan(lo / c), math.atan(hi / c), nq + 1, dtype=F64)
    sig = c * torch.tan(th)
    # dΦ/dθ = √F(σ) dσ/dθ, dσ/dθ = c / cos²θ = (c² + σ²)/c
    dphi = torch.sqrt((w * lam / (lam + sig[:, None] ** 2) ** 2).sum(1)) * (c ** 2 + sig ** 2) / c
    phi = torch.cat([torch.zeros(1, dtype=F64), torch.cumsum(0.5 * (dphi[1:] + dphi[:-1]) * torch.diff(th), 0)])
    targets = phi[-1] * (1 - torch.arange(n + 1, dtype=F64) / n)  # Φ measured from sigma_min
    th_i = torch.from_numpy(np.interp(targets.numpy(), phi.numpy(), th.numpy()))
    out = c * torch.tan(th_i)
    out[0], out[-1] = hi, lo
    return out


# ------------------------------------------------------------------------------------------------
# Franzese et al.: the diffusion-time toy (derived)
# ------------------------------------------------------------------------------------------------
_GL_X, _GL_W = np.polynomial.legendre.leggauss(64)


def _integral_g2(process, T: torch.Tensor) -> torch.Tensor:
    """∫₀ᵀ g² dt by 64-point Gauss–Legendre, vectorised over T (exact for VP's linear beta)."""
    x = torch.as_tensor(_GL_X, dtype=F64)
    w = torch.as_tensor(_GL_W, dtype=F64)
    nodes = 0.5 * T[..., None] * (x + 1)
    return 0.5 * T * (_t(process.g2(nodes)) * w).sum(-1)


def _franzese_args(lam, eps2, process):
    lam = check_positive("lam", lam)
    eps2 = check_range("eps2", eps2, 0.0, math.inf)
    process = VP() if process is None else process
    if abs(process.prior_std() - 1.0) > 1e-12:
        raise ValueError(f"the Franzese toy needs a process with prior N(0, 1) (VP, SubVP), "
                         f"got {type(process).__name__} with prior_std={process.prior_std():g}")
    return lam, eps2, process


def franzese_bound_terms(T, lam, eps2, process=None):
    """The two terms of the toy bound, data N(0, λ), constant score error ε²: (KL(p_T || N(0,1)), ½ ε² ∫₀ᵀ g²).

    For VP the first is ½[u a - ln(1 + u a)], u = m(T)², a = λ - 1, and the second ½ ε² B(T).
    T a float (floats out) or a tensor (tensors out); beta(t) keeps its formula for any T.
    """
    lam, eps2, process = _franzese_args(lam, eps2, process)
    scalar = not isinstance(T, torch.Tensor)
    t = _vec("T", T, nonneg=True) if scalar else T.to(F64)
    if not scalar and not bool((t >= 0).all()):
        raise ValueError("T must be >= 0 (allowed range [0, inf))")
    if type(process) is VP:  # u a exactly, so the term stays accurate when it is tiny (large T)
        x = torch.exp(-_t(process.B(t))) * (lam - 1)
    else:
        x = _t(process.mean_scale(t)) ** 2 * lam + _t(process.std(t)) ** 2 - 1
    kl = 0.5 * _x_minus_log1p(x)
    score = 0.5 * eps2 * _integral_g2(process, t)
    if scalar:
        return float(kl[0]), float(score[0])
    return kl, score


def franzese_bound(T, lam, eps2, process=None):
    """Bound(T) = KL(p_T || N(0,1)) + ½ ε² ∫₀ᵀ g² (VP: ½[ua - ln(1+ua)] + ½ε²B(T); Franzese et al. toy, derived)."""
    kl, score = franzese_bound_terms(T, lam, eps2, process)
    return kl + score


def franzese_optimal_T(lam, eps2, process=None, *, T_max=None) -> float:
    """argmin_T of `franzese_bound` on [0, T_max] (default process.T) by bounded scalar minimisation.

    An interior minimum exists for VP iff (λ - 1)²/λ > ε² (and T_max large enough); with ε² = 0 the bound
    decreases in T and the answer is T_max.
    """
    from scipy.optimize import minimize_scalar

    lam, eps2, process = _franzese_args(lam, eps2, process)
    t_max = float(process.T) if T_max is None else check_positive("T_max", T_max)
    res = minimize_scalar(lambda t: franzese_bound(t, lam, eps2, process), bounds=(0.0, t_max),
                          method="bounded", options={"xatol": 1e-10 * t_max})
    return float(res.x)


def franzese_optimal_T_vp_closed_form(lam, eps2, process=None) -> float:
    """VP stationary point: a² u² = ε² (1 + u a), u = e^{-B(T)}, a = λ - 1 (derived); 0 when no interior minimum exists.

    u* = (ε² a + |a| ε √(ε² + 4)) / (2a²), T* = B⁻¹(-ln u*) = t_of_sigma(√(1/u* - 1)).
    """
    lam, eps2, process = _franzese_args(lam, eps2, process)
    if type(process) is not VP:
        raise ValueError(f"process must be a VP process for this closed form, got {type(process).__name__}")
    a = lam - 1
    if a == 0 or eps2 == 0:
        return 0.0 if a == 0 else math.inf
    eps = math.sqrt(eps2)
    u = (eps2 * a + abs(a) * eps * math.sqrt(eps2 + 4)) / (2 * a * a)
    if u >= 1:
        return 0.0
    return float(process.t_of_sigma(math.sqrt(1 / u - 1)))
