"""One 2-D scenario end to end: a target you draw, a process, a grid, a sampler, a start, a score, the metrics.

The sandbox (notebook 06, `diffviz.dashboards.sandbox.SandboxDashboard`) runs every update through `run`, and
the dashboard's "copy as code" prints a few lines that call the same function, so both give the same numbers:

    target = beads([[-1.5, 0.0], [1.5, 0.0]], weights=[0.5, 0.5], width=0.3)   # or toy("moons"), StudentT(2, 3)
    process = VP(T=1.0)
    grid = schedules.make_grid("uniform", process, 20)
    result = run(target, process, grid, sampler="heun", start="prior", eps=0.0, n_samples=2000, seed=0)
    result["numbers"]

Score: the exact noised score of the target plus a constant error, s_θ(x, t) = ∇log p_t(x) + ε e,
e = (1, 1)/√2, so |s_θ - ∇log p_t| = ε at every (x, t) (the ε of notebook 1, docs/notation.md).
Numbers (`run(...)["numbers"]`):
- kl_start = KL(p_T ‖ q): exact for the oracle start (0), for Student-t data with ν ≤ 2 (∞: every other start has
  Gaussian tails) and for a Gaussian p_T against a Gaussian q (closed form); otherwise Monte Carlo over x ~ p_T, mean of log p_T(x) - log q(x) ± its standard error;
- kl_samples = KL(p̂ ‖ p_data) of the sampler's output p̂: the cross-entropy -mean log p_data(x̂) minus the
  Kozachenko–Leonenko entropy estimate (k nearest neighbours), ± a standard error that treats the per-sample
  terms as independent (`kl_to_data`);
- nfe: score evaluations per sample (the network calls a trained model would pay), and the sample mean along e.

A scenario is also a small dict (`DEFAULTS`, `check_scenario`, `save_scenario`, `load_scenario`, `to_code`):
the JSON file a lecturer hands out.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from . import inits, schedules
from .checks import check_choice, check_int, check_range
from .processes import VE, VP, SubVP
from .rng import make_generator
from .samplers import SAMPLERS, sample
from .targets import StudentT, toy
from .targets.mixture import GaussianMixture
from .targets.toys import TOY_NAMES

F64 = torch.float64
ERROR_DIRECTION = (1 / math.sqrt(2), 1 / math.sqrt(2))  # e: the direction of the constant score error
VIEW = 4.0  # the plots show [-VIEW, VIEW]^2; beads must lie inside

DATA = ("drawn",) + TOY_NAMES + ("student-t",)
PROCESSES = {"vp": "VP", "subvp": "sub-VP", "ve": "VE"}
SCHEDULES = ("uniform", "karras", "cosine", "tangent", "quadratic", "log_snr", "dilated")
STARTS = {"prior": "prior p_∞", "gaussian": "fitted Gaussian", "gmm": "fitted GMM", "oracle": "oracle p_T"}
MAX_BEADS = 200

DEFAULTS = {
    "data": "drawn",
    "beads": [[-1.5, -0.8, 1.0], [1.5, -0.8, 1.0], [0.0, 1.6, 1.0]],  # [x, y, weight]; weights are normalised
    "width": 0.4,
    "df": 3.0,
    "process": "vp",
    "T": 1.0,
    "sigma_T": 10.0,
    "schedule": "uniform",
    "sampler": "heun",
    "n_steps": 20,
    "start": "prior",
    "eps": 0.0,
    "seed": 0,
    "n_samples": 2000,
}

# field -> (kind, allowed): "choice" values, "float" (low, high), "int" (low, high)
FIELDS = {
    "data": ("choice", DATA),
    "width": ("float", (0.05, 1.5)),
    "df": ("float", (1.0, 30.0)),
    "process": ("choice", tuple(PROCESSES)),
    "T": ("float", (0.1, 3.0)),
    "sigma_T": ("float", (0.5, 200.0)),
    "schedule": ("choice", SCHEDULES),
    "sampler": ("choice", tuple(SAMPLERS)),
    "n_steps": ("int", (1, 200)),
    "start": ("choice", tuple(STARTS)),
    "eps": ("float", (0.0, 2.0)),
    "seed": ("int", (0, 99)),
    "n_samples": ("int", (100, 20000)),
}


# --- the pieces --------------------------------------------------------------------------------------------------
def beads(points, weights=None, width: float = 0.4) -> GaussianMixture:
    """The drawn target sum_k π_k N(μ_k, w² I): beads at `points` (K, 2), weights normalised to sum 1, width w."""
    pts = torch.as_tensor(points, dtype=F64).reshape(-1, 2)
    if pts.shape[0] == 0:
        raise ValueError("the drawn target has no beads: click on the plot to add one (or pick a toy)")
    w = torch.ones(pts.shape[0], dtype=F64) if weights is None else torch.as_tensor(weights, dtype=F64).reshape(-1)
    if w.shape[0] != pts.shape[0] or not bool((w > 0).all()) or not bool(torch.isfinite(w).all()):
        raise ValueError(f"weights must be {pts.shape[0]} positive numbers (one per bead), got {w.tolist()}")
    width = check_range("width", width, 0.0, math.inf, low_open=True)
    return GaussianMixture(w / w.sum(), pts, torch.full((pts.shape[0],), width ** 2, dtype=F64), name="drawn")


def make_process(name: str, *, T: float = 1.0, sigma_T: float = 10.0):
    """VP(T=T), SubVP(T=T) (β from 0.1 to 20, samplers stop at t_min = 10⁻³) or VE(sigma_T=σ_T) (σ_min = 0.01)."""
    name = check_choice("process", name, PROCESSES)
    if name == "ve":
        return VE(sigma_T=sigma_T)
    return (VP if name == "vp" else SubVP)(T=T)


def make_grid(schedule: str, process, n_steps: int):
    """`schedules.make_grid`, with "dilated" explained: it is the time dilation of notebook 4's interpolants."""
    if schedule == "dilated":
        raise ValueError("schedule 'dilated' applies to the interpolant processes of notebook 4 (the dilated "
                         "time of Aranguri et al.), not to VP, sub-VP or VE; allowed here: "
                         + ", ".join(s for s in SCHEDULES if s != "dilated"))
    return schedules.make_grid(schedule, process, n_steps)


