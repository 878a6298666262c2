"""Initialization mismatch in Variance-Exploding samplers (Fassina, Cardoso, Le Corff, Romary, "Initialization-Aware
Score-Based Diffusion Sampling", arXiv:2603.00772, 2026; docs/theory.md section 6).

Setting (the seed's Figure 2): d i.i.d. Student-t(df) coordinates, VE noising x_T = x_0 + sigma_T z, and one
reverse sampler (Heun on the probability-flow ODE, N steps uniform in t, i.e. in log sigma) run with the
exact score (`targets.StudentT.score`, quadrature) from three starts: the prior N(0, sigma_T^2 I), the oracle
p_T (fresh data plus noise) and a learned q_phi fitted on samples of x_T. The score error E_score of the bound
KL(p_data || p_hat) <= KL(p_T || q) + (1 + delta) E_score + (1 + 1/delta) E_disc is then zero: what is left
is the initialization term and the discretization term.

The reduction that makes the output quantiles exact (derived, checked in the tests): the exact score acts
coordinate-wise and Heun is deterministic, so an N-step run is one map Phi_N: R -> R applied to every coordinate
(`SamplerMap`, computed by running `diffviz.sample` on the points that are needed). Where Phi_N is increasing
  - the output's quantile at level u is Phi_N(Q_start(u)): population quantiles down to 1 - 1e-6 with no Monte
    Carlo error, for starts with known quantiles (prior; oracle p_T = t_df * N(0, sigma_T^2) by quadrature in
    the mixing variable, `noised_quantile`; learned Student-t per coordinate);
  - the empirical quantile of Phi_N(x) is Phi_N of the empirical quantile of x: a simulation with n x d samples
    only pushes the d x L order statistics (`push_forward`).
As N -> infinity, Phi_N -> Psi = Q_0 o F_T (`TransportMap`, the monotone transport of p_T onto p_0), so the ODE
carries the initialization error through unchanged: KL(p_0 || Psi_# q) = KL(p_T || q) (a bijection keeps KL).
For df <= 2 the data have no second moment and KL(p_T || N(0, sigma_T^2)) = -H(p_T) + E x_T^2 / (2 sigma_T^2)
+ const = infinity at every sigma_T (derived): a Gaussian start is infinitely wrong in KL, the damage sits in
the extreme tail (`truncated_endpoint_kl`).

Quality numbers that work with heavy tails:
  - `binned_kl`: KL(p_0 || p_out) on the bins between the output quantiles at the levels KL_EDGES (1e-6 to
    1 - 1e-6): exact for that partition, a lower bound on the full KL (data processing);
  - `tail_error`: mean over upper levels u in TAIL_LEVELS of |ln(Q_out(u) / Q_0(u))|.
The Gaussian reference (data N(0, lam I)) has the exact KL of the same sampler in closed form
(`theory.sampler_kl`), for the prior start and for the exact start p_T (`gaussian_kl_curves`).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .. import schedules, theory
from ..checks import check_choice, check_int, check_positive, check_range
from ..processes import VE
from ..samplers import sample

LEVELS = (0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 0.99999, 0.999999)
TAIL_LEVELS = (0.9, 0.99, 0.999, 0.9999, 0.99999, 0.999999)
# bin edges (quantile levels of the data) for the binned KL: dense in the bulk, one decade per bin in the tails
KL_EDGES = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99,
            0.999, 0.9999, 0.99999, 0.999999)
SIGMA_TS = (2.0, 7.0, 80.0)
DFS = (3.0, 1.5)
INITS = ("prior", "oracle", "learned")
STEPS = (2, 4, 8, 16, 32, 64, 128, 256)
METHOD = "heun"
GAUSS_LAM = 3.0  # variance of Student-t(3): the Gaussian reference with the same second moment
CLUSTER_STEP, CLUSTER_MAX = 0.05, 33  # first-round spacing in asinh(x/c) and most points of a cluster (SamplerMap)


def make_process(sigma_T: float) -> VE:
    """VE with horizon sigma_T (diffviz convention x_T = x_0 + sigma_T z, sigma_min = 0.01 at t = 0)."""
    return VE(sigma_T=check_positive("sigma_T", sigma_T))


def make_target(df: float, d: int = 1):
    """d i.i.d. Student-t(df) coordinates (scale 1)."""
    from ..targets import StudentT

    return StudentT(check_int("d", d, 1), check_positive("df", df))


def make_grid(process, n_steps: int, schedule: str = "uniform") -> torch.Tensor:
    """N-step grid from T to 0 (`schedules.<schedule>`); uniform in t is uniform in log sigma for VE."""
    check_choice("schedule", schedule, {"uniform", "karras", "log_snr"})
    return getattr(schedules, schedule)(process, check_int("n_steps", n_steps, 1))


# ------------------------------------------------------------------------------------------------------------
# the noised Student-t law p_T = t_df * N(0, sigma^2): CDF, survival function, quantile (quadrature in log W)
# ------------------------------------------------------------------------------------------------------------
def _mixture_nodes(df: float, x_max: float, sigma: float, step: float = 0.05):
    """Trapezoid nodes u = log W, W ~ InvGamma(df/2, df/2), and log(step * density of u), float64 numpy."""
    a = b = 0.5 * df
    u_lo = math.log(b / 60.0) - 1.0  # below it the density exp(-a u - b e^{-u}) is < e^-60 of its peak
    knee = 2.0 * math.log(max(abs(x_max), 1.0) + sigma + 1.0)  # where W ~ x^2 carries the tail mass
    u_hi = knee + 40.0 / a + 2.0
    u = np.arange(u_lo, u_hi + step, step)
    log_w = math.log(step) + a * math.log(b) - math.lgamma(a) - a * u - b * np.exp(-u)
    return u, log_w


def noised_sf(x, df: float, sigma: float) -> np.ndarray:
    """P(X > x) for X = T + sigma Z, T ~ Student-t(df): E_W Phi_c(x / sqrt(W + sigma^2)), float64 (quadrature)."""
    from scipy.special import log_ndtr

    x = np.asarray(x, dtype=np.float64)
    df = check_positive("df", df)
    sigma = check_range("sigma", sigma, 0.0, math.inf)
    flat = x.reshape(-1)
    x_max = float(np.abs(flat).max()) if flat.size else 1.0
    u, log_w = _mixture_nodes(df, x_max, sigma)
    sd = np.sqrt(np.exp(u) + sigma ** 2)
    out = np.empty_like(flat)
    for start in range(0, flat.size, 512):
        blk = flat[start:start + 512, None]
        L = log_w + log_ndtr(-blk / sd)
        mx = L.max(axis=1, keepdims=True)
        out[start:start + 512] = np.exp(mx[:, 0]) * np.exp(L - mx).sum(axis=1)
    return out.reshape(x.shape)


def noised_cdf(x, df: float, sigma: float) -> np.ndarray:
    """P(X <= x) = sf(-x) by symmetry (accurate in the lower tail; upper tail: use `noised_sf`)."""
    return noised_sf(-np.asarray(x, dtype=np.float64), df, sigma)


def noised_quantile(q, df: float, sigma: float, *, iters: int = 80) -> np.ndarray:
    """Quantile of T + sigma Z at levels q in (0, 1) by bisection in asinh(x) on the survival function."""
    q = np.asarray(q, dtype=np.float64)
    if not np.all((q > 0) & (q < 1)):
        raise ValueError(f"q must lie in (0, 1), got {q.ravel()[:6].tolist()}")
    from scipy.stats import t as student_t

    tail = np.minimum(q, 1 - q)  # solve sf(x) = tail for x >= 0, then restore the sign
    hi_x = np.abs(student_t.isf(tail, df)) + 12.0 * sigma + 1.0  # sf(hi_x) < tail
    lo, hi = np.zeros_like(tail), np.arcsinh(hi_x)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        too_small = noised_sf(np.sinh(mid), df, sigma) > tail
        lo, hi = np.where(too_small, mid, lo), np.where(too_small, hi, mid)
    x = np.sinh(0.5 * (lo + hi))
    return np.where(q >= 0.5, x, -x)


# ------------------------------------------------------------------------------------------------------------
# the N-step sampler as a map of the real line: Phi_N
# ------------------------------------------------------------------------------------------------------------
def exact_score(target, process):
    """score(x, t) = grad log p_t(x) of the Student-t target (quadrature in float64), as `sample` wants it."""
    return lambda x, t: target.score(x, t, process)


def run_sampler(x_init: torch.Tensor, df: float, sigma_T: float, n_steps: int, *, method: str = METHOD,
                schedule: str = "uniform", generator=None) -> torch.Tensor:
    """The direct simulation: `diffviz.sample` on x_init (n, d) with the exact Student-t score, sigma_T -> t = 0."""
    process = make_process(sigma_T)
    target = make_target(df, x_init.shape[-1])
    grid = make_grid(process, n_steps, schedule)
    return sample(exact_score(target, process), process, x_init, grid, method, generator=generator)


class NotMonotoneError(ValueError):
    """The N-step map is not increasing (too few steps for the range of sigma): quantiles cannot be pushed."""


class SamplerMap:
    """Phi_N, the coordinate map of N deterministic sampler steps (Heun by default) with the exact score.

    `push(x)` runs `diffviz.sample` on the points x themselves (any shape; float64) with the exact score
    `targets.StudentT.score`. `push_many(arrays)` pushes several arrays in one batch, plus a guard grid of
    `n_guard` points spread in asinh(x/c), c = sqrt(1 + sigma_T^2), and checks that the map is increasing on
    all of them (the quantile identities need it; too few steps over a long range of sigma break it).
    An array of shape (d, L) marked `cluster` (per-coordinate quantiles: each column holds close values) is
    pushed as a few points spanning each column and interpolated by a cubic spline in asinh coordinates;
    a cluster is refined (midpoints pushed) until a leave-every-other-point-out estimate of the spline error
    is below `rtol` (relative, floor 1e-2 c), at most `max_rounds` times. Few steps at large sigma_T make
    Phi_N wiggle on the scale of a step's displacement, which is what the refinement is for.
    """

    def __init__(self, df: float, sigma_T: float, n_steps: int, *, method: str = METHOD, schedule: str = "uniform",
                 n_guard: int = 32, rtol: float = 1e-4, max_rounds: int = 5, cluster_step: float = CLUSTER_STEP):
        check_choice("method", method, {"heun", "ode-euler", "ddim"})
        self.df, self.sigma_T = check_positive("df", df), check_positive("sigma_T", sigma_T)
        self.n_steps = check_int("n_steps", n_steps, 1)
        self.method, self.schedule = method, schedule
        self.n_guard = check_int("n_guard", n_guard, 0)
        self.rtol = check_positive("rtol", rtol)
        self.max_rounds = check_int("max_rounds", max_rounds, 0)
        self.cluster_step = check_positive("cluster_step", cluster_step)
        self.process = make_process(sigma_T)
        self.target = make_target(df, 1)
        self.grid = make_grid(self.process, self.n_steps, schedule)
        self.c = math.sqrt(1.0 + sigma_T ** 2)
        self.n_pushed = 0  # points pushed so far (cost bookkeeping)

    def push(self, x) -> np.ndarray:
        """Phi_N(x) by running the sampler on the points x (one batch), float64 numpy of x's shape."""
        x = np.asarray(x, dtype=np.float64)
        flat = torch.from_numpy(np.ascontiguousarray(x.reshape(-1, 1)))
        out = sample(exact_score(self.target, self.process), self.process, flat, self.grid, self.method)
        self.n_pushed += flat.shape[0]
        return out.numpy().reshape(x.shape)

    def _start_points(self, col: np.ndarray) -> np.ndarray:
        """Points spanning one column: uniform in asinh(x/c) with spacing <= CLUSTER_STEP (5 to CLUSTER_MAX)."""
        lo, hi = np.arcsinh(col.min() / self.c), np.arcsinh(col.max() / self.c)
        if not hi - lo > 1e-12:
            return np.array([col.min()])
        m = int(min(CLUSTER_MAX, max(5, math.ceil((hi - lo) / self.cluster_step) + 1)))
        return self.c * np.sinh(np.linspace(lo, hi, m))

    def _spline_error(self, xs, ys) -> float:
        """Estimated error of the spline through all points: (error of the spline through every other point)/16."""
        from scipy.interpolate import CubicSpline

        if xs.size < 9:
            return 0.0 if xs.size == 1 else math.inf
        u, v = np.arcsinh(xs / self.c), np.arcsinh(ys / self.c)
        coarse = CubicSpline(u[::2], v[::2])
        pred = self.c * np.sinh(coarse(u[1::2]))
        return float(np.max(np.abs(pred - ys[1::2]) / (np.abs(ys[1::2]) + 1e-2 * self.c))) / 16.0

    def push_many(self, arrays, *, cluster=None) -> list:
        """[Phi_N(a) for a in arrays] in one sampler batch (+ refinement rounds for clustered (d, L) arrays)."""
        from scipy.interpolate import CubicSpline

        arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
        cluster = [False] * len(arrays) if cluster is None else list(cluster)
        direct, clusters = [], []  # clusters: [array index, column, xs]
        for i, (a, cl) in enumerate(zip(arrays, cluster)):
            if cl:
                if a.ndim != 2:
                    raise ValueError(f"clustered arrays must have shape (d, L), got shape {a.shape}")
                clusters.extend([i, j, self._start_points(a[:, j])] for j in range(a.shape[1]))
            else:
                direct.append(i)
        first = [arrays[i].reshape(-1) for i in direct] + [cl[2] for cl in clusters]
        everything = np.concatenate(first) if first else np.zeros(0)
        span = max(float(np.abs(everything).max()) if everything.size else 1.0, 6.0 * self.c)
        guard = self.c * np.sinh(np.linspace(-1, 1, self.n_guard) * math.asinh(span / self.c))
        allx = np.concatenate([everything, guard])
        ally = self.push(allx)
        order = np.argsort(allx, kind="stable")
        if np.any(np.diff(ally[order]) < 0):
            raise NotMonotoneError(f"the {self.n_steps}-step {self.method} map is not increasing (sigma_T = "
                             f"{self.sigma_T:g}, df = {self.df:g}): the quantile push-forward needs a monotone map; "
                             "use more steps")
        out, pos = [None] * len(arrays), 0
        for i in direct:
            out[i] = ally[pos:pos + arrays[i].size].reshape(arrays[i].shape)
            pos += arrays[i].size
        for cl in clusters:
            cl.append(ally[pos:pos + cl[2].size])
            pos += cl[2].size
        # refine the clusters whose spline error estimate is too large: push the midpoints (in asinh)
        for _ in range(self.max_rounds):
            todo = [cl for cl in clusters if self._spline_error(cl[2], cl[3]) > self.rtol]
            if not todo:
                break
            mids = []
            for cl in todo:
                u = np.arcsinh(cl[2] / self.c)
                mids.append(self.c * np.sinh(0.5 * (u[1:] + u[:-1])))
            new_y = self.push(np.concatenate(mids))
            pos = 0
            for cl, mid in zip(todo, mids):
                xs = np.concatenate([cl[2], mid])
                ys = np.concatenate([cl[3], new_y[pos:pos + mid.size]])
                pos += mid.size
                k = np.argsort(xs)
                cl[2], cl[3] = xs[k], ys[k]
        for i in set(cl[0] for cl in clusters):
            out[i] = np.empty_like(arrays[i])
        for i, j, xs, ys in clusters:
            if xs.size == 1:
                out[i][:, j] = ys[0]
            else:
                spline = CubicSpline(np.arcsinh(xs / self.c), np.arcsinh(ys / self.c))
                out[i][:, j] = self.c * np.sinh(spline(np.arcsinh(arrays[i][:, j] / self.c)))
        return out


