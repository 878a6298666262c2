"""The diffusion-time trade-off (Franzese et al. 2023; docs/theory.md §5): the bound, the cost, auxiliary starts.

The bound  KL(p_data || p_hat) <= KL(p_T || q) + G(s_theta, T),  G = 1/2 int_0^T g^2 E_{p_t}|s_theta - grad log p_t|^2,
pits the endpoint term (falls with T) against the score term (grows with T for a fixed model class), while the
cost of sampling at a fixed step size grows like T. Sections, as in notebook 1:

- `gaussian_bound`: data N(0, lam), constant score error eps^2, G = 1/2 eps^2 B(T); closed form, interior
  optimum T*(lam, eps) (derived, docs/theory.md §5.2). With eps = 0 the bound is the endpoint term alone: longer
  is better.
- `train_models`, `bound_vs_T`: score networks trained per horizon T on a non-Gaussian 2-D target with exact
  p_t (a scaled bead mixture, `make_target`); both terms estimated by `metrics.elbo_terms` (with error bars).
- `sampling_cost`: score evaluations (NFE) counted while sampling at a fixed step size, against T.
- `fit_init`, `init_kl`, `model_kl`, `compare_inits`: auxiliary starts q_phi fitted by maximum likelihood on
  free forward samples x_T = m(T) x_0 + s(T) z (moment-matched Gaussian, GMM by expectation-maximisation,
  RealNVP flow) against the prior p_inf = N(0, I) at a small T. `model_kl` measures KL(p_data || model) of the
  probability-flow ODE model by its exact likelihood: -log p_model(x_0) = -log q(x_T) - int div v dt along the
  ODE path x_0 -> x_T, so the path integral is shared by all starts and only the endpoint term log q(x_T) changes.

The 2-D toys of `diffviz.targets.toy` are normalised to unit variance, so their p_T is close to N(0, I) already
at small T; `make_target` scales them (default x2, per-coordinate variance 4, like the Gaussian toy's lam = 4)
so that the endpoint mismatch is visible at T = 0.2-0.4 for VP with beta_max = 20.
"""
from __future__ import annotations

import json
import math

import numpy as np
import torch

from .. import theory
from ..checks import check_choice, check_int, check_positive, check_range
from ..inits import FlowInit, GMMInit, MomentMatchedGaussian, StandardPrior, forward_samples
from ..metrics import elbo_terms, kl_knn, kl_to_density, nll_pf_ode
from ..processes import VP
from ..rng import make_generator
from ..samplers import sample
from ..schedules import uniform

F64 = torch.float64
LAM = 4.0  # data variance of the Gaussian toy N(0, LAM)
EPS2 = 0.01  # constant squared score error of the Gaussian toy
BETA_MIN, BETA_MAX = 0.1, 20.0
T_MIN = 1e-3
INITS = ("prior", "gaussian", "gmm", "flow")
INIT_LABELS = {"prior": "prior p_∞ = N(0, I)", "gaussian": "moment-matched Gaussian",
               "gmm": "GMM (expectation–maximisation)", "flow": "RealNVP flow"}
TARGETS = ("moons", "8gaussians", "rings", "checkerboard", "swissroll", "gaussian")


# ------------------------------------------------------------------------------------------------------------
# setting
# ------------------------------------------------------------------------------------------------------------
def make_process(T: float = 1.0) -> VP:
    """VP (beta in [0.1, 20]) with horizon T; beta(t) keeps its formula for any T, samplers stop at t_min = 1e-3."""
    T = check_positive("T", T)
    return VP(BETA_MIN, BETA_MAX, T=T, t_min=min(T_MIN, 0.5 * T))


def make_target(name: str = "moons", scale: float = 2.0, lam: float = LAM):
    """A 2-D target with exact p_t: a bead toy ("moons", "8gaussians", ...) scaled by `scale` (per-coordinate
    variance scale^2), or "gaussian" = N(0, lam I_2)."""
    from ..targets import Gaussian, GaussianMixture, toy

    name = check_choice("name", name, set(TARGETS))
    if name == "gaussian":
        return Gaussian(torch.zeros(2, dtype=F64), check_positive("lam", lam))
    scale = check_positive("scale", scale)
    base = toy(name)
    return GaussianMixture(base.weights, scale * base.means, scale ** 2 * base.covs, name=f"toy:{name} x{scale:g}")


