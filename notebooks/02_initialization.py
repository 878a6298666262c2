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
# # 2 · Initialization mismatch in Variance-Exploding samplers (Fassina et al.)
#
# A VE sampler starts the reverse process at noise level $\sigma_T$ from the prior $p_\infty = N(0, \sigma_T^2 I)$,
# while the law it should start from is $p_T$, the data noised by $x_T = x_0 + \sigma_T z$. Fassina et al.
# (arXiv 2603.00772) bound the error of the generated law $\hat p$ by three terms (the structure of their
# Theorem 3.1; the constants are not confirmed here, theory.md §5):
#
# $$\mathrm{KL}(p_{\rm data}\,\|\,\hat p) \;\le\; \underbrace{\mathrm{KL}(p_T\,\|\,q)}_{\text{initialization}}
# + (1+\delta)\,\underbrace{E_{\rm score}}_{\text{score error}}
# + (1 + 1/\delta)\,\underbrace{E_{\rm disc}}_{\text{discretization}} \qquad (\delta > 0).$$
#
# A large $\sigma_T$ makes the first term small for $q = p_\infty$ but costs steps; a small $\sigma_T$ is cheap to
# integrate but needs a start $q$ close to $p_T$, which can be *learned* from free samples $x_0 + \sigma_T z$.
# We rebuild the paper's Figure 2 setting: $d = 100$ i.i.d. Student-t coordinates ($\nu = 3$, and $\nu = 1.5$
# with infinite variance), $\sigma_T \in \{2, 7, 80\}$, three starts (prior $p_\infty$, oracle $p_T$, learned
# $q_\phi$ = a per-coordinate Student-t fitted on $x_T$), one sampler (Heun on the probability-flow ODE) with the
# **exact score** (quadrature), so $E_{\rm score} = 0$ and only initialization and discretization remain.
#
# **What comes out.** At $\sigma_T = 2$ the prior start gives outputs whose tails are far too light; the oracle
# start is exact up to discretization; the learned start repairs the bulk and the moderate tail (binned KL about
# 20 times smaller than the prior's) but not the extreme tail, because the Student-t fit to $x_T$ settles on a
# larger $\nu$ than the data's (the Gaussian bulk of $x_T$ dominates the likelihood). With a learned start at
# $\sigma_T = 2$ a handful of Heun steps reach a KL level for which the prior needs $\sigma_T = 80$ and several
# times as many steps (4 against 32 in the table of §4); on Gaussian data the exact closed forms show the same
# trade-off. For $\nu = 1.5$ the Gaussian start has **infinite** KL at every $\sigma_T$ (*derived*), visible in the
# extreme-tail quantiles even at $\sigma_T = 80$.
#
# Labels (theory.md): *exact* = closed forms and quadrature in float64 (Gaussian KLs, the noised Student-t law,
# the output quantiles of the Heun map below); *estimated* = from samples; *derived* = worked out for diffviz, not
# confirmed against the paper body; *paper* = from the paper.

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
DEVICE = "auto"  # everything here is small 1-D work: CPU is used whatever the choice
N_SAMPLES = 2000  # samples per coordinate of each start (the simulation)
D = 100  # coordinates
N_FIT = 1000  # samples of x_T per coordinate for the learned start
N_REF = 32  # the common step budget of the quantile plots
FIT_ITERS = 200  # ECM iterations of the Student-t fit
KL_TOL = 0.02  # tolerance on the binned KL per coordinate: 2 nats in all over 100 coordinates
FIGURES_PATH = None  # where record() writes the key figures (set by `diffviz run` / run_notebook)

# %%
import time

import numpy as np
import pandas as pd

import diffviz
from diffviz.dashboards import initialization as V
from diffviz.experiments import initialization as E
from diffviz.record import record, set_path

diffviz.interactive_threads(1)
device = diffviz.resolve_device(DEVICE)  # reported only: the 1-D quadratures below run on the CPU
set_path(FIGURES_PATH)
if not FAST:
    N_SAMPLES, N_FIT, FIT_ITERS = max(N_SAMPLES, 20_000), max(N_FIT, 2000), max(FIT_ITERS, 500)
STEPS = [4, 8, 16, 32, 64, 128] if FAST else [2, 4, 8, 16, 32, 64, 128, 256, 512]
SIGMA_TS, DFS = list(E.SIGMA_TS), list(E.DFS)
record("n_ref", N_REF)
record("kl_tol", KL_TOL)
print(f"d = {D}, n = {N_SAMPLES} samples per start, learned fits on {N_FIT} samples, steps {STEPS}; device {device}")