class TransportMap:
    """Psi = Q_0 o F_T, the N -> infinity limit of Phi_N: the monotone transport of p_T onto p_0 (sigma_min ignored)."""

    def __init__(self, df: float, sigma_T: float):
        self.df, self.sigma_T = check_positive("df", df), check_positive("sigma_T", sigma_T)
        self.n_steps = math.inf

    def push(self, x) -> np.ndarray:
        """Psi(x) = Q_0(F_T(x)), computed on the tail probability P(X_T > |x|) for accuracy in both tails."""
        from scipy.stats import t as student_t

        x = np.asarray(x, dtype=np.float64)
        tail = noised_sf(np.abs(x), self.df, self.sigma_T)
        mag = student_t.isf(tail, self.df)
        return np.where(x >= 0, mag, -mag)

    def push_many(self, arrays, *, cluster=None) -> list:
        """[Psi(a) for a in arrays] (no clusters needed: Psi is evaluated directly)."""
        return [self.push(a) for a in arrays]


# ------------------------------------------------------------------------------------------------------------
# starting laws: samples (for the simulation) and exact quantiles (for the push-forward)
# ------------------------------------------------------------------------------------------------------------
def fit_learned(df: float, sigma_T: float, *, n_fit: int = 1000, d: int = 100, n_iter: int = 200,
                df_mode: str = "per-coordinate", generator=None):
    """q_phi: independent Student-t coordinates (loc, scale, df) fitted by ECM
    (expectation-conditional maximisation) on n_fit free samples of x_T."""
    from ..inits import StudentTInit, forward_samples

    process, target = make_process(sigma_T), make_target(df, d)
    x_t = forward_samples(target, process, check_int("n_fit", n_fit, 10), generator=generator, dtype=torch.float64)
    return StudentTInit(df=df_mode, n_iter=n_iter).fit(x_t)