def make_target(scenario: dict):
    """The scenario's data law: the drawn beads, a toy (beads too) or StudentT(2, ν) (heavy tails)."""
    s = scenario
    if s["data"] == "student-t":
        return StudentT(2, s["df"])
    if s["data"] in TOY_NAMES:
        return toy(s["data"])
    b = s["beads"]
    return beads([p[:2] for p in b], [p[2] for p in b], s["width"])


def toy_beads(name: str) -> tuple[list, float]:
    """A toy as editable beads: ([[x, y, weight], ...], width)."""
    t = toy(name)
    pts = [[round(x, 4), round(y, 4), round(w, 6)] for (x, y), w in zip(t.means.tolist(), t.weights.tolist())]
    return pts, float(t.covs[0].sqrt())


def _gaussian(target):
    """(mean, cov) of the target when it is one Gaussian (a single bead), else None."""
    if isinstance(target, GaussianMixture) and target.n_components == 1:
        return target.means[0], target.cov_matrices()[0]
    return None


def make_start(start: str, target, process, *, n_fit: int = 2000, generator=None):
    """The start q of the reverse process: prior p_∞, a Gaussian or an 8-component GMM fitted by maximum
    likelihood to n_fit free samples of p_T, or the oracle p_T itself."""
    start = check_choice("start", start, STARTS)
    if start == "prior":
        return inits.StandardPrior(process, target.dim)
    if start == "oracle":
        return inits.OracleInit(target, process)
    xT = inits.forward_samples(target, process, n_fit, generator=generator, dtype=F64)
    if start == "gaussian":
        return inits.MomentMatchedGaussian().fit(xT)
    k = min(8, target.n_components) if isinstance(target, GaussianMixture) else 8
    return inits.GMMInit(n_components=k, n_iter=100, tol=1e-5, seed=0).fit(xT, generator=generator)


