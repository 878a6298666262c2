# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1 · The diffusion-time trade-off (Franzese et al. 2023)
#
# How long should the forward diffusion run? Franzese et al. (Entropy 25(4):633, 2023; arXiv 2206.05173) read the
# negative ELBO as a bound
#
# $$\mathrm{KL}(p_{\rm data}\,\|\,p_\theta^{T,\nu}) \;\le\; \underbrace{\mathrm{KL}(p_T\,\|\,\nu)}_{\text{falls with } T}
# \;+\; \underbrace{G(s_\theta, T)}_{\text{grows with } T},\qquad
# G = \tfrac12\int_0^T g(t)^2\, \mathbb{E}_{p_t}\|s_\theta(x,t) - \nabla\log p_t(x)\|^2\,dt,$$
#
# and the cost of sampling grows with $T$ too. **Results below.** (1) On a Gaussian toy, data $N(0,\lambda)$ with
# a constant score error $\varepsilon^2$, both terms are closed forms and the bound has an interior minimum
# $T^*(\lambda,\varepsilon)$ (the formulas are standard, the optimum is *derived* for diffviz, theory.md §4); with the
# exact score $G = 0$ and a longer horizon is always better. (2) For score networks trained per $T$ on a
# non-Gaussian 2-D target whose $p_t$ and exact score are known, both terms are *estimated* (Monte Carlo, with
# standard errors): the endpoint term falls and $G$ grows with $T$. (3) At a fixed step size the number of score
# evaluations is proportional to $T$ (*exact* count). (4) The paper's remedy: at a small $T$, start the reverse
# process from an auxiliary model $\nu_\phi$ fitted to free samples of $p_T$; a Gaussian mixture or a small flow
# brings $\mathrm{KL}(p_T\|\nu)$ and the model's KL to the data (*estimated*, exact-likelihood based) down to the
# level of a long horizon, at a fraction of the cost.

# %% tags=["colab-install"]
# On Google Colab (or any Jupyter without diffviz): install diffviz. Does nothing where diffviz is installed.
try:
    import diffviz  # noqa: F401
except ImportError:
    get_ipython().run_line_magic("pip", 'install -q "diffviz @ git+https://github.com/OWNER/diffviz"')  # noqa: F821
try:  # Colab only: let the dashboards' custom widgets (plotly FigureWidget via anywidget) display
    from google.colab import output

    output.enable_custom_widget_manager()
except ImportError:
    pass

# %% tags=["parameters"]
FAST = True  # quick run (CI, Binder); False for lecture quality
SEED = 0
DEVICE = "auto"  # auto: CUDA when present, else CPU
LAM = 4.0  # Gaussian toy: data N(0, LAM)
EPS2 = 0.01  # Gaussian toy: constant squared score error
TARGET = "moons"  # 2-D bead-mixture toy with exact p_t ("moons", "8gaussians", "rings", ...)
SCALE = 2.0  # the toy scaled to per-coordinate variance SCALE^2
T_TRAIN = [0.2, 0.3, 0.4, 0.6, 0.8, 1.0]  # horizons with a trained score network
T_SMALL = 0.3  # the small horizon of section 4 (trained with the others)
TRAIN_STEPS = 3000  # optimiser steps per network
HIDDEN = 128  # width of the score MLP
N_ELBO = 16384  # Monte Carlo samples for the two terms of the bound
N_SAMPLES = 4000  # samples per start in section 4
STEP_SIZE = 0.01  # fixed sampler step size (T / STEP_SIZE steps)
N_EVAL = 2000  # data points for the exact-likelihood KL
NLL_STEPS = 100  # Heun steps of the probability-flow ODE likelihood
DASH_T_GRID = [0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0]  # horizons the dashboard's starts are fitted for
DASH_FLOW_STEPS = 300  # training steps of each dashboard flow
FIGURES_PATH = None  # where record() writes the key figures (set by the notebook runner)

# %%
import numpy as np

import diffviz
from diffviz.dashboards import diffusion_time as D
from diffviz.experiments import diffusion_time as E
from diffviz.record import record, set_path

