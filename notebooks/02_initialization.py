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

# %% [markdown] slideshow={"slide_type": "slide"}
# # 2 · Where should a variance-exploding sampler start?
#
# A variance-exploding (VE) sampler usually starts from pure noise at a very large noise level, which costs many
# steps. Can it start at a *small* noise level instead, from a start that is learned? We answer on heavy-tailed
# data, where the usual Gaussian start fails in a way the step count cannot repair.
#
# **You will learn**
# - to name the three terms of the error of a VE sampler (initialization, score, discretization) and trade them;
# - to compute a sampler's exact output quantiles by treating it as a map of the real line;
# - to explain why a learned start at σ_T = 2 needs far fewer steps than the Gaussian prior at σ_T = 80;
# - to show that a Gaussian start is infinitely wrong (in KL) for data with infinite variance.
#
# **Prerequisites** DDPM once; notebook 00 (forward processes, samplers) and notebook 01 (the start of the
# reverse process and the endpoint KL).
#
# **Time** reading ≈ 25 min; run on 2 CPU cores (`diffviz run`): FAST ≈ 40 s, full ≈ 1.7 min.
#
# **Paper** T. Fassina, G. Cardoso, S. Le Corff, T. Romary, *Initialization-Aware Score-Based Diffusion Sampling*,
# arXiv:2603.00772, 2026. Background: Y. Song, J. Sohl-Dickstein, D. P. Kingma, A. Kumar, S. Ermon, B. Poole,
# *Score-Based Generative Modeling through Stochastic Differential Equations*, ICLR 2021, arXiv:2011.13456;
# σ_T = 80 is the largest noise level of T. Karras, M. Aittala, T. Aila, S. Laine, *Elucidating the Design Space
# of Diffusion-Based Generative Models*, NeurIPS 2022, arXiv:2206.00364.

# %% tags=["colab-install"] slideshow={"slide_type": "skip"}
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

# %% tags=["parameters"] slideshow={"slide_type": "skip"}
FAST = True  # quick run (CI, Binder); False for lecture quality
SEED = 0
DEVICE = "auto"  # everything here is small 1-D work: CPU is used whatever the choice
DIM = 100  # d, the number of i.i.d. coordinates of the data
N_SAMPLES = None  # samples per coordinate of each start, for the simulation (None: 2000 FAST, 20000 full)
N_FIT = None  # samples of x_T per coordinate for the learned start (None: 1000 FAST, 2000 full)
FIT_ITERS = None  # ECM iterations of the Student-t fit (None: 200 FAST, 500 full)
STEPS = None  # Heun step counts of the sweeps (None: 4 to 128 FAST, 2 to 512 full)
N_REF = 32  # the common step budget of the quantile plots and the table
KL_TOL = 0.02  # tolerance on the binned KL per coordinate: 2 nats in all over 100 coordinates
DASH_SAMPLES = 2000  # samples per coordinate in the dashboard (an update stays near 150 ms on one thread)
FIGURES_PATH = None  # where the key figures are written (set by `diffviz run` / run_notebook)

# %% slideshow={"slide_type": "skip"}
import math
import time

import numpy as np
import pandas as pd
import torch

import diffviz
from diffviz import theory
from diffviz.dashboards import initialization as V
from diffviz.experiments import initialization as E
from diffviz.record import record, set_path
from diffviz.workshop import exercises

default = diffviz.run_defaults(FAST)
N_SAMPLES = default(N_SAMPLES, fast=2000, full=20_000)
N_FIT = default(N_FIT, fast=1000, full=2000)
FIT_ITERS = default(FIT_ITERS, fast=200, full=500)
STEPS = default(STEPS, fast=[4, 8, 16, 32, 64, 128], full=[2, 4, 8, 16, 32, 64, 128, 256, 512])