def _target_id(target) -> str:
    return json.dumps(target.key(), sort_keys=True, default=str)


# ------------------------------------------------------------------------------------------------------------
# 1. the Gaussian toy: exact bound (derived)
# ------------------------------------------------------------------------------------------------------------
def gaussian_bound(lam: float = LAM, eps2: float = EPS2, *, T_max: float = 1.5, n_grid: int = 301) -> dict:
    """Bound(T) = 1/2[u a - ln(1 + u a)] + 1/2 eps^2 B(T), u = e^{-B(T)}, a = lam - 1, on a grid of [0, T_max].

    Returns numpy arrays T, kl (endpoint term), gap (score term), bound, and the optimum: T_star (numerical
    argmin on [0, T_max]), T_star_closed (stationary point a^2 u^2 = eps^2 (1 + u a), derived), kl_star,
    gap_star, bound_star; bound_T_max; interior (0 < T* < T_max).
    """
    lam = check_positive("lam", lam)
    eps2 = check_range("eps2", eps2, 0.0, math.inf)
    T_max = check_positive("T_max", T_max)
    n_grid = check_int("n_grid", n_grid, 2)
    process = make_process(T_max)
    ts = torch.linspace(0.0, T_max, n_grid, dtype=F64)
    kl, gap = theory.franzese_bound_terms(ts, lam, eps2, process)
    t_star = theory.franzese_optimal_T(lam, eps2, process, T_max=T_max)
    t_closed = theory.franzese_optimal_T_vp_closed_form(lam, eps2, process)
    kl_star, gap_star = theory.franzese_bound_terms(t_star, lam, eps2, process)
    return {"lam": lam, "eps2": eps2, "T": ts.numpy(), "kl": kl.numpy(), "gap": gap.numpy(),
            "bound": (kl + gap).numpy(), "T_star": t_star, "T_star_closed": t_closed, "kl_star": kl_star,
            "gap_star": gap_star, "bound_star": kl_star + gap_star,
            "bound_T_max": theory.franzese_bound(T_max, lam, eps2, process),
            "interior": bool(0.0 < t_star < T_max * (1 - 1e-6))}


def optimal_T_vs_eps(lam: float = LAM, eps_values=None) -> dict:
    """T*(lam, eps) from the closed form (derived) for a range of eps (default 10^-3 .. 10^0.5); eps -> 0 gives T* -> inf."""
    lam = check_positive("lam", lam)
    eps = np.logspace(-3, 0.5, 60) if eps_values is None else np.asarray(eps_values, dtype=float)
    process = make_process(1.0)
    return {"eps": eps, "T_star": np.array([theory.franzese_optimal_T_vp_closed_form(lam, e ** 2, process)
                                            for e in eps])}


# ------------------------------------------------------------------------------------------------------------
# 2. trained scores: both terms estimated
# ------------------------------------------------------------------------------------------------------------
def train_models(target, Ts, *, steps: int = 300, hidden: int = 64, depth: int = 3, batch_size: int = 256,
                 lr: float = 2e-3, seed: int = 0, device=None, progress: bool = False, cache=True) -> dict:
    """One score network (ScoreMLP, eps-parametrised, trained on t ~ U[t_min, T]) per horizon T: {T: ScoreModel}.

    Cached by `diffviz.cache` under the full definition (process with its T, target, net, steps, seed), so a
    rerun loads the weights instead of training.
    """
    from ..models import ScoreMLP
    from ..train import train_score

    models = {}
    for T in Ts:
        T = check_positive("T", T)
        net = ScoreMLP(target.dim, hidden=check_int("hidden", hidden, 1), depth=check_int("depth", depth, 1))
        models[T] = train_score(target, make_process(T), net=net, steps=steps, batch_size=batch_size, lr=lr,
                                seed=seed, device=device, progress=progress, cache=cache)
    return models