diffviz.interactive_threads(1)
device = diffviz.resolve_device(DEVICE)
set_path(FIGURES_PATH)
if FAST:
    T_TRAIN = [0.3, 0.6, 1.0]
    TRAIN_STEPS, HIDDEN, N_ELBO = min(TRAIN_STEPS, 300), min(HIDDEN, 64), min(N_ELBO, 4096)
    N_SAMPLES, N_EVAL, NLL_STEPS = min(N_SAMPLES, 2000), min(N_EVAL, 500), min(NLL_STEPS, 40)
    DASH_T_GRID, DASH_FLOW_STEPS = [0.1, 0.2, 0.3, 0.5, 1.0], min(DASH_FLOW_STEPS, 150)
T_TRAIN = sorted(set(T_TRAIN) | {T_SMALL})
target = E.make_target(TARGET, SCALE)
print(f"device {device}; target {TARGET} x{SCALE:g}; horizons {T_TRAIN}; {TRAIN_STEPS} training steps")

# %% [markdown]
# ## 1. The Gaussian toy: an exact bound with an interior optimum
# VP process ($\beta$ from 0.1 to 20, $m = e^{-B/2}$, $s^2 = 1 - m^2$). For data $N(0, \lambda)$,
# $p_T = N(0, u\lambda + 1 - u)$ with $u = m(T)^2 = e^{-B(T)}$, so with $a = \lambda - 1$
#
# $$\mathrm{KL}(p_T\|N(0,1)) = \tfrac12\big[ua - \ln(1 + ua)\big],\qquad G = \tfrac12\varepsilon^2 B(T)$$
#
# for a score whose squared error is $\varepsilon^2$ at every $(x,t)$. Setting the derivative to zero gives
# $a^2u^2 = \varepsilon^2(1 + ua)$: an interior optimum $T^*$ exists whenever $a^2 > \varepsilon^2(1+a)$
# (*derived*). The dashed curve is the bound with the **exact score** ($\varepsilon = 0$): it only falls, so without
# a score error a longer horizon is always better.

# %%
gb = E.gaussian_bound(LAM, EPS2, T_max=1.5)
record("gauss_T_star", gb["T_star"])
record("gauss_T_star_closed", gb["T_star_closed"])
record("gauss_bound_star", gb["bound_star"])
record("gauss_kl_star", gb["kl_star"])
record("gauss_gap_star", gb["gap_star"])
record("gauss_bound_T0", float(gb["bound"][0]))
record("gauss_bound_Tmax", gb["bound_T_max"])
record("gauss_exact_score_monotone", bool(np.all(np.diff(gb["kl"]) <= 0)))
print(f"T* = {gb['T_star']:.4f} (closed form {gb['T_star_closed']:.4f}); at T*: KL = {gb['kl_star']:.4f}, "
      f"G = {gb['gap_star']:.4f}, bound = {gb['bound_star']:.4f}; bound at T = 1.5: {gb['bound_T_max']:.4f}")
D.gaussian_bound_figure(gb)

# %% [markdown]
# The optimum moves out as the score improves: $T^* \to \infty$ as $\varepsilon \to 0$ (*derived*, closed form).

# %%
D.optimal_T_figure(E.optimal_T_vs_eps(LAM), LAM)

# %% [markdown]
# ## 2. Trained scores on a non-Gaussian target: both terms estimated
# The target is a bead mixture (by default two moons covered by 50 small Gaussians, scaled to per-coordinate
# variance $4$ like the Gaussian toy), so $p_t$ is again a mixture and $\nabla\log p_t$ is exact. One small score network is trained per horizon
# $T$ (denoising score matching on $t \sim U[10^{-3}, T]$, same steps and seed; cached, so a rerun loads the
# weights). `metrics.elbo_terms` estimates $\mathrm{KL}(p_T\|\nu)$ by Monte Carlo with the exact $\log p_T$, and
# $G$ by stratified Monte Carlo over $t$ against the exact score; error bars are $\pm 2$ standard errors.
# Besides the prior we fit a Gaussian mixture $\nu_\phi$ (8 components, EM) to free samples of $p_T$.

# %%
models = E.train_models(target, T_TRAIN, steps=TRAIN_STEPS, hidden=HIDDEN, seed=SEED, device=device)
bt = E.bound_vs_T(target, models, inits=("prior", "gmm"), n=N_ELBO, seed=SEED)
for i, T in enumerate(bt["T"]):
    record(f"trained_G_T{T:g}", bt["score_gap"][i])
    record(f"trained_G_se_T{T:g}", bt["score_gap_se"][i])
    for name in ("prior", "gmm"):
        record(f"trained_kl_{name}_T{T:g}", bt["kl"][name][i])
        record(f"trained_kl_{name}_se_T{T:g}", bt["kl_se"][name][i])
