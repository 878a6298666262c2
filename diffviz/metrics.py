"""Distances between sample sets and densities, likelihoods, and the feature statistics the notebooks plot.

Everything computes in float64 and returns Python floats (per-sample quantities: float64 tensors).

- KL(P || Q): `kl_knn` (samples of both; Wang, Kulkarni, Verdu 2009), `kl_to_density` (samples of P and
  log q; log p too, or a Kozachenko-Leonenko entropy estimate `entropy_knn`), `kl_histogram_1d/2d` (binned).
- Two-sample distances: `sliced_wasserstein`, `mmd` (unbiased MMD^2).
- Heavy tails (Fassina et al., docs/theory.md §6.4): `per_coordinate_quantiles`, `quantile_table`.
- Mode features (Aranguri et al., docs/theory.md §8.3): `mode_weight`, `within_mode_variance`, `cw_features`.
- Likelihood by the probability-flow ODE: `nll_pf_ode`, `bits_per_dim`.
- The Franzese et al. bound for a trained score (docs/theory.md §5.1): `elbo_terms`.
"""
from __future__ import annotations

import math

import torch

from .checks import check_choice, check_int, check_positive, check_range
from .processes import as_time

F64 = torch.float64
LOG_2PI = math.log(2 * math.pi)
_CHUNK_ELEMS = 1 << 22  # entries of a distance block (32 MB in float64)

__all__ = [
    "DIGITS_SCALE",
    "bits_per_dim",
    "cw_features",
    "elbo_terms",
    "entropy_knn",
    "kl_histogram_1d",
    "kl_histogram_2d",
    "kl_knn",
    "kl_to_density",
    "mmd",
    "mode_weight",
    "nll_pf_ode",
    "per_coordinate_quantiles",
    "quantile_table",
    "sliced_wasserstein",
    "within_mode_variance",
]