class ErrorScore:
    """s_θ(x, t) = ∇log p_t(x) + ε e (e = ERROR_DIRECTION): the exact score plus a constant error; counts calls."""

    def __init__(self, target, process, eps: float = 0.0):
        self.target, self.process, self.eps = target, process, float(eps)
        self.calls = 0

    def __call__(self, x, t):
        self.calls += 1
        s = self.target.score(x, t, self.process)
        if self.eps:
            s = s + self.eps * torch.tensor(ERROR_DIRECTION, dtype=s.dtype, device=s.device)
        return s


def kl_start(target, process, nu, *, n: int = 4000, generator=None) -> tuple[float, float, bool]:
    """KL(p_T ‖ q) as (value, standard error, exact?): 0 for the oracle; ∞ for Student-t data with ν ≤ 2 against
    any other start (Gaussian tails, docs/theory.md §6.2); the Gaussian closed form when p_T and q are Gaussian;
    else Monte Carlo mean of log p_T(x) - log q(x) over n draws x ~ p_T (for Student-t data with ν ≤ 4 its
    variance is infinite: the ± understates the error)."""
    from . import theory

    if isinstance(nu, inits.OracleInit):
        return 0.0, 0.0, True
    if isinstance(target, StudentT) and target.df <= 2:
        # p_T has no second moment and every other start has Gaussian tails: E_{p_T}[-log q] = ∞ (docs/theory.md §6.2)
        return math.inf, 0.0, True
    g = _gaussian(target)
    if g is not None and isinstance(nu, (inits.StandardPrior, inits.MomentMatchedGaussian)):
        T = float(process.T)
        m, s = float(process.mean_scale(T)), float(process.std(T))
        mean_T, cov_T = m * g[0], m ** 2 * g[1] + s ** 2 * torch.eye(2, dtype=F64)
        if isinstance(nu, inits.StandardPrior):
            mean_nu, cov_nu = torch.zeros(2, dtype=F64), nu.std ** 2 * torch.eye(2, dtype=F64)
        else:
            mean_nu = nu.mean.to(F64)
            cov_nu = nu.cov.to(F64) if nu.cov.dim() == 2 else torch.diag(nu.cov.to(F64))
        return float(theory.kl_gaussian(mean_T, cov_T, mean_nu, cov_nu)), 0.0, True
    x = inits.forward_samples(target, process, n, generator=generator, dtype=F64)
    diff = target.log_prob_t(x, float(process.T), process).to(F64) - nu.log_prob(x).to(F64)
    return float(diff.mean()), float(diff.std() / math.sqrt(n)), False


def kl_to_data(x, log_p, *, k: int = 5) -> tuple[float, float]:
    """KL(p̂ ‖ p) from x ~ p̂ (n, d) and the exact log p: the mean over i of
    -log p(x_i) - [ψ(n) - ψ(k) + log V_d + d log ρ_k(i)] (Kozachenko–Leonenko), and std/√n of those terms."""
    from .metrics import _knn_dist

    x = x.to(F64)
    n, d = x.shape
    rho = _knn_dist(x, x, k, exclude_self=True)
    digamma = lambda v: torch.digamma(torch.tensor(float(v), dtype=F64)).item()  # noqa: E731
    log_vd = 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1)
    terms = -log_p(x).to(F64) - (digamma(n) - digamma(k) + log_vd + d * torch.log(rho))
    if not bool(torch.isfinite(terms).all()):
        return math.inf, math.nan
    return float(terms.mean()), float(terms.std() / math.sqrt(n))