record("trained_T", bt["T"])
print(f"{'T':>5} {'KL(p_T‖prior)':>15} {'KL(p_T‖GMM)':>13} {'G':>13} {'bound, prior':>13} {'bound, GMM':>11}")
for i, T in enumerate(bt["T"]):
    print(f"{T:5.2f} {bt['kl']['prior'][i]:9.4f}±{bt['kl_se']['prior'][i]:.4f} {bt['kl']['gmm'][i]:7.4f}±"
          f"{bt['kl_se']['gmm'][i]:.4f} {bt['score_gap'][i]:7.4f}±{bt['score_gap_se'][i]:.4f} "
          f"{bt['bound']['prior'][i]:13.4f} {bt['bound']['gmm'][i]:11.4f}")
D.trained_bound_figure(bt)

# %% [markdown]
# $G$ grows with $T$: the same network and training budget spread over a longer interval, weighted by
# $g^2 = \beta(t)$, which is largest at late times. With the prior start the bound is smallest at a long horizon,
# where $\mathrm{KL}(p_T\|N(0,I))$ has become negligible, but not necessarily at the longest one: past that
# point only $G$ changes. With the fitted start the endpoint term is small at every $T$, and the bound is smallest
# at the *shortest* horizon, where the network has the least to learn.

# %% [markdown]
# ## 3. Cost against T
# At a fixed step size $h$ a sampler needs $T/h$ steps: the count of score evaluations (measured by wrapping
# the score) grows linearly with $T$; Heun pays two evaluations per step.

# %%
cost = E.sampling_cost([0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0], STEP_SIZE)
record("cost_T", cost["T"])
record("cost_nfe_em", cost["nfe"]["em"])
record("cost_nfe_heun", cost["nfe"]["heun"])
D.cost_figure(cost)

# %% [markdown]
# ## 4. An auxiliary start recovers quality at a small horizon
# At $T = 0.3$ the forward process has not reached $N(0, I)$: samples started from the prior inherit the
# mismatch. We fit four starts to free samples $x_T = m(T)x_0 + s(T)z$: the prior (nothing fitted), a
# moment-matched Gaussian, a Gaussian mixture (EM) and a small RealNVP flow, then run the same sampler
# (Euler–Maruyama, step $h$) with the network trained for $T = 0.3$. Per start: $\mathrm{KL}(p_T\|\nu)$ (Monte Carlo
# with the exact $\log p_T$, $\pm$ SE), the KL of the samples to the data by nearest neighbours (*estimated*, no
# error bar), and the KL of the probability-flow model to the data from its exact likelihood,
# $\mathrm{KL}(p_{\rm data}\|p_{\rm model}) = \mathbb{E}[\log p_{\rm data}(x_0) - \log\nu(x_T) - \int \nabla\cdot v\,dt]$
# ($\pm$ SE). The reference row is the long horizon $T = 1$ from the prior.
#
# Two remarks for reading the table. The bound covers the stochastic sampler; the probability-flow model has
# no such guarantee and can suffer much more from score errors (with a small network, its KL at $T = 1$ can exceed
# the bound's $G$). The SDE sampler partly forgets its start, so its samples are better than the endpoint term
# suggests, yet the ordering of the starts stays.

# %%
T_LONG = max(T_TRAIN)
cmp = E.compare_inits(target, T_SMALL, models[T_SMALL], n_samples=N_SAMPLES, step_size=STEP_SIZE, n_eval=N_EVAL,
                      nll_steps=NLL_STEPS, seed=SEED)
ref = E.compare_inits(target, T_LONG, models[T_LONG], inits=("prior",), n_samples=N_SAMPLES, step_size=STEP_SIZE,
                      n_eval=N_EVAL, nll_steps=NLL_STEPS, seed=SEED)