# --- input checks -----------------------------------------------------------------------------------------------
def _samples(name: str, x, *, min_n: int = 1) -> torch.Tensor:
    """x as a float64 (n, d) tensor (event dims flattened), or ValueError naming it."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (n, d), got {type(x).__name__}")
    if x.dim() == 1:
        x = x[:, None]
    if x.dim() < 2:
        raise ValueError(f"{name} must have shape (n, d), got shape {tuple(x.shape)}")
    if x.shape[0] < min_n:
        raise ValueError(f"{name} must hold at least {min_n} samples, got {x.shape[0]}")
    x = x.detach().reshape(x.shape[0], -1).to(F64)
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must be finite (it holds NaN or inf)")
    return x


def _same_dim(x, y, xname="x", yname="y"):
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"{xname} and {yname} must have the same dimension, got d = {x.shape[1]} and {y.shape[1]}")


def _rows(n_other: int) -> int:
    return max(1, _CHUNK_ELEMS // max(n_other, 1))


# --- k-nearest-neighbour distances --------------------------------------------------------------------------------
def _knn_dist(query: torch.Tensor, ref: torch.Tensor, k: int, *, exclude_self: bool = False) -> torch.Tensor:
    """Distance from each query row to its k-th nearest neighbour in ref (float64, chunked: no n x m matrix).

    Candidates come from torch.cdist (fast, matrix-product form, which loses tiny distances to cancellation);
    the k + 2 closest candidates are then re-measured directly as |q - r|, and the k-th of those is returned.
    exclude_self: query is ref, and each point is skipped as its own neighbour (by index, not by distance).
    """
    out = []
    m = ref.shape[0]
    n_cand = min(k + 2, m - 1 if exclude_self else m)
    rows = _rows(m)
    for start in range(0, query.shape[0], rows):
        block = query[start:start + rows]
        dist = torch.cdist(block, ref)
        if exclude_self:
            idx = torch.arange(start, start + block.shape[0], device=ref.device)
            dist[torch.arange(block.shape[0], device=ref.device), idx] = math.inf
        cand = torch.topk(dist, n_cand, dim=1, largest=False).indices  # (rows, n_cand)
        exact = (block[:, None, :] - ref[cand]).norm(dim=-1)
        out.append(exact.sort(dim=1).values[:, k - 1])
    return torch.cat(out)


def kl_knn(x: torch.Tensor, y: torch.Tensor, k: int = 5) -> float:
    """KL(P || Q) from x ~ P (n, d) and y ~ Q (m, d) by k-nearest neighbours (Wang, Kulkarni, Verdu 2009):

    D = (d/n) sum_i log(nu_k(i) / rho_k(i)) + log(m / (n - 1)),
    rho_k(i) = distance from x_i to its k-th neighbour among the other x, nu_k(i) = to its k-th neighbour in y.
    Consistent (asymptotically unbiased) for continuous densities; the bias at finite n grows with d and
    with k, and it can come out slightly negative. It converges slowly when P puts mass where Q is thin
    (measured: P = N(0, I_2), Q = N((1, .5), diag(2, .5)), KL = 0.75, k = 5 gives 0.62 at n = m = 2000 and
    0.69 at 16000); it is accurate at moderate n when Q covers P (a fitted model, a prior). Ties (duplicate
    points) give infinite terms.
    """
    k = check_int("k", k, low=1)
    x = _samples("x", x, min_n=2)
    y = _samples("y", y, min_n=1)
    _same_dim(x, y)
    n, d = x.shape
    m = y.shape[0]
    if k > n - 1:
        raise ValueError(f"k must be <= n - 1 = {n - 1} (samples in x besides the point itself), got k={k}")
    if k > m:
        raise ValueError(f"k must be <= m = {m} (samples in y), got k={k}")
    rho = _knn_dist(x, x, k, exclude_self=True)
    nu = _knn_dist(x, y, k)
    return float(d * (torch.log(nu) - torch.log(rho)).mean() + math.log(m / (n - 1)))


def entropy_knn(x: torch.Tensor, k: int = 5) -> float:
    """Differential entropy H(P) from x ~ P (n, d), Kozachenko-Leonenko (1987) with the k-th neighbour:

    H = psi(n) - psi(k) + log V_d + (d/n) sum_i log eps_k(i),  V_d = pi^(d/2) / Gamma(d/2 + 1) the unit-ball volume.
    """
    k = check_int("k", k, low=1)
    x = _samples("x", x, min_n=2)
    n, d = x.shape
    if k > n - 1:
        raise ValueError(f"k must be <= n - 1 = {n - 1}, got k={k}")
    eps = _knn_dist(x, x, k, exclude_self=True)
    log_vd = 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1)
    digamma = lambda v: torch.digamma(torch.tensor(float(v), dtype=F64)).item()  # noqa: E731
    return float(digamma(n) - digamma(k) + log_vd + d * torch.log(eps).mean())


def _log_density_values(name: str, log_f, x: torch.Tensor, x_orig: torch.Tensor) -> torch.Tensor:
    """Evaluate log_f (a callable on samples, or a precomputed (n,) tensor) as float64 (n,)."""
    if callable(log_f):
        vals = log_f(x_orig)
    else:
        vals = log_f
    if not isinstance(vals, torch.Tensor):
        raise ValueError(f"{name} must be a callable x -> (n,) tensor or an (n,) tensor, got {type(vals).__name__}")
    vals = vals.detach().to(F64).reshape(-1)
    if vals.shape[0] != x.shape[0]:
        raise ValueError(f"{name} must give one value per sample of x ({x.shape[0]}), got {vals.shape[0]}")
    return vals


def kl_to_density(x: torch.Tensor, log_q, log_p=None, *, k: int = 5, return_se: bool = False):
    """KL(P || Q) from x ~ P (n, ...) and log q (a callable on x, e.g. `init.log_prob`, or values on x).

    With log p (callable or values): the Monte Carlo mean of log p(x) - log q(x), unbiased, standard error
    std/sqrt(n). Without it: -H_KL(P) - mean log q(x), the cross-entropy minus a Kozachenko-Leonenko entropy
    estimate (`entropy_knn` with k neighbours; biased at finite n, more so in high d; no standard error: nan).
    Returns a float, or (kl, standard error) with return_se=True.
    """
    x_orig = x
    x = _samples("x", x, min_n=2)
    lq = _log_density_values("log_q", log_q, x, x_orig)
    if log_p is not None:
        lp = _log_density_values("log_p", log_p, x, x_orig)
        diff = lp - lq
        if not bool(torch.isfinite(diff).all()):
            return (math.inf, math.nan) if return_se else math.inf
        kl, se = diff.mean().item(), (diff.std() / math.sqrt(diff.shape[0])).item()
    else:
        kl, se = -entropy_knn(x, k=k) - lq.mean().item(), math.nan
    return (kl, se) if return_se else kl


# --- histograms -----------------------------------------------------------------------------------------------------
def _bin_index(v: torch.Tensor, bins: int, lo: float, hi: float) -> torch.Tensor:
    """Bin of each value on `bins` equal bins of [lo, hi]; values outside fall into the edge bins."""
    idx = torch.floor((v - lo) / (hi - lo) * bins).long()
    return idx.clamp(0, bins - 1)


def _smoothed_kl(cx: torch.Tensor, cy: torch.Tensor, alpha: float) -> float:
    p = (cx + alpha) / (cx.sum() + alpha * cx.numel())
    q = (cy + alpha) / (cy.sum() + alpha * cy.numel())
    return float((p * (torch.log(p) - torch.log(q))).sum())


def _range_of(name, rng, a: torch.Tensor, b: torch.Tensor):
    if rng is None:
        lo = min(a.min().item(), b.min().item())
        hi = max(a.max().item(), b.max().item())
        if hi <= lo:
            hi = lo + 1.0
        return lo, hi
    try:
        lo, hi = (float(v) for v in rng)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a pair (low, high), got {rng!r}") from err
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"{name} must be a finite pair with low < high, got {rng!r}")
    return lo, hi


def kl_histogram_1d(x: torch.Tensor, y: torch.Tensor, bins: int = 50, range=None, *, alpha: float = 0.5) -> float:
    """KL between the binned laws of x ~ P and y ~ Q (1-D samples, shape (n,) or (n, 1)).

    p_j = (count_j(x) + alpha) / (n + B alpha), likewise q_j; KL = sum_j p_j log(p_j / q_j). `range` (low, high)
    defaults to the pooled min/max; values outside it count in the edge bins. Bias, documented: binning
    can only lower KL (data processing), the plug-in estimate adds about (B - 1)/(2n) + sum_j p_j/(2 m q_j)
    at finite sample sizes, and the smoothing alpha pulls sparse bins of both towards uniform (lowers KL).
    Meant for comparing methods on the same bins and sample sizes, not for small absolute KLs.
    """
    bins = check_int("bins", bins, low=1)
    alpha = check_range("alpha", alpha, 0.0, math.inf)
    x = _samples("x", x)
    y = _samples("y", y)
    if x.shape[1] != 1 or y.shape[1] != 1:
        raise ValueError(f"x and y must be 1-D samples (shape (n,) or (n, 1)), got d = {x.shape[1]} and {y.shape[1]}")
    lo, hi = _range_of("range", range, x, y)
    cx = torch.bincount(_bin_index(x[:, 0], bins, lo, hi), minlength=bins).to(F64)
    cy = torch.bincount(_bin_index(y[:, 0], bins, lo, hi), minlength=bins).to(F64)
    if alpha == 0 and bool(((cy == 0) & (cx > 0)).any()):
        return math.inf
    return _smoothed_kl(cx, cy, alpha)


def kl_histogram_2d(x: torch.Tensor, y: torch.Tensor, bins: int = 30, range=None, *, alpha: float = 0.5) -> float:
    """KL between the binned laws of 2-D samples x ~ P (n, 2), y ~ Q (m, 2) on bins x bins equal cells.

    `range` = ((x_low, x_high), (y_low, y_high)), default the pooled min/max per axis; same estimator,
    smoothing and bias as `kl_histogram_1d` with B = bins^2 cells (the finite-sample bias grows with B).
    """
    bins = check_int("bins", bins, low=1)
    alpha = check_range("alpha", alpha, 0.0, math.inf)
    x = _samples("x", x)
    y = _samples("y", y)
    if x.shape[1] != 2 or y.shape[1] != 2:
        raise ValueError(f"x and y must be 2-D samples of shape (n, 2), got d = {x.shape[1]} and {y.shape[1]}")
    if range is None:
        ranges = [None, None]
    else:
        try:
            ranges = list(range)
        except TypeError as err:
            raise ValueError(f"range must be ((x_low, x_high), (y_low, y_high)), got {range!r}") from err
        if len(ranges) != 2:
            raise ValueError(f"range must be ((x_low, x_high), (y_low, y_high)), got {range!r}")
    idx = []
    for axis in (0, 1):
        lo, hi = _range_of(f"range[{axis}]", ranges[axis], x[:, axis], y[:, axis])
        idx.append((_bin_index(x[:, axis], bins, lo, hi), _bin_index(y[:, axis], bins, lo, hi)))
    cx = torch.bincount(idx[0][0] * bins + idx[1][0], minlength=bins * bins).to(F64)
    cy = torch.bincount(idx[0][1] * bins + idx[1][1], minlength=bins * bins).to(F64)
    if alpha == 0 and bool(((cy == 0) & (cx > 0)).any()):
        return math.inf
    return _smoothed_kl(cx, cy, alpha)


# --- two-sample distances -------------------------------------------------------------------------------------------
def _wasserstein_1d(a_sorted: torch.Tensor, b_sorted: torch.Tensor, p: float) -> torch.Tensor:
    """W_p^p between the empirical laws of each row pair of sorted (L, n) and (L, m) samples, exact.

    The quantile functions are step functions with jumps at i/n and j/m: integrate |F^-1 - G^-1|^p over
    the merged breakpoints.
    """
    n, m = a_sorted.shape[1], b_sorted.shape[1]
    if n == m:
        return ((a_sorted - b_sorted).abs() ** p).mean(-1)
    dev = a_sorted.device
    levels = torch.cat([torch.arange(1, n + 1, device=dev, dtype=F64) / n,
                        torch.arange(1, m + 1, device=dev, dtype=F64) / m]).sort().values
    widths = torch.diff(levels, prepend=torch.zeros(1, device=dev, dtype=F64))
    mids = levels - 0.5 * widths
    ia = torch.clamp((mids * n).long(), max=n - 1)
    ib = torch.clamp((mids * m).long(), max=m - 1)
    return ((a_sorted[:, ia] - b_sorted[:, ib]).abs() ** p * widths).sum(-1)


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, n_projections: int = 128, *, p: float = 2.0,
                       generator: torch.Generator | None = None) -> float:
    """Sliced Wasserstein distance SW_p = (E_theta W_p^p(theta.x, theta.y))^(1/p), theta uniform on the sphere.

    Monte Carlo over `n_projections` random directions (drawn with `generator`), exact 1-D W_p between the
    projected empirical laws (sizes may differ). Between two samples of the same law it is O(n^-1/2), not 0.
    """
    n_projections = check_int("n_projections", n_projections, low=1)
    p = check_range("p", p, 1.0, math.inf)
    x = _samples("x", x)
    y = _samples("y", y)
    _same_dim(x, y)
    d = x.shape[1]
    dev = generator.device if generator is not None else x.device
    theta = torch.randn((n_projections, d), generator=generator, device=dev, dtype=F64).to(x.device)
    theta = theta / theta.norm(dim=1, keepdim=True)
    total = torch.zeros((), dtype=F64, device=x.device)
    rows = max(1, _CHUNK_ELEMS // max(x.shape[0] + y.shape[0], 1))
    for start in range(0, n_projections, rows):
        th = theta[start:start + rows]
        a = (th @ x.T).sort(dim=1).values
        b = (th @ y.T).sort(dim=1).values
        total = total + _wasserstein_1d(a, b, p).sum()
    return float((total / n_projections) ** (1.0 / p))


def _kernel_sum(a, b, h2, kernel, *, exclude_diag=False) -> torch.Tensor:
    """sum_ij k(a_i, b_j) in chunks, optionally without the diagonal (a is b)."""
    total = torch.zeros((), dtype=F64, device=a.device)
    rows = _rows(b.shape[0])
    for start in range(0, a.shape[0], rows):
        block = a[start:start + rows]
        dist2 = torch.cdist(block, b, compute_mode="donot_use_mm_for_euclid_dist") ** 2
        if kernel == "rbf":
            kv = torch.exp(-dist2 / (2 * h2))
        else:  # laplace
            kv = torch.exp(-dist2.sqrt() / math.sqrt(h2))
        if exclude_diag:
            ar = torch.arange(block.shape[0], device=a.device)
            kv[ar, ar + start] = 0.0
        total = total + kv.sum()
    return total


def mmd(x: torch.Tensor, y: torch.Tensor, kernel: str = "rbf", bandwidth="median") -> float:
    """Unbiased estimate of MMD^2 (Gretton et al. 2012), a U-statistic (may be slightly negative):

    MMD^2 = mean_{i!=j} k(x_i, x_j) + mean_{i!=j} k(y_i, y_j) - 2 mean_{i,j} k(x_i, y_j),
    k = exp(-|a - b|^2 / (2 h^2)) ("rbf") or exp(-|a - b| / h) ("laplace"); h = `bandwidth`, or "median":
    the median pairwise distance of the pooled samples (on up to 1000 of them, taken evenly).
    """
    kernel = check_choice("kernel", kernel, {"rbf", "laplace"})
    x = _samples("x", x, min_n=2)
    y = _samples("y", y, min_n=2)
    _same_dim(x, y)
    if isinstance(bandwidth, str):
        check_choice("bandwidth", bandwidth, {"median"})
        pooled = torch.cat([x, y])
        sub = pooled[torch.linspace(0, pooled.shape[0] - 1, min(pooled.shape[0], 1000)).long()]
        dist = torch.cdist(sub, sub, compute_mode="donot_use_mm_for_euclid_dist")
        iu = torch.triu_indices(sub.shape[0], sub.shape[0], offset=1)
        h = dist[iu[0], iu[1]].median().item()
        if not h > 0:
            h = 1.0
    else:
        h = check_positive("bandwidth", bandwidth)
    h2 = h * h
    n, m = x.shape[0], y.shape[0]
    kxx = _kernel_sum(x, x, h2, kernel, exclude_diag=True) / (n * (n - 1))
    kyy = _kernel_sum(y, y, h2, kernel, exclude_diag=True) / (m * (m - 1))
    kxy = _kernel_sum(x, y, h2, kernel) / (n * m)
    return float(kxx + kyy - 2 * kxy)


# --- quantiles (Fassina et al. Figure 2) ----------------------------------------------------------------------------
DEFAULT_LEVELS = (0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 0.99999, 0.999999)


def _levels(levels) -> torch.Tensor:
    lv = torch.as_tensor(levels, dtype=F64).reshape(-1)
    if lv.numel() == 0 or not bool(((lv >= 0) & (lv <= 1)).all()):
        raise ValueError(f"levels must be a non-empty sequence of numbers in [0, 1], got {levels!r}")
    return lv


def per_coordinate_quantiles(x: torch.Tensor, levels=DEFAULT_LEVELS) -> torch.Tensor:
    """Empirical quantiles of each coordinate, float64 (L, d): linear interpolation between order statistics
    at position level (n - 1) (numpy's default). Levels beyond 1 - 1/n are the sample maximum: the tail levels
    of Fassina et al. (up to 1 - 10^-6) need ~10^6 samples per coordinate to mean what they say.
    """
    x = _samples("x", x)
    lv = _levels(levels).to(x.device)
    n = x.shape[0]
    xs = x.sort(dim=0).values
    pos = lv * (n - 1)
    lo = pos.floor().long().clamp(0, n - 1)
    hi = (lo + 1).clamp(max=n - 1)
    frac = (pos - lo.to(F64))[:, None]
    return xs[lo] * (1 - frac) + xs[hi] * frac


def quantile_table(samples_by_name: dict, levels=DEFAULT_LEVELS):
    """A pandas DataFrame with one row per (name, level): columns name, level, mean, std, n, d.

    mean and std are over coordinates of the per-coordinate quantile (`per_coordinate_quantiles`): the
    quantity of Fassina et al.'s Figure 2 for i.i.d. coordinates (mean +- std over the d coordinates).
    """
    import pandas as pd

    if not isinstance(samples_by_name, dict) or not samples_by_name:
        raise ValueError("samples_by_name must be a non-empty dict {name: samples of shape (n, d)}")
    lv = _levels(levels)
    rows = []
    for name, x in samples_by_name.items():
        q = per_coordinate_quantiles(_samples(f"samples_by_name[{name!r}]", x), lv)
        std = q.std(dim=1) if q.shape[1] > 1 else torch.zeros(q.shape[0], dtype=F64)
        for j, level in enumerate(lv.tolist()):
            rows.append({"name": name, "level": level, "mean": q[j].mean().item(), "std": std[j].item(),
                         "n": int(x.shape[0]), "d": int(q.shape[1])})
    return pd.DataFrame(rows, columns=["name", "level", "mean", "std", "n", "d"])


# --- mode features (Aranguri et al.) --------------------------------------------------------------------------------
def _mu_dot(x: torch.Tensor, mu):
    """(mu.x per sample, |x|^2 per sample, |mu|^2, d) in float64, chunked over rows (no float64 copy of x)."""
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        raise ValueError(f"x must be a tensor of shape (n, d), got {getattr(x, 'shape', type(x).__name__)}")
    d = x.shape[1]
    if mu is None:
        mu64 = None
        mu_sq = float(d)
    else:
        mu64 = torch.as_tensor(mu, dtype=F64, device=x.device).reshape(-1)
        if mu64.shape[0] != d:
            raise ValueError(f"mu must have length d = {d} to match x, got {mu64.shape[0]}")
        mu_sq = float((mu64 ** 2).sum())
    dots, sqs = [], []
    rows = max(1, _CHUNK_ELEMS // max(d, 1))
    for start in range(0, x.shape[0], rows):
        block = x[start:start + rows].to(F64)
        dots.append(block.sum(-1) if mu64 is None else block @ mu64)
        sqs.append((block ** 2).sum(-1))
    return torch.cat(dots), torch.cat(sqs), mu_sq, d


def mode_weight(x: torch.Tensor, mu=None) -> float:
    """High-level feature p_hat = fraction of samples with mu.x / d > 0 (mu = ones(d) by default); target p."""
    dot, _, _, _ = _mu_dot(x, mu)
    return float((dot > 0).to(F64).mean())


def within_mode_variance(x: torch.Tensor, mu=None) -> float:
    """Low-level feature sigma2_hat = mean over samples of |x - sign(mu.x) mu|^2 / d (mu = ones(d)); target sigma^2.

    Uses |x - s mu|^2 = |x|^2 - 2 s mu.x + |mu|^2 with s = sign(mu.x), so nothing of size n x d is copied.
    """
    dot, sq, mu_sq, d = _mu_dot(x, mu)
    return float(((sq - 2 * dot.abs() + mu_sq) / d).mean())


def cw_features(x: torch.Tensor) -> dict:
    """Curie-Weiss features of spin samples x (n, d): {"p_pos": P(M > 0), "abs_m": E|M|}, M = mean_i sign(x_i).

    Samples from a continuous sampler are first mapped to spins by sign(x) (exact zeros stay 0). Ties M = 0
    (even d) count one half towards p_pos, matching `CurieWeiss.prob_positive` (P(M > 0) + P(M = 0)/2).
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        raise ValueError(f"x must be a tensor of shape (n, d), got {getattr(x, 'shape', type(x).__name__)}")
    M = torch.sign(x).to(F64).mean(-1)
    p_pos = (M > 0).to(F64).mean() + 0.5 * (M == 0).to(F64).mean()
    return {"p_pos": float(p_pos), "abs_m": float(M.abs().mean())}


# --- likelihood by the probability-flow ODE ---------------------------------------------------------------------------
DIGITS_SCALE = 8.0  # diffviz.targets.Digits maps pixels 0..16 to x = pixel/8 - 1: one pixel level = 1/8 in x


def _divergence_exact(score, x, t, d):
    """div_x score(x, t) per sample by d autograd passes (score rows depend only on their own sample)."""
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        out = score(xg, t).reshape(x.shape[0], -1)
        flat = xg
        div = torch.zeros(x.shape[0], dtype=F64, device=x.device)
        for i in range(d):
            (g,) = torch.autograd.grad(out[:, i].sum(), flat, retain_graph=i < d - 1)
            div = div + g.reshape(x.shape[0], -1)[:, i].to(F64)
    return out.detach().reshape(x.shape), div


def _divergence_hutchinson(score, x, t, probes):
    """Hutchinson's estimate mean_k eps_k . d(eps_k . score)/dx, eps Rademacher (fixed along the path)."""
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        out = score(xg, t)
        div = torch.zeros(x.shape[0], dtype=F64, device=x.device)
        n_probes = probes.shape[0]
        for j in range(n_probes):
            eps = probes[j]
            (g,) = torch.autograd.grad((out * eps).sum(), xg, retain_graph=j < n_probes - 1)
            div = div + (g * eps).reshape(x.shape[0], -1).sum(-1).to(F64)
    return out.detach(), div / n_probes


def _prior_log_prob(prior, x: torch.Tensor) -> torch.Tensor:
    """prior.log_prob on x (n, *shape) as float64 (n,): in x's event shape when the prior has it, else flattened."""
    shape = getattr(prior, "_shape", None) or getattr(prior, "shape", None)
    arg = x if shape is not None and tuple(shape) == tuple(x.shape[1:]) else x.reshape(x.shape[0], -1)
    return prior.log_prob(arg).to(F64).reshape(-1)


def nll_pf_ode(score, process, x0: torch.Tensor, grid=None, *, n_steps: int = 200, method: str = "heun",
               divergence: str = "exact", n_probes: int = 1, prior=None,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Negative log-likelihood -log p(x0) in nats per sample (float64 (n,)) by the probability-flow ODE.

    Forward in time from t_min to T along dx/dt = v(x, t) = f(t) x - g(t)^2 score(x, t) / 2, the log-density
    obeys d log p_t(x_t)/dt = -div v = -(f d - g^2 div score / 2), so
      log p_{t_min}(x0) = log nu(x_T) + int_{t_min}^T div v(x_t, t) dt,   NLL = -log nu(x_T) - int div v dt,
    with nu = process.prior(d) unless `prior` (anything with log_prob on flattened (n, d), e.g. an init) is given.
    This is the exact likelihood of the model "prior + probability-flow ODE" at time t_min (the data law
    itself when the score is exact and nu = p_T, up to the discretization error). `grid`: a strictly
    decreasing sampler grid (default schedules.log_snr(process, n_steps) where sigma(t_min) > 0, else uniform),
    integrated from its last point to its first. method: "heun" (2nd order) or "euler". divergence: "exact"
    (d autograd passes per evaluation, small d) or "hutchinson" (n_probes Rademacher probes drawn once per
    sample with `generator`, unbiased, for large d). Runs in float64; the score must be differentiable in x.
    """
    from . import schedules

    method = check_choice("method", method, {"heun", "euler"})
    divergence = check_choice("divergence", divergence, {"exact", "hutchinson"})
    n_probes = check_int("n_probes", n_probes, low=1)
    if not isinstance(x0, torch.Tensor) or not x0.is_floating_point() or x0.dim() < 2:
        raise ValueError(f"x0 must be a floating-point tensor of shape (n, d) or (n, *shape), got "
                         f"{getattr(x0, 'shape', type(x0).__name__)}")
    if grid is None:
        n_steps = check_int("n_steps", n_steps, low=1)
        if float(process.sigma(process.t_min)) > 0:
            grid = schedules.log_snr(process, n_steps)
        else:
            grid = schedules.uniform(process, n_steps)
    ts = schedules.check_grid(grid, process).flip(0).tolist()  # increasing: t_min ... T
    n = x0.shape[0]
    d = math.prod(x0.shape[1:])
    x = x0.detach().to(F64)
    if divergence == "hutchinson":
        dev = generator.device if generator is not None else x.device
        probes = (torch.randint(0, 2, (n_probes, *x.shape), generator=generator, device=dev).to(F64) * 2 - 1)
        probes = probes.to(x.device)

    def velocity(xc, t):
        if divergence == "exact":
            s, div_s = _divergence_exact(score, xc, t, d)
        else:
            s, div_s = _divergence_hutchinson(score, xc, t, probes)
        tt = as_time(t)
        f = float(process.f(tt))
        g2 = float(process.g2(tt))
        return f * xc - 0.5 * g2 * s.to(F64), f * d - 0.5 * g2 * div_s

    integral = torch.zeros(n, dtype=F64, device=x.device)
    v, div = velocity(x, ts[0])
    for i in range(len(ts) - 1):
        t, t_next = ts[i], ts[i + 1]
        h = t_next - t
        if method == "euler":
            x = x + h * v
            integral = integral + h * div
            v, div = velocity(x, t_next)
        else:
            x_pred = x + h * v
            v2, div2 = velocity(x_pred, t_next)
            x = x + 0.5 * h * (v + v2)
            integral = integral + 0.5 * h * (div + div2)
            v, div = velocity(x, t_next)
        if not bool(torch.isfinite(x).all()):
            raise FloatingPointError(f"the probability-flow ODE became non-finite at step {i + 1}, t={t_next:g}")
    if prior is None:
        prior = process.prior(d)
    return -(_prior_log_prob(prior, x) + integral)


def bits_per_dim(nll, d: int, *, scale: float = 1.0):
    """bits/dim = (nll/d + log(scale)) / ln 2, the NLL in the units of the quantized data.

    `nll` in nats for the data in model units x; `scale` = quantization levels per unit of x, so that a
    density in pixel units is p_x / scale^d. For diffviz.targets.Digits (x = pixel/8 - 1, pixels 0..16)
    scale = DIGITS_SCALE = 8: bpd = (nll/64 + ln 8)/ln 2. For 8-bit images mapped to [-1, 1], scale = 127.5.
    This is the continuous density rescaled, not a dequantized discrete likelihood (no uniform noise was
    added in training), so it is comparable across models on the same data, not to published bpd values.
    A tensor nll gives a float64 tensor; a float gives a float.
    """
    d = check_int("d", d, low=1)
    scale = check_positive("scale", scale)
    shift = math.log(scale)
    if isinstance(nll, torch.Tensor):
        return (nll.to(F64) / d + shift) / math.log(2)
    return (float(nll) / d + shift) / math.log(2)


# --- the Franzese et al. bound --------------------------------------------------------------------------------------
def _pair_se(c: torch.Tensor) -> float:
    """Standard error of mean(c) over strata with one draw each, from the differences of adjacent strata pairs
    (conservative: the pair differences also carry the drift of the integrand between strata)."""
    n_t = c.shape[0]
    pairs = n_t // 2
    if pairs == 0:
        return math.nan
    diffs = c[1:2 * pairs:2] - c[0:2 * pairs:2]
    var = (diffs ** 2).sum() * (n_t / (2 * pairs)) / n_t ** 2
    return float(var.sqrt())


def elbo_terms(score_model, process, target, *, T=None, n: int = 4096, n_t: int = 64, t_min=None, prior=None,
               generator: torch.Generator | None = None) -> dict:
    """The two terms of Franzese et al.'s bound KL(p_data || p_theta) <= KL(p_T || nu) + G (docs/theory.md §5.1).

    kl_prior = KL(p_T || nu): Monte Carlo mean of log p_T(x_T) - log nu(x_T) over n free samples x_T when the
      target has `log_prob_t` (Gaussian, mixtures: p_T is again Gaussian / a mixture); else `kl_knn` between
      x_T and n draws of nu (standard error nan). nu = `prior` (anything with log_prob and sample, e.g. a
      fitted init) or process.prior(d).
    score_gap G = 1/2 int_{t_min}^T g^2 E_{p_t} |s_theta(x, t) - grad log p_t(x)|^2 dt against the target's
      exact score: n_t strata of [t_min, T] (t_min defaults to process.t_min, where samplers stop), one
      uniform time per stratum, n // n_t samples x_t at each; standard error from adjacent strata pairs.
    score_model: the usual score(x, t) callable (t a float). Returns floats: kl_prior, kl_prior_se,
    score_gap, score_gap_se, bound = kl_prior + score_gap, bound_se, T.
    """
    from .inits import forward_samples

    n = check_int("n", n, low=2)
    n_t = check_int("n_t", n_t, low=1)
    T = float(process.T) if T is None else check_positive("T", T)
    t_lo = float(process.t_min) if t_min is None else check_range("t_min", t_min, 0.0, T, high_open=True)
    if not t_lo < T:
        raise ValueError(f"t_min must be < T = {T}, got {t_lo}")
    d = math.prod(target.shape)
    if prior is None:
        prior = process.prior(d)

    # KL(p_T || nu)
    xT = forward_samples(target, process, n, t=T, generator=generator, dtype=F64)
    flat = xT.reshape(n, d)
    try:
        log_pT = target.log_prob_t(xT, T, process).to(F64).reshape(-1)
    except (NotImplementedError, AttributeError):  # no closed-form p_T: fall back to nearest neighbours
        log_pT = None
    if log_pT is not None:
        kl_prior, kl_se = kl_to_density(flat, _prior_log_prob(prior, xT), log_pT, return_se=True)
    else:
        y = prior.sample(n, generator=generator, dtype=F64).reshape(n, d)
        kl_prior, kl_se = kl_knn(flat, y), math.nan

    # G: stratified over t
    n_per = max(1, n // n_t)
    dev = generator.device if generator is not None else None
    u = torch.rand(n_t, generator=generator, device=dev, dtype=F64).cpu()
    width = (T - t_lo) / n_t
    ts = t_lo + (torch.arange(n_t, dtype=F64) + u) * width
    contrib = torch.empty(n_t, dtype=F64)
    with torch.no_grad():
        for j, t in enumerate(ts.tolist()):
            x0 = target.sample(n_per, generator=generator, dtype=F64)
            xt, _ = process.marginal(x0, t, generator=generator)
            try:
                exact = target.score(xt, t, process).to(F64)
            except NotImplementedError as err:
                raise ValueError(f"target must have an exact score for the score gap G; {type(target).__name__} "
                                 "has none") from err
            gap = score_model(xt, t).to(F64) - exact
            sq = (gap.reshape(n_per, -1) ** 2).sum(-1).mean()
            contrib[j] = 0.5 * float(process.g2(as_time(t))) * sq.item() * (T - t_lo)
    score_gap = float(contrib.mean())
    gap_se = _pair_se(contrib)
    bound_se = math.sqrt(kl_se ** 2 + gap_se ** 2) if math.isfinite(kl_se) and math.isfinite(gap_se) else math.nan
    return {"kl_prior": float(kl_prior), "kl_prior_se": float(kl_se), "score_gap": score_gap, "score_gap_se": gap_se,
            "bound": float(kl_prior) + score_gap, "bound_se": bound_se, "T": T}



def relative_score_error(score, exact_score, process, target, *, n: int = 2048, n_t: int = 32, t_min: float = 0.05,
                         T=None, generator=None) -> float:
    """E ||s_theta(x_t, t) - grad log p_t(x_t)||^2 / E ||grad log p_t(x_t)||^2 over t ~ U[t_min, T], x_t ~ p_t.

    Stratified in time: `n_t` strata, one uniform time in each, n / n_t samples at that time (scores take
    a scalar t). 0 is perfect; a score that always returns 0 gives 1.
    """
    n = check_int("n", n, 2)
    n_t = check_int("n_t", n_t, 1, n)
    T = float(process.T if T is None else T)
    t_min = check_range("t_min", t_min, 0.0, T, high_open=True)
    u = (torch.arange(n_t, dtype=torch.float64) + torch.rand(n_t, generator=generator, dtype=torch.float64)) / n_t
    num = den = 0.0
    with torch.no_grad():
        for t in (t_min + (T - t_min) * u).tolist():
            x0 = target.sample(n // n_t, generator=generator, dtype=torch.float64)
            xt, _ = process.marginal(x0, t, generator=generator)
            ref = exact_score(xt, t).to(torch.float64)
            got = score(xt.to(torch.float32), t).to(torch.float64)
            num += float((got - ref).pow(2).sum())
            den += float(ref.pow(2).sum())
    return num / den