# %% [markdown]
# ## 1. The sampler is a map of the real line
# The data have independent coordinates, so the exact score acts coordinate by coordinate, and Heun is
# deterministic: $N$ Heun steps from $\sigma_T$ down to $t = 0$ apply **one map** $\Phi_N:\mathbb R \to \mathbb R$
# to every coordinate of the start, increasing unless the steps are far too coarse (each run checks it). Two
# consequences (*derived*, checked below):
#
# * the output's quantile at level $u$ is $\Phi_N(Q_{\rm start}(u))$ — population quantiles down to $1 - 10^{-6}$
#   with no Monte Carlo error, for any start whose quantiles we know (prior: Gaussian; oracle: $p_T = t_\nu *
#   N(0, \sigma_T^2)$ by quadrature in the mixing variable; learned: fitted Student-t per coordinate);
# * for samples, the empirical quantile of $\Phi_N(x)$ is $\Phi_N$ of the empirical quantile of $x$: the
#   simulation only needs the $d \times L$ order statistics pushed through the sampler.
#
# As $N\to\infty$, $\Phi_N \to \Psi = Q_0 \circ F_T$, the monotone transport of $p_T$ onto the data: the ODE
# carries the start's error through unchanged, $\mathrm{KL}(p_0\,\|\,\Psi_\# q) = \mathrm{KL}(p_T\,\|\,q)$
# (a bijection leaves KL unchanged). The reverse *SDE* would forget part of it; here we keep the deterministic sampler
# so that the initialization term shows in full. The grid is uniform in $t$, i.e. in $\log\sigma$, from $\sigma_T$ to
# $\sigma_{\min} = 0.01$ (diffviz's VE convention $x_t = x_0 + \sigma(t) z$).
#
# Check: run `diffviz.sample` (Heun, exact score) on 50 samples × 20 coordinates of the oracle start and compare
# its per-coordinate order statistics with the map applied to the start's order statistics.

# %%
gen = diffviz.make_generator(SEED, "cpu")
x_small = E.draw_starts(3.0, 7.0, 50, 20, inits=("oracle",), generator=gen)["oracle"]
out_direct = E.run_sampler(x_small, 3.0, 7.0, N_REF)
levels_small = np.array([0.1, 0.5, 0.9])
q_direct = E.order_statistic_quantiles(out_direct, levels_small)
q_mapped = E.SamplerMap(3.0, 7.0, N_REF).push(E.order_statistic_quantiles(x_small, levels_small))
gap = float(np.abs(q_direct - q_mapped).max())
record("check_direct_vs_map_max_abs", gap)
print(f"max |direct simulation - map of order statistics| = {gap:.2e} (float64 round-off)")

# %% [markdown]
# ## 2. Learned starts
# $q_\phi$: independent Student-t coordinates (location, scale, $\nu$) fitted by ECM on $N_{\rm fit}$ free samples of
# $x_T$ per coordinate (`diffviz.inits.StudentTInit`). $p_T = t_\nu * N(0, \sigma_T^2)$ is not a Student-t: its tail
# index is still $\nu$ but its bulk is Gaussian, and maximum likelihood follows the bulk, so the fitted $\nu$ lands
# well above the data's (and the ECM update of $\nu$ crawls where the likelihood is flat in $\nu$, at large $\sigma_T$).

# %%
learned = {}
for df in DFS:
    for s in SIGMA_TS:
        learned[(df, s)] = E.fit_learned(df, s, n_fit=N_FIT, d=D, n_iter=FIT_ITERS,
                                         generator=diffviz.make_generator(SEED + 1, "cpu"))
fits = pd.DataFrame([{"ν": df, "σ_T": s, "fitted ν (mean)": float(q.df.mean()), "fitted ν (std over coords)":
                      float(q.df.std()), "fitted scale (mean)": float(q.scale.mean()), "ECM iterations": q.n_iter_}
                     for (df, s), q in learned.items()])
for (df, s), q in learned.items():
    record(f"learned_df_mean_nu{df:g}_s{s:g}", float(q.df.mean()))
fits.round(3)