def make_init(kind: str, df: float, sigma_T: float, d: int, *, learned=None):
    """The `diffviz.inits` object for kind in INITS (learned: the fitted StudentTInit to use)."""
    from ..inits import OracleInit, StandardPrior

    check_choice("init", kind, set(INITS))
    process = make_process(sigma_T)
    if kind == "prior":
        return StandardPrior(process, d)
    if kind == "oracle":
        return OracleInit(make_target(df, d), process)
    if learned is None:
        raise ValueError("init='learned' needs the fitted q_phi (learned=fit_learned(...))")
    return learned


def init_quantiles(kind: str, df: float, sigma_T: float, levels, *, learned=None) -> np.ndarray:
    """Exact quantiles of the start: (L,) for prior and oracle (every coordinate alike), (d, L) for learned."""
    from scipy.special import ndtri
    from scipy.stats import t as student_t

    u = np.asarray(levels, dtype=np.float64)
    check_choice("init", kind, set(INITS))
    if kind == "prior":
        return sigma_T * ndtri(u)
    if kind == "oracle":
        return noised_quantile(u, df, sigma_T)
    if learned is None:
        raise ValueError("init='learned' needs the fitted q_phi (learned=fit_learned(...))")
    loc, scale, nu = (v.detach().cpu().to(torch.float64).numpy()[:, None] for v in
                      (learned.loc, learned.scale, learned.df))
    return loc + scale * student_t.ppf(u[None, :], nu)