def bound_vs_T(target, models: dict, *, inits=("prior", "gmm"), n: int = 4096, n_t: int = 64, n_fit: int = 4000,
               seed: int = 0) -> dict:
    """Both terms of the bound for each trained model {T: score}: KL(p_T || q) per start q and G (elbo_terms).

    Every start's KL uses the same x_T draws (one generator seed per T), so the starts are compared on equal
    footing; G does not depend on q. Returns lists over the sorted T: score_gap, score_gap_se, and dicts
    {init: list} kl, kl_se, bound, bound_se.
    """
    for name in inits:
        check_choice("init", name, set(INITS))
    Ts = sorted(models)
    out = {"T": Ts, "score_gap": [], "score_gap_se": [], "kl": {k: [] for k in inits},
           "kl_se": {k: [] for k in inits}, "bound": {k: [] for k in inits}, "bound_se": {k: [] for k in inits}}
    for i, T in enumerate(Ts):
        process = make_process(T)
        for j, name in enumerate(inits):
            nu = fit_init(name, target, T, n_fit=n_fit, seed=seed)
            e = elbo_terms(models[T], process, target, T=T, n=n, n_t=n_t, prior=nu,
                           generator=make_generator(1000 + 17 * i + seed, "cpu"))
            if j == 0:
                out["score_gap"].append(e["score_gap"])
                out["score_gap_se"].append(e["score_gap_se"])
            out["kl"][name].append(e["kl_prior"])
            out["kl_se"][name].append(e["kl_prior_se"])
            out["bound"][name].append(e["kl_prior"] + out["score_gap"][-1])
            out["bound_se"][name].append(math.hypot(e["kl_prior_se"], out["score_gap_se"][-1]))
    return out


# ------------------------------------------------------------------------------------------------------------
# 3. cost
# ------------------------------------------------------------------------------------------------------------
class CountingScore:
    """Wraps a score callable and counts its evaluations (the number of function evaluations, NFE)."""

    def __init__(self, score):
        self.score = score
        self.calls = 0

    def __call__(self, x, t):
        self.calls += 1
        return self.score(x, t)


def steps_for(T: float, step_size: float) -> int:
    """Steps of a uniform grid on [t_min, T] with step <= step_size: ceil(T / step_size)."""
    return max(1, math.ceil(check_positive("T", T) / check_positive("step_size", step_size) - 1e-9))


def sampling_cost(Ts, step_size: float = 0.01, methods=("em", "ode-euler", "heun"), *, n: int = 64,
                  seed: int = 0) -> dict:
    """NFE counted while sampling (exact score of N(0, LAM I_2)) at a fixed step size, per T and sampler.

    Returns T, n_steps (ceil(T / step_size)) and {method: NFE list}; NFE = n_steps for one-evaluation steps,
    2 n_steps for Heun. The work per evaluation does not depend on T, so the cost is proportional to T.
    """
    target = make_target("gaussian")
    out = {"T": [float(T) for T in Ts], "step_size": float(step_size), "n_steps": [], "nfe": {m: [] for m in methods}}
    gen = make_generator(seed, "cpu")
    for T in out["T"]:
        process = make_process(T)
        k = steps_for(T, step_size)
        out["n_steps"].append(k)
        grid = uniform(process, k)
        for m in methods:
            score = CountingScore(lambda x, t, p=process: target.score(x, t, p))
            sample(score, process, torch.randn(n, 2, generator=gen), grid, m, generator=gen)
            out["nfe"][m].append(score.calls)
    return out


# ------------------------------------------------------------------------------------------------------------
# 4. auxiliary starts
# ------------------------------------------------------------------------------------------------------------
_FITS: dict = {}