# %% [markdown]
# ## 3. The quantile plot (the paper's Figure 2)
# Per panel: the true Student-t quantiles (black), the **exact** output quantiles of each start after
# $N_{\rm ref}$ Heun steps (lines; the learned start's bars are ± one std over the 100 per-coordinate fits) and the
# **simulation** (circles: per-coordinate empirical quantiles of $n$ samples, mean ± std over the coordinates, only
# at levels with at least 10 samples beyond them). The x-axis is $\log_{10}(u/(1-u))$, the y-axis asinh-scaled.

# %%
figs = {}
for df in DFS:
    for s in SIGMA_TS:
        figs[(df, s)] = E.figure2(df, s, N_REF, n=N_SAMPLES, d=D, learned=learned[(df, s)], generator=gen)
        for kind in E.INITS:
            ex = figs[(df, s)]["exact"][kind]
            record(f"tail_error_nu{df:g}_s{s:g}_{kind}", ex["tail_error"])
            record(f"binned_kl_nu{df:g}_s{s:g}_{kind}", ex["binned_kl"])
            record(f"q999_nu{df:g}_s{s:g}_{kind}", float(ex["mean"][list(E.LEVELS).index(0.999)]))
            record(f"sim_tail_error_nu{df:g}_s{s:g}_{kind}", figs[(df, s)]["sim"][kind]["tail_error"])
record("q999_true_nu3", float(E.data_quantiles(3.0, [0.999])[0]))
V.figure2_panels([figs[(3.0, s)] for s in SIGMA_TS], title=f"Student-t ν = 3, d = {D}, N = {N_REF} Heun steps")

# %% [markdown]
# At $\sigma_T = 2$ the prior start is visibly wrong from the 0.9 level on (tails too light: its $p_T$ has variance
# $3 + 4$, the prior $4$); the learned start follows the data to about 0.999 and then falls short; the oracle is on the
# data up to discretization. At $\sigma_T = 80$ the prior and the oracle agree (the learned fit is the worst of the
# three there, see §4), but 32 steps over the longer range of $\log\sigma$ leave a discretization error. The same
# with infinite variance, $\nu = 1.5$:

# %%
V.figure2_panels([figs[(1.5, s)] for s in SIGMA_TS], title=f"Student-t ν = 1.5, d = {D}, N = {N_REF} Heun steps")

# %% [markdown]
# ## 4. Quality against the number of steps
# Two numbers that work with heavy tails, both **exact** for the Heun map (no sampling):
# * **binned KL** $\mathrm{KL}(p_{\rm data}\,\|\,p_{\rm out})$ of the binned variable, bins between the output quantiles
#   at levels $10^{-6}, \dots, 0.5, \dots, 1 - 10^{-6}$: the output puts the known mass $\Delta u$ in each bin, the data
#   $F_0(y_{k+1}) - F_0(y_k)$. Exact for that partition and a lower bound on the full KL (data processing);
# * **tail error**: mean over $u \in \{0.9, 0.99, \dots, 1 - 10^{-6}\}$ of $|\ln(Q_{\rm out}(u)/Q_{\rm data}(u))|$.
#
# Lines: $\sigma_T = 2$ solid, 7 dashed, 80 dotted; colours: prior, oracle, learned. Missing points: the
# $N$-step map is not monotone there (too few steps for the range), so the quantile identities do not apply.

# %%
sweeps = {}
for df in DFS:
    for s in SIGMA_TS:
        sweeps[(df, s)] = E.steps_sweep(df, s, STEPS, learned=learned[(df, s)])
V.steps_figure({s: sweeps[(3.0, s)] for s in SIGMA_TS}, "binned_kl", title="ν = 3: binned KL vs Heun steps (exact)")

# %%
V.steps_figure({s: sweeps[(3.0, s)] for s in SIGMA_TS}, "tail_error", title="ν = 3: tail error vs Heun steps (exact)")

# %% [markdown]
# The key table: at the common budget $N_{\rm ref}$, the exact binned KL (per coordinate) and tail error, their
# $N \to \infty$ limits (the initialization error alone: for the binned KL that is the binned
# $\mathrm{KL}(p_T\,\|\,q)$), the simulated tail error (estimated; its floor, seen on the oracle, is the sampling noise
# of $n$ samples) and the steps needed to bring the binned KL below `KL_TOL` (None: never, the start's own error is
# larger).