def order_statistic_quantiles(x, levels) -> np.ndarray:
    """Per-coordinate empirical quantiles X_(ceil(n u)) of samples x (n, d) -> (d, L) (inverted-CDF definition).

    For an increasing map Phi, the empirical quantile of Phi(x) is Phi of the empirical quantile of x exactly.
    """
    x = x.detach().cpu().to(torch.float64).numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float64)
    n = x.shape[0]
    k = np.clip(np.ceil(n * np.asarray(levels, dtype=np.float64)).astype(int) - 1, 0, n - 1)
    part = np.partition(x, np.unique(k), axis=0)
    return part[k].T


def supported_levels(levels, n: int, min_count: int = 10) -> np.ndarray:
    """Mask of the levels u with at least `min_count` samples on either side: min(n u, n (1 - u)) >= min_count."""
    u = np.asarray(levels, dtype=np.float64)
    return np.minimum(n * u, n * (1 - u)) >= min_count


# ------------------------------------------------------------------------------------------------------------
# quality numbers that work with heavy tails
# ------------------------------------------------------------------------------------------------------------
def data_quantiles(df: float, levels) -> np.ndarray:
    """Q_0(u) of Student-t(df)."""
    from scipy.stats import t as student_t

    return student_t.ppf(np.asarray(levels, dtype=np.float64), df)