rows = [(f"T = {T_SMALL:g}, {name}", cmp, name) for name in cmp["inits"]] + [(f"T = {T_LONG:g}, prior", ref, "prior")]
print(f"{'run':>22} {'steps':>5} {'KL(p_T‖ν)':>16} {'sample KL (kNN)':>16} {'model KL (PF-ODE)':>19}")
for label, r, name in rows:
    print(f"{label:>22} {r['n_steps']:5d} {r['kl_pT'][name]:9.4f}±{r['kl_pT_se'][name]:.4f} "
          f"{r['sample_kl'][name]:16.4f} {r['model_kl'][name]:11.4f}±{r['model_kl_se'][name]:.4f}")
for name in cmp["inits"]:
    for k in ("kl_pT", "kl_pT_se", "sample_kl", "model_kl", "model_kl_se"):
        record(f"small_T_{k}_{name}", cmp[k][name])
for k in ("kl_pT", "kl_pT_se", "sample_kl", "model_kl", "model_kl_se"):
    record(f"long_T_{k}_prior", ref[k]["prior"])
record("small_T", T_SMALL)
record("small_T_n_steps", cmp["n_steps"])
record("long_T_n_steps", ref["n_steps"])
D.samples_figure(cmp, extra={f"T = {T_LONG:g} from the prior ({ref['n_steps']} steps)": ref["samples"]["prior"]})

# %% [markdown]
# With the **exact** score, the ODE carries the start's error to the data unchanged: KL is invariant under the
# ODE's bijection, so the model's KL equals $\mathrm{KL}(p_T\|\nu)$ up to discretization. A check, same starts:

# %%
inits_small = {name: E.fit_init(name, target, T_SMALL, seed=SEED) for name in cmp["inits"]}
exact = E.model_kl(target, T_SMALL, E.score_of(target, E.make_process(T_SMALL)), inits_small, n_eval=N_EVAL,
                   n_steps=NLL_STEPS, seed=SEED + 2)
for name, (kl, se) in exact.items():
    record(f"exact_score_model_kl_{name}", kl)
    record(f"exact_score_model_kl_se_{name}", se)
    print(f"{name:>9}: model KL with the exact score {kl:.4f} ± {se:.4f}   KL(p_T‖ν) {cmp['kl_pT'][name]:.4f} "
          f"± {cmp['kl_pT_se'][name]:.4f}")

# %% [markdown]
# ## 5. Dashboard
# Exact and instant: the dashboard uses the target's **exact score plus a constant error** of norm $\varepsilon$,
# so $G = \frac12\varepsilon^2 B(T)$ is exact and nothing is retrained when a control moves; the starts were fitted
# once per $T$ of the slider's grid (the slider snaps to it), and $\mathrm{KL}(p_T\|\nu)$ was computed then (exact
# for the Gaussian target with a Gaussian start, Monte Carlo otherwise). Each move samples 500 points and
# estimates their KL to the data by nearest neighbours. Try: prior start, $\varepsilon = 0.3$, move $T$ — the bound
# has an interior minimum; switch to the GMM start — it moves to the smallest $T$; set $\varepsilon = 0$ — longer is
# better again, though the GMM start is already as good at a third of the steps.

# %%
dashboard = D.DiffusionTimeDashboard(targets=(TARGET, "gaussian"), scale=SCALE, lam=LAM, T_grid=DASH_T_GRID,
                                     n_fit=2000 if FAST else 4000, flow_steps=DASH_FLOW_STEPS, fit_seed=SEED)
latency = []
for change in ({"T": 0.2}, {"init": "gmm"}, {"seed": 1}, {"T": 0.3}):  # moves as a user would make them (grid values)
    dashboard.set(**change)
    latency.append(1000 * dashboard.last_update_s)
record("dashboard_update_ms", float(np.median(latency)))
record("dashboard_update_ms_max", max(latency))
record("dashboard_kl_gmm_T0.3", dashboard.numbers["kl_pT_nu"])
print(f"dashboard updates: median {np.median(latency):.0f} ms, max {max(latency):.0f} ms")
dashboard

# %% [markdown]
# A rounded check, independent of sampling noise: the exact optimum of the Gaussian toy and the ordering of
# the starts at the small horizon.

# %%
# NBVAL_CHECK_OUTPUT
print(f"T* = {gb['T_star']:.3f}, bound(T*) = {gb['bound_star']:.4f}; at T = {T_SMALL:g} the GMM start beats the "
      f"prior: {cmp['kl_pT']['gmm'] + 5 * cmp['kl_pT_se']['gmm'] < cmp['kl_pT']['prior']}")