diffviz.interactive_threads(1)
device = diffviz.resolve_device(DEVICE)  # reported only: the 1-D quadratures below run on the CPU
set_path(FIGURES_PATH)
SIGMA_TS, DFS = list(E.SIGMA_TS), list(E.DFS)
ex = exercises("02")  # the workshop track: ex.q1.check(answer), ex.q1.hint(), ex.q1.solution()
print(f"d = {DIM}, n = {N_SAMPLES} samples per start, learned fits on {N_FIT} samples, steps {STEPS}; "
      f"device {device}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. The start of a VE sampler
# The VE forward process adds noise without shrinking the data: $x_t = x_0 + \sigma(t) z$, $z \sim N(0, I)$, with
# noise level $\sigma(t)$ growing to $\sigma_T = \sigma(T)$ ([theory §1.4](../docs/theory.md#s1-4)). Three laws
# matter at $t = T$:
# * $p_T$, the law of $x_T$: the data noised to level $\sigma_T$ — where the reverse process *should* start;
# * the prior $p_\infty = N(0, \sigma_T^2 I)$, the usual start: close to $p_T$ only when $\sigma_T$ is large;
# * the start $q$ the sampler actually uses: $p_\infty$, or a *learned* start $q_\phi$ fitted to samples of $x_T$
#   (free: data plus noise).

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Exercise 02.q1 · The VE forward marginal** (write the code). Write `ve_marginal(x0, t, z)`: the VE marginal
# $x_t = x_0 + \sigma(t) z$ with the geometric noise level $\sigma(t) = \sigma_{\min}(\sigma_{\max}/\sigma_{\min})^t$,
# $\sigma_{\min} = 0.01$, $\sigma_{\max} = 50$ (diffviz's `VE()`). `x0` and `z` are float64 tensors of one shape,
# `t` a float in $[0, 1]$; use the `z` you are given (no noise of your own). The check compares it with `VE()` at
# several $t$.
# `ex.q1.hint()` gives a hint (`ex.q1.hint(2)` the next), `ex.q1.solution()` the solution.

# %% tags=["solution"] slideshow={"slide_type": "-"}
# exercise 02.q1
### BEGIN SOLUTION
def ve_marginal(x0, t, z):
    sigma_q1 = 0.01 * (50.0 / 0.01) ** t  # sigma(t) = sigma_min (sigma_max / sigma_min)^t
    return x0 + sigma_q1 * z
### END SOLUTION
ex.q1.check(ve_marginal)

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Exercise 02.q2 · Simulate x_T of the VE process** (simulate). Data $x_0 \sim N(0, 1)$ (one coordinate). Draw
# `x_T`, 20 000 samples of the VE marginal at $t = T$, $x_T = x_0 + \sigma_T z$, as a 1-D tensor. The check
# compares their variance with the exact $1 + \sigma_T^2$, within 5 standard errors computed from your sample
# size.
# `ex.q2.hint()` gives a hint (`ex.q2.hint(2)` the next), `ex.q2.solution()` the solution.

# %% tags=["solution"] slideshow={"slide_type": "-"}
# exercise 02.q2
### BEGIN SOLUTION
ve_q2 = diffviz.VE()
x0_q2 = torch.randn(20_000, generator=torch.Generator().manual_seed(SEED), dtype=torch.float64)
x_T, _ = ve_q2.marginal(x0_q2, ve_q2.T, generator=torch.Generator().manual_seed(SEED + 1))
### END SOLUTION
ex.q2.check(x_T)

# %% [markdown] slideshow={"slide_type": "subslide"}
# With the Kullback–Leibler divergence $\mathrm{KL}(p\,\|\,q) = E_p[\ln(p/q)]$, Fassina et al. bound the error of
# the generated law $\hat p$ by three terms ([theory §6.1](../docs/theory.md#s6-1); the structure of their bound,
# constants not checked here), for any $\delta > 0$:
#
# $$\mathrm{KL}(p_{\rm data}\,\|\,\hat p) \le \underbrace{\mathrm{KL}(p_T\,\|\,q)}_{\text{initialization}}
# + (1+\delta)\,\underbrace{E_{\rm score}}_{\text{score error}}
# + (1 + 1/\delta)\,\underbrace{E_{\rm disc}}_{\text{discretization}}.$$

# %% [markdown] slideshow={"slide_type": "subslide"}
# The initialization term of the prior start is known in closed form on Gaussian data $N(0, \lambda I_d)$:
# $\mathrm{KL}(p_T\,\|\,p_\infty) = \frac d2[r - \ln(1 + r)]$ with $r = \lambda/\sigma_T^2$ (*exact*,
# [theory §4.2](../docs/theory.md#s4-2)). Below for $\lambda = 3$, $d = 100$, beside the range
# $\ln(\sigma_T/\sigma_{\min})$ that the sampler must cross down to $\sigma_{\min} = 0.01$: a large $\sigma_T$ makes the
# start right but the road long.

# %% slideshow={"slide_type": "-"}
pd.DataFrame([{"σ_T": s, "r = λ/σ_T²": f"{E.GAUSS_LAM / s**2:.2e}",
               "KL(p_T ‖ p_∞), nats (exact)": f"{DIM * theory.endpoint_kl_ve([E.GAUSS_LAM], s):.3g}",
               "log-range ln(σ_T/σ_min)": f"{np.log(s / E.make_process(s).sigma_min):.2f}"}
              for s in SIGMA_TS]).set_index("σ_T")

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Exercise 02.q3 · The endpoint KL of the VE prior** (closed form). Data $N(\mu, \mathrm{diag}(\lambda))$ with
# $\lambda = (3, 0.5)$ and $\mu = (1, 0)$. Write `ve_endpoint_kl(sigma_T)`: $\mathrm{KL}(p_T\,\|\,p_\infty)$ for the
# VE process stopped at noise level $\sigma_T$, with $p_\infty = N(0, \sigma_T^2 I)$. The check compares it with
# diffviz at several $\sigma_T$.
# `ex.q3.hint()` gives a hint (`ex.q3.hint(2)` the next), `ex.q3.solution()` the solution.

# %% tags=["solution"] slideshow={"slide_type": "-"}
# exercise 02.q3
### BEGIN SOLUTION
def ve_endpoint_kl(sigma_T):
    r_q3 = [lam_i / sigma_T ** 2 for lam_i in (3.0, 0.5)]  # r_i = λ_i / σ_T²
    mean_term_q3 = (1.0 ** 2 + 0.0 ** 2) / (2 * sigma_T ** 2)  # |μ|² / (2 σ_T²)
    return 0.5 * sum(r_i - math.log1p(r_i) for r_i in r_q3) + mean_term_q3
### END SOLUTION
ex.q3.check(ve_endpoint_kl)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. Heavy-tailed data and an exact sampler
# The data: $d = 100$ i.i.d. Student-t coordinates with $\nu$ degrees of freedom, density $\propto (1 + x^2/\nu)^{-(\nu+1)/2}$,
# so the tail falls like $|x|^{-(\nu+1)}$. We take $\nu = 3$ (finite variance 3) and $\nu = 1.5$ (infinite variance),
# and $\sigma_T \in \{2, 7, 80\}$ (80 is the usual largest noise level of Karras et al.). The score
# $\nabla \log p_t$ of the noised Student-t is computed *exactly* by quadrature ([theory §3.3](../docs/theory.md#s3-3)),
# so $E_{\rm score} = 0$: only initialization and discretization remain.

# %% [markdown] slideshow={"slide_type": "fragment"}
# The sampler is deterministic. The *probability-flow ODE* $\frac{\mathrm d x}{\mathrm d t} = f(t)x - \tfrac12 g(t)^2 \nabla\log p_t(x)$
# (for VE, $f = 0$ and $g^2 = \mathrm d\sigma^2/\mathrm d t$) moves a point so that its law at time $t$ is $p_t$, the same marginals as
# the reverse-time SDE but with no noise ([theory §2.2](../docs/theory.md#s2-2)). We integrate it from $\sigma_T$ down
# to $\sigma_{\min}$ with Heun's second-order method ([theory §2.4](../docs/theory.md#s2-4)) on a grid uniform in $t$,
# i.e. in $\log\sigma$ ([theory §2.3](../docs/theory.md#s2-3)).

# %% [markdown] slideshow={"slide_type": "subslide"}
# **The sampler is a map of the real line** ([theory §6.4](../docs/theory.md#s6-4), *derived*). The exact score acts
# coordinate by coordinate, so $N$ Heun steps apply one increasing map $\Phi_N:\mathbb R\to\mathbb R$ to every
# coordinate. With $Q_{\rm start}(u)$ the start's quantile at level $u$, the output quantile is
# $\Phi_N(Q_{\rm start}(u))$: exact tail quantiles down to $1 - 10^{-6}$, with no Monte Carlo error. Check: sample
# 50 points × 20 coordinates from $p_T$, run `diffviz.sample`, and compare with the map of the start's order statistics.

# %% slideshow={"slide_type": "-"}
gen = diffviz.make_generator(SEED, "cpu")
x_small = E.draw_starts(3.0, 7.0, 50, 20, inits=("oracle",), generator=gen)["oracle"]
out_direct = E.run_sampler(x_small, 3.0, 7.0, N_REF)
levels_small = np.array([0.1, 0.5, 0.9])
q_direct = E.order_statistic_quantiles(out_direct, levels_small)
q_mapped = E.SamplerMap(3.0, 7.0, N_REF).push(E.order_statistic_quantiles(x_small, levels_small))
pd.DataFrame({"level u": levels_small,
              "simulated quantile (mean over coords)": q_direct.mean(0).round(4),
              "map of the start's order statistic": q_mapped.mean(0).round(4),
              "max |difference| over coords": [f"{v:.1e}" for v in np.abs(q_direct - q_mapped).max(0)]}
             ).set_index("level u")

# %% [markdown] slideshow={"slide_type": "fragment"}
# The two agree to float64 round-off. As $N\to\infty$, $\Phi_N$ tends to the monotone transport of $p_T$ onto the
# data, a bijection, and a bijection leaves KL unchanged: the ODE carries the start's error
# $\mathrm{KL}(p_T\,\|\,q)$ to the output *in full* (the reverse SDE would forget part of it, §6).

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. Learned starts
# $q_\phi$: independent Student-t coordinates (location, scale, $\nu$) fitted by maximum likelihood on $N_{\rm fit}$
# free samples of $x_T$ per coordinate ([theory §6.3](../docs/theory.md#s6-3)). The fit is *ECM*
# (expectation–conditional maximisation): a Student-t is a Gaussian whose precision is Gamma-distributed, so each
# iteration computes the expected precision of every sample (E-step), then updates location and scale in closed
# form and $\nu$ by a one-dimensional search, one block at a time (conditional M-steps).

# %% slideshow={"slide_type": "-"}
learned = {}
for df in DFS:
    for s in SIGMA_TS:
        learned[(df, s)] = E.fit_learned(df, s, n_fit=N_FIT, d=DIM, n_iter=FIT_ITERS,
                                         generator=diffviz.make_generator(SEED + 1, "cpu"))
pd.DataFrame([{"data ν": df, "σ_T": s,
               "fitted ν (mean ± sd over coords)": f"{float(q.df.mean()):.2f} ± {float(q.df.std()):.2f}",
               "fitted scale (mean)": f"{float(q.scale.mean()):.3f}", "ECM iterations": q.n_iter_}
              for (df, s), q in learned.items()]).set_index(["data ν", "σ_T"])

# %% [markdown] slideshow={"slide_type": "fragment"}
# $p_T$ = Student-t $*$ $N(0, \sigma_T^2)$ is not a Student-t: its tail still falls like $|x|^{-(\nu+1)}$, but its bulk
# is Gaussian, and maximum likelihood follows the bulk. So the fitted $\nu$ lands well above the data's, the more so
# as $\sigma_T$ grows (where the likelihood is also flat in $\nu$ and ECM crawls).

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. The quantile plot (the paper's Figure 2)
# Per panel: the data's quantiles (black); the **exact** output quantiles of each start after $N_{\rm ref}$ Heun steps
# (`N_REF`, 32 by default; lines; the learned start's bars: ± one sd over the $d$ per-coordinate fits); the **simulation** (circles:
# empirical quantiles of $n$ samples per coordinate, mean ± sd over coordinates, only at levels with at least 10
# samples beyond them; *estimated*, [theory §9.1](../docs/theory.md#s9-1)). x-axis: $\log_{10}(u/(1-u))$, so
# 0.999 sits at 3; y-axis: asinh, linear near 0 and logarithmic in the tails.

# %% slideshow={"slide_type": "subslide"}
figs = {}
for df in DFS:
    for s in SIGMA_TS:
        figs[(df, s)] = E.figure2(df, s, N_REF, n=N_SAMPLES, d=DIM, learned=learned[(df, s)], generator=gen)
V.figure2_panels([figs[(3.0, s)] for s in SIGMA_TS], title=f"Student-t ν = 3, d = {DIM}, N = {N_REF} Heun steps")

# %% [markdown] slideshow={"slide_type": "fragment"}
# At $\sigma_T = 2$ the prior's tails are far too light from $u = 0.9$ on ($p_T$ has variance $3 + 4$, the prior $4$);
# the learned start follows the data to about 0.999, then falls short; the oracle ($q = p_T$) is on the data up to
# discretization. At $\sigma_T = 80$ prior and oracle agree, but 32 steps over the longer road leave a
# discretization error. The same with infinite variance, $\nu = 1.5$:

# %% slideshow={"slide_type": "subslide"}
V.figure2_panels([figs[(1.5, s)] for s in SIGMA_TS], title=f"Student-t ν = 1.5, d = {DIM}, N = {N_REF} Heun steps")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. Quality against the number of steps
# Two numbers that still work with heavy tails, both **exact** for the Heun map:
# * **binned KL**: $\mathrm{KL}(p_{\rm data}\,\|\,p_{\rm out})$ of the variable binned between the output quantiles at
#   levels $10^{-6}, \dots, 0.5, \dots, 1 - 10^{-6}$ (the output puts the known mass $\Delta u$ in each bin): a lower
#   bound on the full KL;
# * **tail error**: mean over $u \in \{0.9, 0.99, \dots, 1 - 10^{-6}\}$ of $|\ln(Q_{\rm out}(u)/Q_{\rm data}(u))|$.
#
# Lines: $\sigma_T = 2$ solid, 7 dashed, 80 dotted. A missing point: too few steps for the range, $\Phi_N$ is not increasing.

# %% slideshow={"slide_type": "subslide"}
sweeps = {}
for df in DFS:
    for s in SIGMA_TS:
        sweeps[(df, s)] = E.steps_sweep(df, s, STEPS, learned=learned[(df, s)])
V.steps_figure({s: sweeps[(3.0, s)] for s in SIGMA_TS}, "binned_kl", title="ν = 3: binned KL vs Heun steps (exact)")

# %% slideshow={"slide_type": "subslide"}
V.steps_figure({s: sweeps[(3.0, s)] for s in SIGMA_TS}, "tail_error", title="ν = 3: tail error vs Heun steps (exact)")

# %% [markdown] slideshow={"slide_type": "subslide"}
# The key table, per coordinate, at $N_{\rm ref}$ steps: binned KL and tail error (*exact*); their $N\to\infty$ limits,
# the initialization error alone (the limit of the binned KL is the binned $\mathrm{KL}(p_T\,\|\,q)$); the simulated
# tail error (*estimated*: its floor, seen on the oracle, is the sampling noise of $n$ samples); and the steps
# needed to keep the binned KL below `KL_TOL` ("never": the start's own error is larger).

# %% slideshow={"slide_type": "-"}
summary = pd.DataFrame(E.summary_rows(figs, sweeps, kl_tol=KL_TOL))
pd.DataFrame({
    "ν": summary["nu"], "σ_T": summary["sigma_T"], "start": summary["start"],
    f"binned KL, N = {N_REF}": summary["binned_kl"].map("{:.2e}".format),
    "binned KL, N → ∞": summary["limit_binned_kl"].map("{:.2e}".format),
    f"tail error, N = {N_REF}": summary["tail_error"].map("{:.3f}".format),
    "tail error, N → ∞": summary["limit_tail_error"].map("{:.3f}".format),
    "simulated tail error": summary["sim_tail_error"].map("{:.3f}".format),
    "steps needed": summary["steps_needed"].map(lambda n: "never" if n is None or n != n else f"{int(n)}"),
}).set_index(["ν", "σ_T", "start"])

# %% [markdown] slideshow={"slide_type": "fragment"}
# With $\sigma_T = 2$ the **learned** start reaches the tolerance in a handful of steps; the prior needs
# $\sigma_T = 80$ and several times more steps; the prior at $\sigma_T = 2$ never gets there. The learned start is not
# free: its fit has a statistical error of order (parameters)/(2 $N_{\rm fit}$) per coordinate, larger at
# $\sigma_T = 80$ than the prior's own tiny mismatch. Learning the start pays when $\mathrm{KL}(p_T\,\|\,p_\infty)$ is
# bigger than that. And the extreme tail, where the fitted $\nu$ is wrong, stays poor: a KL hardly sees it.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6. The exact reference: Gaussian data
# For data $N(0, \lambda I_d)$, $\lambda = 3$ (the variance of a Student-t with $\nu = 3$), every sampler step is
# linear and the output after $N$ Heun steps is Gaussian with an exact variance recursion
# ([theory §4.3](../docs/theory.md#s4-3)); its KL to the data is then closed-form ([theory §4.1](../docs/theory.md#s4-1)).
# The prior's curves flatten at the endpoint KL of §1 (dotted); the exact start $q = p_T$ at $\sigma_T = 2$ reaches
# a given KL with far fewer steps than any start at $\sigma_T = 80$.

# %% slideshow={"slide_type": "-"}
gauss = E.gaussian_kl_curves(SIGMA_TS, STEPS, lam=E.GAUSS_LAM, d=DIM)
V.gaussian_kl_figure(gauss, title=f"Gaussian N(0, {E.GAUSS_LAM:g} I_d), d = {DIM}: exact KL after N Heun steps")

# %% [markdown] slideshow={"slide_type": "subslide"}
# The reverse-time SDE ([theory §2.1](../docs/theory.md#s2-1)), integrated by Euler–Maruyama, injects fresh noise at
# every step and so *shrinks* the start's error instead of carrying it. Same recursion, prior start at
# $\sigma_T = 2$, 256 steps (*exact*):

# %% slideshow={"slide_type": "-"}
kl_heun = E.gaussian_kl(2.0, 256, "prior", lam=E.GAUSS_LAM, d=DIM)
kl_em = E.gaussian_kl(2.0, 256, "prior", lam=E.GAUSS_LAM, d=DIM, method="em")
pd.DataFrame({"": ["the start's error KL(p_T ‖ p_∞)", "after 256 Heun steps on the probability-flow ODE",
                     "after 256 Euler–Maruyama steps on the reverse SDE"],
              "KL, nats (exact)": [f"{gauss['endpoint'][2.0]:.3f}", f"{kl_heun:.3f}", f"{kl_em:.3f}"]}).set_index("")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 7. Infinite variance: a Gaussian start is infinitely wrong
# For $\nu \le 2$ the data have no second moment, and for any Gaussian start $q = N(0, \sigma_T^2)$
# $$\mathrm{KL}(p_T\,\|\,q) = -H(p_T) + \tfrac12\ln(2\pi\sigma_T^2) + \frac{E_{p_T}[x^2]}{2\sigma_T^2} = \infty
# \quad\text{at every } \sigma_T$$
# (*derived*, [theory §6.2](../docs/theory.md#s6-2); the entropy $H(p_T)$ is finite). To see it, restrict the integral
# to $|x| \le X$: for $\nu = 1.5$ it grows like $X^{2-\nu} = X^{1/2}$ (dotted reference), at $\sigma_T = 80$ only later.

# %% slideshow={"slide_type": "-"}
cutoffs = np.logspace(1, 9, 9)
trunc = {
    "ν = 1.5, prior (Gaussian), σ_T = 2": E.truncated_endpoint_kl(1.5, 2.0, cutoffs),
    "ν = 1.5, prior (Gaussian), σ_T = 80": E.truncated_endpoint_kl(1.5, 80.0, cutoffs),
    "ν = 3, prior (Gaussian), σ_T = 2": E.truncated_endpoint_kl(3.0, 2.0, cutoffs),
    "ν = 1.5, learned Student-t, σ_T = 2": E.truncated_endpoint_kl(1.5, 2.0, cutoffs, init="learned",
                                                                   learned=learned[(1.5, 2.0)]),
}
V.truncated_kl_figure(cutoffs, trunc, slope=2 - 1.5, title="KL(p_T ‖ q) restricted to |x| ≤ X (quadrature)")

# %% [markdown] slideshow={"slide_type": "fragment"}
# For $\nu = 3$ the restricted KL converges, and the learned Student-t start (finite $\nu$) has a finite KL even for
# $\nu = 1.5$. (Restricted integrals can be negative for small $X$; those points are left out of the log plot.) In the
# quantile plots this is the extreme tail: at $\sigma_T = 80$ the prior start's output 0.999999-quantile is a few
# hundred (at most $80 \times 4.75 = 380$, the prior's own), where the data have 5219.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 8. Explore
# Choose $\sigma_T$, the number of Heun steps $N$, the start, $\nu$ and the seed. Left: the quantile plot (exact output
# quantiles as a line, the simulation as circles). Right: the exact Gaussian KL against $N$ with the current
# $(\sigma_T, N)$ marked (prior start → prior curve; oracle and learned → exact-start curve). The learned starts are
# the fits of §3, never refitted; each update runs the sampler once on a few hundred points.

# %% slideshow={"slide_type": "subslide"}
dash = V.InitializationDashboard(n=DASH_SAMPLES, d=DIM, learned=learned, sigma_T=2.0, n_steps=N_REF)
dash

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Take-aways
# - The error of a VE sampler splits into initialization $\mathrm{KL}(p_T\,\|\,q)$, score error and discretization;
#   a large $\sigma_T$ buys a small first term with many steps.
# - A deterministic sampler (the probability-flow ODE) carries the start's error to the output unchanged, and more
#   steps cannot remove it; the reverse SDE (Euler–Maruyama) shrinks it (about 9 times on the Gaussian at σ_T = 2).
# - A start $q_\phi$ learned from free samples of $x_T$ lets $\sigma_T = 2$ reach, in a handful of Heun steps, the
#   quality the Gaussian prior needs $\sigma_T = 80$ and several times more steps for.
# - For data with infinite variance ($\nu \le 2$) the Gaussian start has infinite KL at every $\sigma_T$; the damage
#   sits in the extreme tail, where even a learned Student-t start with a too-large $\nu$ falls short.

# %% tags=["figures", "remove-cell"] slideshow={"slide_type": "skip"}
# Regression bookkeeping (hidden in the student notebook and the slides): the key figures for tests/test_notebook_02.py
record("n_ref", N_REF)
record("kl_tol", KL_TOL)
record("check_direct_vs_map_max_abs", float(np.abs(q_direct - q_mapped).max()))
for (df, s), q in learned.items():
    record(f"learned_df_mean_nu{df:g}_s{s:g}", float(q.df.mean()))
for (df, s), fig in figs.items():
    for kind in E.INITS:
        ex = fig["exact"][kind]
        record(f"tail_error_nu{df:g}_s{s:g}_{kind}", ex["tail_error"])
        record(f"binned_kl_nu{df:g}_s{s:g}_{kind}", ex["binned_kl"])
        record(f"q999_nu{df:g}_s{s:g}_{kind}", float(ex["mean"][list(E.LEVELS).index(0.999)]))
        record(f"sim_tail_error_nu{df:g}_s{s:g}_{kind}", fig["sim"][kind]["tail_error"])
record("q999_true_nu3", float(E.data_quantiles(3.0, [0.999])[0]))
for (df, s), sw in sweeps.items():
    for kind in E.INITS:
        record(f"steps_needed_nu{df:g}_s{s:g}_{kind}", E.steps_needed(sw["steps"], sw[kind]["binned_kl"], KL_TOL))
        record(f"limit_binned_kl_nu{df:g}_s{s:g}_{kind}", sw[kind]["limit_binned_kl"])
        record(f"limit_tail_error_nu{df:g}_s{s:g}_{kind}", sw[kind]["limit_tail_error"])
for s in SIGMA_TS:
    for init in ("prior", "exact"):
        record(f"gauss_kl_s{s:g}_{init}_N{N_REF}", float(gauss[init][s][STEPS.index(N_REF)]))
        record(f"gauss_steps_needed_s{s:g}_{init}", E.steps_needed(gauss["steps"], gauss[init][s], KL_TOL * DIM))
    record(f"gauss_endpoint_kl_s{s:g}", gauss["endpoint"][s])
record("gauss_kl_s2_prior_N256_em", kl_em)
record("gauss_kl_s2_prior_N256_heun", kl_heun)
record("trunc_kl_cutoffs", cutoffs)
record("trunc_kl_prior_nu1.5_s80", trunc["ν = 1.5, prior (Gaussian), σ_T = 80"])
record("trunc_kl_prior_nu1.5_s2", trunc["ν = 1.5, prior (Gaussian), σ_T = 2"])
record("trunc_kl_prior_nu3_s2", trunc["ν = 3, prior (Gaussian), σ_T = 2"])
record("trunc_kl_learned_nu1.5_s2", trunc["ν = 1.5, learned Student-t, σ_T = 2"])
record("q999999_nu1.5_s80_prior", float(figs[(1.5, 80.0)]["exact"]["prior"]["mean"][-1]))
record("q999999_true_nu1.5", float(E.data_quantiles(1.5, [0.999999])[0]))
# the dashboard: CPU time of ten control changes (compute + redraw, one thread), then back to its first state
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

# NBVAL_CHECK_OUTPUT
q = figs[(3.0, 2.0)]["exact"]
print(f"σ_T = 2, N = {N_REF}: output 0.999-quantile prior {q['prior']['mean'][4]:.2f}, oracle "
      f"{q['oracle']['mean'][4]:.2f}, data {E.data_quantiles(3.0, [0.999])[0]:.2f}")