def binned_kl(df: float, out_quantiles, levels) -> np.ndarray:
    """KL(p_0 || p_out) of the binned variable, bins between the output quantiles y_k = Q_out(u_k) (exact).

    The output puts mass u_{k+1} - u_k in each bin (and u_0, 1 - u_K in the end bins); the data put
    F_0(y_{k+1}) - F_0(y_k). KL = sum_k P0_k ln(P0_k / dU_k): exact for this partition, a lower bound on the
    full KL (data processing). out_quantiles (..., L) -> (...,) per coordinate.
    """
    from scipy.stats import t as student_t

    y = np.asarray(out_quantiles, dtype=np.float64)
    u = np.asarray(levels, dtype=np.float64)
    lower = student_t.cdf(np.minimum(y, 0.0), df)  # accurate tails: cdf for y < 0, 1 - sf for y > 0
    upper_sf = student_t.sf(np.maximum(y, 0.0), df)
    F = np.where(y < 0, lower, 1.0 - upper_sf)
    p0 = np.concatenate([F[..., :1], np.diff(F, axis=-1), np.where(y[..., -1:] > 0, upper_sf[..., -1:],
                                                                    1.0 - F[..., -1:])], axis=-1)
    du = np.concatenate([u[:1], np.diff(u), 1.0 - u[-1:]])
    p0 = np.clip(p0, 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p0 > 0, p0 * np.log(p0 / du), 0.0)
    return terms.sum(-1)