# %%
table = pd.DataFrame(E.summary_rows(figs, sweeps, kl_tol=KL_TOL))
for (df, s), sw in sweeps.items():
    for kind in E.INITS:
        need = E.steps_needed(sw["steps"], sw[kind]["binned_kl"], KL_TOL)
        record(f"steps_needed_nu{df:g}_s{s:g}_{kind}", need)
        record(f"limit_binned_kl_nu{df:g}_s{s:g}_{kind}", sw[kind]["limit_binned_kl"])
        record(f"limit_tail_error_nu{df:g}_s{s:g}_{kind}", sw[kind]["limit_tail_error"])
table.round(4)

# %% [markdown]
# Reading the table: with $\sigma_T = 2$ the **learned** start reaches the KL level in a handful of steps, while the
# prior needs $\sigma_T = 80$ and several times more steps to get there; the prior at $\sigma_T = 2$ never does, nor
# at $\sigma_T = 7$ when $\nu = 1.5$ (its $N\to\infty$ limit is the initialization error; for $\nu = 3$ at
# $\sigma_T = 7$ that error is already below the tolerance in KL, though not in the tail). The learned start is not
# free: its fit has a statistical error of order (parameters)/(2 $N_{\rm fit}$) per coordinate, which at
# $\sigma_T = 80$ is larger than the prior's own tiny mismatch — learning the start pays only when
# $\mathrm{KL}(p_T\,\|\,p_\infty)$ is bigger than that. In the tail error, the learned Student-t start stays poor
# at every $\sigma_T$: the extreme tail is where the fitted $\nu$ is wrong, and a KL-type criterion hardly sees it.
#
# ## 5. The exact reference: Gaussian data
# For data $N(0, \lambda I_d)$ ($\lambda = 3$, the variance of $t_3$) every sampler step is linear, and the output law
# after $N$ Heun steps is Gaussian with an exact recursion (`theory.sampler_kl`, theory.md §3): **exact** KL for the
# prior start and for the exact start $p_T$. The prior's curves flatten at the endpoint KL $\frac d2[r - \ln(1 + r)]$,
# $r = \lambda/\sigma_T^2$ (dotted); the exact start at $\sigma_T = 2$ reaches a given KL with far fewer steps than
# any start at $\sigma_T = 80$. (The reverse SDE, Euler–Maruyama, would shrink the prior's error instead of carrying
# it: printed below from the same exact recursion.)

# %%
gauss = E.gaussian_kl_curves(SIGMA_TS, STEPS, lam=E.GAUSS_LAM, d=D)
for s in SIGMA_TS:
    for init in ("prior", "exact"):
        record(f"gauss_kl_s{s:g}_{init}_N{N_REF}", float(gauss[init][s][STEPS.index(N_REF)]))
        record(f"gauss_steps_needed_s{s:g}_{init}", E.steps_needed(gauss["steps"], gauss[init][s], KL_TOL * D))
    record(f"gauss_endpoint_kl_s{s:g}", gauss["endpoint"][s])
kl_em = E.gaussian_kl(2.0, 256, "prior", lam=E.GAUSS_LAM, d=D, method="em")
kl_heun = E.gaussian_kl(2.0, 256, "prior", lam=E.GAUSS_LAM, d=D)
record("gauss_kl_s2_prior_N256_em", kl_em)
record("gauss_kl_s2_prior_N256_heun", kl_heun)
print(f"σ_T = 2, prior start, 256 steps: KL after Heun (ODE) {kl_heun:.3f}, after Euler–Maruyama (SDE) {kl_em:.3f}")
V.gaussian_kl_figure(gauss, title=f"Gaussian N(0, {E.GAUSS_LAM:g} I_{D}): exact KL after N Heun steps")

# %% [markdown]
# ## 6. Infinite variance: a Gaussian start is infinitely wrong
# For $\nu \le 2$ the data have no second moment, and for any Gaussian $q = N(0, \sigma_T^2)$
# $$\mathrm{KL}(p_T\,\|\,q) = -H(p_T) + \tfrac12\ln(2\pi\sigma_T^2) + \frac{\mathbb E_{p_T}[x^2]}{2\sigma_T^2} = \infty
# \quad\text{at every } \sigma_T$$
# (*derived*; $H(p_T)$ is finite). Restricting the integral to $|x| \le X$ shows how: it grows like $X^{2-\nu}$ for
# $\nu = 1.5$ (dotted reference) at every $\sigma_T$ — at $\sigma_T = 80$ it only starts later, since the integrand's
# tail is about $x^{-1/2}/\sigma_T^2$ — and converges for $\nu = 3$. The learned Student-t start (finite $\nu$) has a
# finite KL. (Restricted integrals can be negative for small $X$; those points are left out of the log plot.)
# In the quantile plots this is the extreme tail: at $\sigma_T = 80$ the prior start still gives an output
# 0.999999-quantile of a few hundred (at most $80 \times 4.75 = 380$, the prior's own) where the data have 5219.