def run(target, process, grid, *, sampler: str = "heun", start: str = "prior", eps: float = 0.0,
        n_samples: int = 2000, seed: int = 0, n_paths: int = 8) -> dict:
    """Run one scenario: draw n_samples from the start q, run `sampler` on `grid` with s_θ = ∇log p_t + ε e.

    Returns {"numbers": {...} (see the module docstring), "se": {}, "samples": (n, 2) float64,
    "paths": (N + 1, n_paths, 2) states of the first particles at every grid time, "times": (N + 1,), "nu": q}.
    One generator seeded with `seed` draws, in order: the fit of q, q's samples, the sampler's noise, the Monte
    Carlo of KL(p_T ‖ q).
    """
    check_choice("sampler", sampler, SAMPLERS)
    n = check_int("n_samples", n_samples, 10)
    gen = make_generator(seed, "cpu")
    nu = make_start(start, target, process, generator=gen)
    x0 = nu.sample(n, generator=gen, dtype=F64)
    score = ErrorScore(target, process, eps)
    times = torch.as_tensor(grid, dtype=F64)
    paths = [x0[:n_paths].clone()]

    def keep(i, t, x):
        paths.append(x[:n_paths].clone())
    keep.copies_state = True
    x = sample(score, process, x0, grid, sampler, generator=gen, callback=keep)
    kl_nu, kl_nu_se, exact = kl_start(target, process, nu, generator=gen)
    kl_s, kl_s_se = kl_to_data(x, target.log_prob)
    e = torch.tensor(ERROR_DIRECTION, dtype=F64)
    proj = x @ e
    numbers = {
        "n_beads": target.n_components if isinstance(target, GaussianMixture) else 0,
        "kl_start": kl_nu, "kl_start_se": kl_nu_se, "kl_start_exact": exact,
        "kl_samples": kl_s, "kl_samples_se": kl_s_se,
        "nfe": score.calls,
        "mean_along_e": float(proj.mean()), "mean_along_e_se": float(proj.std() / math.sqrt(n)),
    }
    return {"numbers": numbers, "se": {}, "samples": x, "paths": torch.stack(paths), "times": times, "nu": nu}


# --- scenario dicts, JSON, code ------------------------------------------------------------------------------------
def _bad(field, allowed, got):
    return ValueError(f"scenario field {field!r} must be {allowed}, got {got!r}")


def check_scenario(data) -> dict:
    """A complete, checked scenario from a dict: missing fields raise, unknown fields raise, every value is
    checked against FIELDS (the error names the field and the allowed values or range). `beads` and `width` make
    the target when data is "drawn"; a toy or the Student-t ignores them (the Student-t uses `df`)."""
    if not isinstance(data, dict):
        raise ValueError(f"a scenario must be a JSON object (a dict of fields), got {type(data).__name__}")
    unknown = set(data) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown scenario field(s) {sorted(unknown)}; allowed fields: {sorted(DEFAULTS)}")
    missing = [k for k in DEFAULTS if k not in data]
    if missing:
        raise ValueError(f"scenario field(s) {missing} missing; a scenario needs all of {list(DEFAULTS)}")
    out = {}
    for field, (kind, allowed) in FIELDS.items():
        v = data[field]
        if kind == "choice":
            if v not in allowed:
                raise _bad(field, f"one of {list(allowed)}", v)
        elif kind == "int":
            if isinstance(v, bool) or not isinstance(v, int) or not allowed[0] <= v <= allowed[1]:
                raise _bad(field, f"an integer in [{allowed[0]}, {allowed[1]}]", v)
        else:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not allowed[0] <= v <= allowed[1]:
                raise _bad(field, f"a number in [{allowed[0]:g}, {allowed[1]:g}]", v)
            v = float(v)
        out[field] = v
    b = data["beads"]
    ok = isinstance(b, list) and len(b) <= MAX_BEADS and all(
        isinstance(p, list) and len(p) == 3 and all(isinstance(c, (int, float)) and not isinstance(c, bool)
                                                    for c in p) for p in b)
    if ok:
        ok = all(-VIEW <= p[0] <= VIEW and -VIEW <= p[1] <= VIEW and 0 < p[2] <= 1e6 for p in b)
    if not ok:
        raise _bad("beads", f"a list of at most {MAX_BEADS} [x, y, weight] triples with x, y in [-{VIEW:g}, "
                            f"{VIEW:g}] and weight in (0, 1e6]", b if len(str(b)) < 200 else str(b)[:200] + "...")
    if out["data"] == "drawn" and not b:
        raise _bad("beads", "non-empty when data is 'drawn' (click on the plot to add a bead, or pick a toy)", b)
    out["beads"] = [[float(c) for c in p] for p in b]
    return {k: out[k] for k in DEFAULTS}