def tail_error(df: float, out_quantiles, levels) -> np.ndarray:
    """Mean over the given upper levels of |ln(Q_out(u) / Q_0(u))| (levels > 0.5), per coordinate."""
    u = np.asarray(levels, dtype=np.float64)
    if not np.all(u > 0.5):
        raise ValueError(f"tail_error needs upper levels u > 0.5, got {u.tolist()}")
    y = np.asarray(out_quantiles, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.abs(np.log(np.where(y > 0, y, np.nan) / data_quantiles(df, u)))
    return np.where(np.isnan(err), np.inf, err).mean(-1)


def _stats(values) -> tuple:
    """(mean, std) over coordinates of a (d, L) array, or (values, zeros) for an (L,) array."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        return v, np.zeros_like(v)
    return v.mean(0), v.std(0)


# ------------------------------------------------------------------------------------------------------------
# the experiments
# ------------------------------------------------------------------------------------------------------------
def _make_map(df, sigma_T, n_steps, method, schedule, **options):
    if n_steps == math.inf:
        return TransportMap(df, sigma_T)
    return SamplerMap(df, sigma_T, n_steps, method=method, schedule=schedule, **options)


def _union(*level_lists) -> np.ndarray:
    return np.unique(np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in level_lists]))


def _pick(y: np.ndarray, all_levels: np.ndarray, levels) -> np.ndarray:
    idx = np.searchsorted(all_levels, np.asarray(levels, dtype=np.float64))
    return y[..., idx]


def push_forward(df: float, sigma_T: float, n_steps, *, exact=INITS, simulate=None, learned=None, levels=LEVELS,
                 kl_levels=KL_EDGES, tail_levels=TAIL_LEVELS, min_count: int = 10, method: str = METHOD,
                 schedule: str = "uniform", rtol: float = 1e-4, max_rounds: int = 5,
                 cluster_step: float = CLUSTER_STEP) -> dict:
    """The sampler's output quantiles, in one sampler batch: exactly for the starts in `exact`, and for the
    simulated starts `simulate` = {init: x_init (n, d)} through their per-coordinate order statistics, at the
    levels with at least `min_count` samples on either side (NaN at the others).

    n_steps = math.inf uses the continuous limit Psi; rtol, max_rounds, cluster_step: clusters (`SamplerMap`).
    Returns {"exact": {init: {"mean", "std" (L,) over
    coordinates, "binned_kl" and "tail_error" (means over coordinates)}}, "sim": {init: {"mean", "std",
    "quantiles" (d, L), "supported" (L,), "tail_error" over the supported tail levels (estimated), "n", "d"}}}.
    """
    fmap = _make_map(df, sigma_T, n_steps, method, schedule, rtol=rtol, max_rounds=max_rounds,
                     cluster_step=cluster_step)
    ex_levels = _union(levels, kl_levels, tail_levels)
    simulate = simulate or {}
    arrays, cluster, sim_levels = [], [], {}
    for kind in exact:
        q = init_quantiles(kind, df, sigma_T, ex_levels, learned=learned)
        arrays.append(q)
        cluster.append(q.ndim == 2)
    for kind, x in simulate.items():  # only the levels the sample size supports are pushed
        lv = _union(levels, tail_levels)
        sim_levels[kind] = lv = lv[supported_levels(lv, x.shape[0], min_count)]
        arrays.append(order_statistic_quantiles(x, lv))
        cluster.append(True)
    pushed = fmap.push_many(arrays, cluster=cluster)
    out = {"levels": np.asarray(levels, dtype=np.float64), "exact": {}, "sim": {}}
    for kind, y in zip(exact, pushed):
        mean, std = _stats(_pick(y, ex_levels, levels))
        out["exact"][kind] = {
            "mean": mean, "std": std,
            "binned_kl": float(np.mean(binned_kl(df, _pick(y, ex_levels, kl_levels), kl_levels))),
            "tail_error": float(np.mean(tail_error(df, _pick(y, ex_levels, tail_levels), tail_levels)))}
    for (kind, x), y in zip(simulate.items(), pushed[len(exact):]):
        n, lv = x.shape[0], sim_levels[kind]
        ok = supported_levels(levels, n, min_count)
        q = np.full((x.shape[1], len(levels)), np.nan)
        q[:, ok] = _pick(y, lv, np.asarray(levels, dtype=np.float64)[ok])
        mean, std = q.mean(0), q.std(0)
        tail_ok = [float(v) for v in tail_levels if supported_levels([v], n, min_count)[0]]
        err = float(np.mean(tail_error(df, _pick(y, lv, tail_ok), tail_ok))) if tail_ok else math.nan
        out["sim"][kind] = {"mean": mean, "std": std, "quantiles": q, "supported": ok, "tail_error": err,
                            "tail_levels_used": tail_ok, "n": n, "d": x.shape[1]}
    return out


def exact_outputs(df: float, sigma_T: float, n_steps, **kwargs) -> dict:
    """{init: exact summary} of `push_forward` (no sampling); n_steps = math.inf for the continuous limit."""
    return push_forward(df, sigma_T, n_steps, **kwargs)["exact"]


def draw_starts(df: float, sigma_T: float, n: int, d: int, *, inits=INITS, learned=None, generator=None) -> dict:
    """{init: n samples (n, d) float64 of the start} from the `diffviz.inits` objects."""
    return {k: make_init(k, df, sigma_T, d, learned=learned).sample(n, generator=generator, dtype=torch.float64)
            for k in inits}


def figure2(df: float, sigma_T: float, n_steps: int, *, n: int = 2000, d: int = 100, learned=None, levels=LEVELS,
            inits=INITS, method: str = METHOD, generator=None) -> dict:
    """The seed's Figure 2 at one (df, sigma_T): true quantiles, exact pushed quantiles and the simulation per start."""
    starts = draw_starts(df, sigma_T, n, d, inits=inits, learned=learned, generator=generator)
    res = push_forward(df, sigma_T, n_steps, exact=inits, simulate=starts, learned=learned, levels=levels,
                       method=method)
    return {"df": df, "sigma_T": sigma_T, "n_steps": n_steps, "true": data_quantiles(df, levels), **res}


def steps_sweep(df: float, sigma_T: float, steps=STEPS, *, inits=INITS, learned=None, method: str = METHOD,
                schedule: str = "uniform") -> dict:
    """Exact binned KL and tail error against the step count N for each start (NaN where Phi_N is not monotone).

    Adds the N -> infinity limit ("limit": the transport Psi), where the binned KL is that of p_T against the start.
    """
    res = {k: {"binned_kl": [], "tail_error": []} for k in inits}
    for n_steps in steps:
        try:
            out = exact_outputs(df, sigma_T, n_steps, exact=inits, learned=learned, levels=(0.5,), method=method,
                                schedule=schedule)
        except NotMonotoneError:
            out = {k: {"binned_kl": math.nan, "tail_error": math.nan} for k in inits}
        for k in inits:
            res[k]["binned_kl"].append(out[k]["binned_kl"])
            res[k]["tail_error"].append(out[k]["tail_error"])
    limit = exact_outputs(df, sigma_T, math.inf, exact=inits, learned=learned, levels=(0.5,))
    for k in inits:
        res[k] = {m: np.array(v) for m, v in res[k].items()}
        res[k]["limit_binned_kl"] = limit[k]["binned_kl"]
        res[k]["limit_tail_error"] = limit[k]["tail_error"]
    return {"steps": np.array(steps), "df": df, "sigma_T": sigma_T, **res}


def steps_needed(steps, values, threshold: float):
    """Smallest N in `steps` from which on `values` stay <= threshold (None if never)."""
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values) & (values <= threshold)
    for i in range(len(ok)):
        if ok[i:].all():
            return int(steps[i])
    return None