def fit_init(name: str, target, T: float, *, n_fit: int = 4000, seed: int = 0, gmm_components: int = 8,
             flow_steps: int = 400, flow_hidden: int = 32, flow_layers: int = 4):
    """The start `name` in INITS fitted by maximum likelihood on n_fit free samples of p_T (x_T = m x_0 + s z).

    "prior": N(0, I) (nothing fitted); "gaussian": moment-matched N(mean, cov); "gmm": `gmm_components`
    full-covariance components by expectation-maximisation; "flow": RealNVP with `flow_layers` couplings. All
    starts at the same (target, T, n_fit, seed) are fitted on the same samples. Memoised in this process: a
    dashboard and a notebook asking for the same fit share it (fits are deterministic given the seed).
    """
    name = check_choice("init", name, set(INITS))
    T = check_positive("T", T)
    n_fit = check_int("n_fit", n_fit, 16)
    key = (name, _target_id(target), T, n_fit, int(seed), int(gmm_components), int(flow_steps), int(flow_hidden),
           int(flow_layers))
    if key in _FITS:
        return _FITS[key]
    process = make_process(T)
    x = forward_samples(target, process, n_fit, generator=make_generator(seed, "cpu"))
    if name == "prior":
        init = StandardPrior(process, target.dim).fit(x)
    elif name == "gaussian":
        init = MomentMatchedGaussian().fit(x)
    elif name == "gmm":
        init = GMMInit(gmm_components, seed=seed, n_iter=150, tol=1e-5).fit(x)
    else:
        init = FlowInit(n_layers=flow_layers, hidden=flow_hidden, steps=flow_steps, seed=seed,
                        batch_size=256).fit(x)
    _FITS[key] = init
    return init


def init_kl(target, T: float, init, *, n: int = 4000, seed: int = 1) -> tuple[float, float, bool]:
    """KL(p_T || q) -> (value, standard error, exact?).

    Exact for the Gaussian target with a Gaussian q (prior or moment-matched: `theory.kl_gaussian`, se = 0);
    otherwise the Monte Carlo mean of log p_T(x_T) - log q(x_T) over n fresh x_T (unbiased, se = std/sqrt(n)).
    """
    from ..targets import Gaussian

    process = make_process(T)
    if isinstance(target, Gaussian) and isinstance(init, (StandardPrior, MomentMatchedGaussian)):
        m, s = float(process.mean_scale(T)), float(process.std(T))
        cov_T = m ** 2 * target.cov_matrix() + s ** 2 * torch.eye(target.dim, dtype=F64)
        if isinstance(init, StandardPrior):
            mean_nu, cov_nu = torch.zeros(target.dim, dtype=F64), init.std ** 2
        else:
            mean_nu, cov_nu = init.mean, init.cov
        return theory.kl_gaussian(m * target.mean, cov_T, mean_nu, cov_nu), 0.0, True
    xT = forward_samples(target, process, n, generator=make_generator(seed, "cpu"), dtype=F64)
    kl, se = kl_to_density(xT, init.log_prob, target.log_prob_t(xT, T, process), return_se=True)
    return float(kl), float(se), False


class _EndpointRecorder:
    """A 'prior' with log q = 0 that keeps the point x_T where `nll_pf_ode` evaluates it."""

    x = None

    def log_prob(self, x):
        self.x = x.detach().clone()
        return torch.zeros(x.shape[0], dtype=F64, device=x.device)