# %%
cutoffs = np.logspace(1, 9, 9)
rows = {
    "ν = 1.5, prior (Gaussian), σ_T = 2": E.truncated_endpoint_kl(1.5, 2.0, cutoffs),
    "ν = 1.5, prior (Gaussian), σ_T = 80": E.truncated_endpoint_kl(1.5, 80.0, cutoffs),
    "ν = 3, prior (Gaussian), σ_T = 2": E.truncated_endpoint_kl(3.0, 2.0, cutoffs),
    "ν = 1.5, learned Student-t, σ_T = 2": E.truncated_endpoint_kl(1.5, 2.0, cutoffs, init="learned",
                                                                  learned=learned[(1.5, 2.0)]),
}
record("trunc_kl_cutoffs", cutoffs)
record("trunc_kl_prior_nu1.5_s80", rows["ν = 1.5, prior (Gaussian), σ_T = 80"])
record("trunc_kl_prior_nu1.5_s2", rows["ν = 1.5, prior (Gaussian), σ_T = 2"])
record("trunc_kl_prior_nu3_s2", rows["ν = 3, prior (Gaussian), σ_T = 2"])
record("trunc_kl_learned_nu1.5_s2", rows["ν = 1.5, learned Student-t, σ_T = 2"])
record("q999999_nu1.5_s80_prior", float(figs[(1.5, 80.0)]["exact"]["prior"]["mean"][-1]))
record("q999999_true_nu1.5", float(E.data_quantiles(1.5, [0.999999])[0]))
V.truncated_kl_figure(cutoffs, rows, slope=2 - 1.5, title="KL(p_T ‖ q) restricted to |x| ≤ X (quadrature)")

# %% [markdown]
# ## 7. Explore
# Choose $\sigma_T$, the number of Heun steps, the start, $\nu$ and the seed. Left: the quantile plot (exact output
# quantiles as a line, the simulation of $n \times d$ samples as circles with ± std over coordinates). Right: the
# exact Gaussian KL-vs-steps curves with the current $(\sigma_T, N)$ marked (prior → prior curve; oracle and learned
# → exact-start curve). The learned starts are the fits above, handed over, never refitted; the start samples are
# drawn once per (start, $\nu$, $\sigma_T$, seed). Each update runs the sampler (one batch of a few hundred points).

# %%
# at most 2000 samples per coordinate in the dashboard, so that an update stays within ~150 ms on one thread
dash = V.InitializationDashboard(n=min(N_SAMPLES, 2000), d=D, learned=learned, sigma_T=2.0, n_steps=N_REF)
cpu_ms = []
for change in [dict(n_steps=8), dict(init="prior"), dict(sigma_T=80.0), dict(n_steps=100), dict(init="oracle"),
               dict(df=1.5), dict(seed=1), dict(init="learned"), dict(sigma_T=7.0), dict(n_steps=N_REF)]:
    start = time.process_time()
    dash.set(**change)
    cpu_ms.append(1e3 * (time.process_time() - start))
record("dashboard_update_cpu_ms_median", float(np.median(cpu_ms)))
record("dashboard_update_cpu_ms_max", float(np.max(cpu_ms)))
dash.set(sigma_T=2.0, df=3.0, init="learned", n_steps=N_REF, seed=0)
record("dashboard_binned_kl", dash.numbers["binned_kl"])
record("dashboard_gauss_kl", dash.numbers["gauss_kl"])
print(f"dashboard update (compute + redraw, CPU time on 1 thread): median {np.median(cpu_ms):.0f} ms, "
      f"max {np.max(cpu_ms):.0f} ms over {len(cpu_ms)} changes")
dash

# %%
# NBVAL_CHECK_OUTPUT
q = figs[(3.0, 2.0)]["exact"]
print(f"σ_T = 2, N = {N_REF}: output 0.999-quantile prior {q['prior']['mean'][4]:.2f}, oracle "
      f"{q['oracle']['mean'][4]:.2f}, data {E.data_quantiles(3.0, [0.999])[0]:.2f}")