# ------------------------------------------------------------------------------------------------------------
# exact references
# ------------------------------------------------------------------------------------------------------------
def gaussian_kl_curves(sigma_Ts=SIGMA_TS, steps=STEPS, *, lam: float = GAUSS_LAM, d: int = 100,
                       method: str = METHOD) -> dict:
    """Exact KL(data || output) of the sampler on Gaussian data N(0, lam I_d) (theory.sampler_kl), prior vs exact start.

    Also the endpoint KL(p_T || N(0, sigma_T^2 I)) = d/2 [r - ln(1 + r)], r = lam / sigma_T^2 (its N -> inf limit
    for the ODE from the prior).
    """
    lam = check_positive("lam", lam)
    d = check_int("d", d, 1)
    out = {"steps": np.array(steps), "lam": lam, "d": d, "prior": {}, "exact": {}, "endpoint": {}}
    for s in sigma_Ts:
        process = make_process(s)
        out["prior"][s] = np.array([d * theory.sampler_kl(process, int(n), [lam], method=method, init="prior")
                                    for n in steps])
        out["exact"][s] = np.array([d * theory.sampler_kl(process, int(n), [lam], method=method, init="exact")
                                    for n in steps])
        out["endpoint"][s] = d * theory.endpoint_kl_ve([lam], s)
    return out