def save_scenario(scenario: dict, path) -> Path:
    """Write the checked scenario as a small JSON file; returns the path."""
    path = Path(path)
    s = check_scenario(scenario)
    lines = []
    for k, v in s.items():
        if k == "beads":  # one bead [x, y, weight] per line
            inner = ",\n".join(f"  {json.dumps(p)}" for p in v)
            lines.append(f' "beads": [\n{inner}\n ]' if v else ' "beads": []')
        else:
            lines.append(f" {json.dumps(k)}: {json.dumps(v)}")
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")
    return path


def load_scenario(path) -> dict:
    """Read a scenario JSON file; raises ValueError naming the file and the bad field (and what is allowed)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not a JSON file ({err}); a scenario is a JSON object with the fields "
                         f"{list(DEFAULTS)}") from None
    try:
        return check_scenario(data)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def scenario_parts(scenario: dict):
    """(target, process, grid) of a checked scenario."""
    s = check_scenario(scenario)
    process = make_process(s["process"], T=s["T"], sigma_T=s["sigma_T"])
    return make_target(s), process, make_grid(s["schedule"], process, s["n_steps"])


def run_scenario(scenario: dict, **kw) -> dict:
    """`run` on the scenario's target, process and grid with its sampler, start, ε, n_samples and seed."""
    s = check_scenario(scenario)
    target, process, grid = scenario_parts(s)
    return run(target, process, grid, sampler=s["sampler"], start=s["start"], eps=s["eps"],
               n_samples=s["n_samples"], seed=s["seed"], **kw)


def _num(v: float) -> str:
    return repr(float(v))  # round-trips exactly: the printed code gets the same numbers


def to_code(scenario: dict) -> str:
    """Plain diffviz calls that reproduce the scenario: target, process, grid, then `run` (sampler, start, the
    metrics). Executing them gives the dashboard's numbers (same seed)."""
    s = check_scenario(scenario)
    if s["data"] == "student-t":
        imp, tgt = "from diffviz.targets import StudentT", f"target = StudentT(2, df={_num(s['df'])})"
    elif s["data"] in TOY_NAMES:
        imp, tgt = "from diffviz.targets import toy", f"target = toy({s['data']!r})"
    else:
        pts = ", ".join(f"[{_num(p[0])}, {_num(p[1])}]" for p in s["beads"])
        ws = ", ".join(_num(p[2]) for p in s["beads"])
        imp, tgt = None, f"target = beads([{pts}],\n               weights=[{ws}], width={_num(s['width'])})"
    proc = {"vp": f"VP(T={_num(s['T'])})", "subvp": f"SubVP(T={_num(s['T'])})",
            "ve": f"VE(sigma_T={_num(s['sigma_T'])})"}[s["process"]]
    lines = ["from diffviz import VE, VP, SubVP, schedules", "from diffviz.sandbox import beads, run"]
    if imp:
        lines.append(imp)
    lines += [
        "",
        tgt,
        f"process = {proc}",
        f"grid = schedules.make_grid({s['schedule']!r}, process, {s['n_steps']})",
        f"result = run(target, process, grid, sampler={s['sampler']!r}, start={s['start']!r}, eps={_num(s['eps'])},",
        f"             n_samples={s['n_samples']}, seed={s['seed']})",
        "print(result[\"numbers\"])",
    ]
    return "\n".join(lines) + "\n"