def pf_ode_path(score, process, x0: torch.Tensor, *, n_steps: int = 50, divergence: str = "exact",
                n_probes: int = 1, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the probability-flow ODE from x0 (at t_min) to T: (x_T flattened (n, d), int div v dt (n,)), float64.

    Then -log p_model(x0) = -log q(x_T) - integral for any start q (`metrics.nll_pf_ode` with q fixed).
    """
    rec = _EndpointRecorder()
    neg_integral = nll_pf_ode(score, process, x0, n_steps=n_steps, divergence=divergence, n_probes=n_probes,
                              prior=rec, generator=generator)
    return rec.x, -neg_integral


def endpoint_log_prob(init, x_T_flat: torch.Tensor) -> torch.Tensor:
    """log q(x_T) for x_T flattened (n, d), reshaped to the start's event shape."""
    return init.log_prob(x_T_flat.reshape(x_T_flat.shape[0], *init.shape)).to(F64)


def model_kl(target, T: float, score, inits: dict, *, n_eval: int = 500, n_steps: int = 50, seed: int = 2) -> dict:
    """KL(p_data || p_model) of 'start q, then the probability-flow ODE of `score`' for each q in `inits`.

    Exact-density estimate with error bars: mean over n_eval data points of log p_data(x0) + NLL_model(x0), NLL by
    the PF-ODE (Heun, n_steps log-SNR steps, exact divergence in d = 2); standard error std/sqrt(n_eval).
    With the exact score and no discretization error this equals KL(p_T || q) (KL is invariant under the
    ODE's bijection): the endpoint term of the bound, carried to the data unchanged.
    Returns {name: (kl, se)}.
    """
    process = make_process(T)
    x0 = target.sample(check_int("n_eval", n_eval, 2), generator=make_generator(seed, "cpu"), dtype=F64)
    xT, integral = pf_ode_path(score, process, x0, n_steps=n_steps)
    log_p0 = target.log_prob(x0).to(F64)
    out = {}
    for name, init in inits.items():
        diff = log_p0 + (-(endpoint_log_prob(init, xT) + integral))
        out[name] = (float(diff.mean()), float(diff.std() / math.sqrt(diff.shape[0])))
    return out


def score_of(target, process, eps: float = 0.0):
    """The exact score of `target` under `process`, plus a constant error eps * (1, ..., 1)/sqrt(d).

    The error has squared norm eps^2 at every (x, t), so G = 1/2 eps^2 int_{t_min}^T g^2 = 1/2 eps^2 (B(T) - B(t_min)).
    """
    eps = check_range("eps", eps, 0.0, math.inf)
    if eps == 0.0:
        return lambda x, t: target.score(x, t, process)
    d = target.dim
    unit = torch.full((d,), 1.0 / math.sqrt(d), dtype=F64)
    cache = {}

    def score(x, t):
        key = (x.device, x.dtype)
        if key not in cache:
            cache[key] = (eps * unit).to(device=x.device, dtype=x.dtype)
        return target.score(x, t, process) + cache[key]

    return score


def score_gap_constant(process, eps: float) -> float:
    """G for a constant score error eps: 1/2 eps^2 (B(T) - B(t_min)) (exact)."""
    return 0.5 * eps ** 2 * float(process.B(process.T) - process.B(process.t_min))


def compare_inits(target, T: float, score=None, *, inits=INITS, n_samples: int = 2000, step_size: float = 0.01,
                  method: str = "em", n_eval: int = 500, nll_steps: int = 50, n_fit: int = 4000, n_kl: int = 4000,
                  seed: int = 0) -> dict:
    """Start the reverse process at horizon T from each q in `inits`; the same score (default: exact) and sampler.

    Per start: kl_pT (KL(p_T || q) with se, `init_kl`), samples (n_samples, by `method` on a uniform grid with
    step <= step_size, so n_steps = ceil(T / step_size)), sample_kl (KL(p_data || samples) by k-nearest
    neighbours against n_samples fresh data; estimated, no error bar) and model_kl (KL(p_data || PF-ODE
    model) from the exact likelihood, with se; `model_kl`). Also data (the reference draws) and n_steps, nfe.
    """
    process = make_process(T)
    score = score_of(target, process) if score is None else score
    fitted = {name: fit_init(name, target, T, n_fit=n_fit, seed=seed) for name in inits}
    n_steps = steps_for(T, step_size)
    grid = uniform(process, n_steps)
    data = target.sample(n_samples, generator=make_generator(seed + 7, "cpu"))
    out = {"T": float(T), "inits": list(inits), "n_steps": n_steps, "data": data, "samples": {}, "kl_pT": {},
           "kl_pT_se": {}, "kl_pT_exact": {}, "sample_kl": {}, "nfe": None}
    for i, (name, init) in enumerate(fitted.items()):
        gen = make_generator(seed + 100 + i, "cpu")
        counted = CountingScore(score)
        x = sample(counted, process, init.sample(n_samples, generator=gen), grid, method, generator=gen)
        out["nfe"] = counted.calls
        out["samples"][name] = x
        out["sample_kl"][name] = kl_knn(data, x)
        kl, se, exact = init_kl(target, T, init, n=n_kl, seed=seed + 1)
        out["kl_pT"][name], out["kl_pT_se"][name], out["kl_pT_exact"][name] = kl, se, exact
    mk = model_kl(target, T, score, fitted, n_eval=n_eval, n_steps=nll_steps, seed=seed + 2)
    out["model_kl"] = {k: v[0] for k, v in mk.items()}
    out["model_kl_se"] = {k: v[1] for k, v in mk.items()}
    return out