def gaussian_kl(sigma_T: float, n_steps: int, init: str = "prior", *, lam: float = GAUSS_LAM, d: int = 100,
                method: str = METHOD) -> float:
    """One point of `gaussian_kl_curves`: d * KL per coordinate, init "prior" or "exact"."""
    return d * theory.sampler_kl(make_process(sigma_T), int(n_steps), [lam], method=method, init=init)


def truncated_endpoint_kl(df: float, sigma_T: float, cutoffs, *, init: str = "prior", learned=None,
                          n_per_unit: int = 100) -> np.ndarray:
    """KL(p_T || q) restricted to |x| <= X, int_{-X}^{X} p_T ln(p_T / q) dx, for each cutoff X (quadrature).

    p_T = Student-t(df) * N(0, sigma_T^2) by `targets.StudentT.log_prob_t`; q the prior N(0, sigma_T^2) or the
    learned per-coordinate Student-t (mean over coordinates). Trapezoid in y = asinh(x/c). For df <= 2 and the
    Gaussian prior the integral grows like X^(2 - df) without bound: KL(p_T || prior) = infinity (derived).
    """
    from scipy.stats import t as student_t

    check_choice("init", init, {"prior", "learned"})
    cutoffs = np.asarray(cutoffs, dtype=np.float64)
    c = math.sqrt(1.0 + sigma_T ** 2)
    y_max = math.asinh(float(cutoffs.max()) / c)
    y = np.linspace(0.0, y_max, int(math.ceil(y_max * n_per_unit)) + 1)
    x = c * np.sinh(y)
    target, process = make_target(df, 1), make_process(sigma_T)
    log_pt = target.log_prob_t(torch.from_numpy(x[:, None]), process.T, process).numpy()
    if init == "prior":
        log_q = -0.5 * (x / sigma_T) ** 2 - math.log(sigma_T) - 0.5 * math.log(2 * math.pi)
        log_q = log_q[None, :]
    else:
        if learned is None:
            raise ValueError("init='learned' needs the fitted q_phi")
        loc, scale, nu = (v.detach().cpu().to(torch.float64).numpy()[:, None] for v in
                          (learned.loc, learned.scale, learned.df))
        # both signs, since the fitted loc breaks the symmetry: average the +x and -x contributions
        log_q = (0.5 * (student_t.logpdf((x - loc) / scale, nu) + student_t.logpdf((-x - loc) / scale, nu))
                 - np.log(scale))
    dens = np.exp(log_pt) * (log_pt - log_q) * c * np.cosh(y)  # integrand in y, one side
    cum = np.concatenate([np.zeros((dens.shape[0], 1)), np.cumsum(0.5 * (dens[:, 1:] + dens[:, :-1]) * np.diff(y),
                                                                   axis=1)], axis=1)
    vals = 2.0 * np.stack([np.interp(np.arcsinh(cutoffs / c), y, row) for row in cum])
    return vals.mean(0)


def summary_rows(figures: dict, sweeps: dict, *, kl_tol: float) -> list:
    """Rows (dicts) of the key table: per (df, sigma_T, start) the exact binned KL and tail error at the reference
    N, their N -> inf limits, the simulated tail error and the steps needed for binned KL <= kl_tol.

    figures = {(df, sigma_T): E.figure2(...)}, sweeps = {(df, sigma_T): E.steps_sweep(...)}.
    """
    rows = []
    for (df, s), fig in figures.items():
        sw = sweeps.get((df, s))
        for kind, ex in fig["exact"].items():
            row = {"nu": df, "sigma_T": s, "start": kind, "N": fig["n_steps"], "binned_kl": ex["binned_kl"],
                   "tail_error": ex["tail_error"], "sim_tail_error": fig["sim"].get(kind, {}).get("tail_error")}
            if sw is not None and kind in sw:
                row.update(limit_binned_kl=sw[kind]["limit_binned_kl"], limit_tail_error=sw[kind]["limit_tail_error"],
                           steps_needed=steps_needed(sw["steps"], sw[kind]["binned_kl"], kl_tol))
            rows.append(row)
    return rows
