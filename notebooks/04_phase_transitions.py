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
# # 4 · VP/VE phase transitions in high dimension
#
# Data in high dimension $d$ have features at two scales: *which mode* a sample belongs to (a high-level
# feature) and *how it spreads inside its mode* (a low-level one). A sampler with a budget of steps may get one
# right and miss the other. Which one it misses depends on the noise it starts from and on where it spends
# its steps; here everything is computed with the exact posterior, nothing is trained.
#
# **You will learn**
# - define a stochastic interpolant and its sampler clock $u$, and convert it to the diffusion time $t$ of
#   notebooks 00–03;
# - explain the VP/VE dichotomy: with uniform steps the VP interpolant loses the mode weights, the VE
#   interpolant loses the within-mode spread;
# - locate the critical window where each feature is decided and build a time dilation that resolves both;
# - measure the Euler steps needed as $d$ grows ($\Theta(\sqrt d)$ uniform, $\Theta_d(1)$ dilated), by
#   simulation and by an exact one-dimensional reduction;
# - test the same schedules on the Curie–Weiss spin model and say where the velocity used there is approximate.
#
# **Prerequisites** — DDPM seen once; notebook 00 (forward processes, the probability-flow ODE, Euler steps)
# and notebook 03 (time grids: where a sampler spends its steps).
#
# **Time** — reading about 40 min; run on 2 CPU cores (`diffviz run`): FAST ≈ 19 s, full ≈ 10.5 min.
#
# **Paper** — S. Aranguri, G. Biroli, M. Mézard, E. Vanden-Eijnden, "Optimizing Noise Schedules of Generative
# Models in High Dimensions", arXiv:2501.00988, 2025. Background: M. S. Albergo, N. M. Boffi,
# E. Vanden-Eijnden, "Stochastic Interpolants: A Unifying Framework for Flows and Diffusions",
# arXiv:2303.08797, 2023.

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
FAST = True  # quick run (CI, Binder); False for lecture quality. It picks the defaults of the None sizes below
SEED = 0
DEVICE = "auto"  # auto: CUDA when present, else CPU (a GPU also runs d of 10^6 in section 8)
N_SAMPLES = None  # particles per run (None: 300 FAST, 500 full)
D_REF = None  # dimension of the steps sweep (None: 1000 FAST, 10_000 full)
STEPS = None  # Euler step counts of the sweep (None: [5, 10, 20, 40, 80] FAST, up to 320 full)
REF_STEPS = 20  # step count of the feature table
D_LIST = None  # dimensions of the simulated steps-needed search (None: [100, 400, 1600] FAST, + 10_000 full)
N_NEEDED = None  # particles per run of the steps-needed search (None: 300 FAST, 1000 full)
D_EXACT = [100, 400, 1600, 10_000, 100_000, 1_000_000]  # dimensions of the exact (reduced) search
TOL_P = 0.05  # tolerance on |p̂ − p|
TOL_SIGMA2 = 0.2  # tolerance on |σ̂_w² − σ_w²| / σ_w²
P = 0.8  # weight p of the mode +μ
SIGMA2 = 0.25  # within-mode variance σ_w²
KAPPA = 3.0  # dilation window: w is KAPPA / sqrt(d)
CW_D = None  # Curie–Weiss dimension (None: 1000 FAST, 10_000 full)
CW_BETA = 2.0  # Curie–Weiss inverse temperature β_CW
CW_H = 0.7  # Curie–Weiss field h (energy h S / d)
CW_STEPS = 100  # Euler steps of the dilated VE sampler for Curie–Weiss
D_GPU = 1_000_000  # dimension of section 8 (runs only on CUDA)
FIGURES_PATH = None  # where the key figures are written for the regression tests (set by the notebook runner)

# %% slideshow={"slide_type": "skip"}
import math

import pandas as pd
import torch
from IPython.display import display

import diffviz
from diffviz.dashboards import phase_transitions as dash_pt
from diffviz.experiments import phase_transitions as pt
from diffviz.workshop import exercises

default = diffviz.run_defaults(FAST)
N_SAMPLES = default(N_SAMPLES, fast=300, full=500)
D_REF = default(D_REF, fast=1000, full=10_000)
STEPS = default(STEPS, fast=[5, 10, 20, 40, 80], full=[5, 10, 20, 40, 80, 160, 320])
D_LIST = default(D_LIST, fast=[100, 400, 1600], full=[100, 400, 1600, 10_000])
N_NEEDED = default(N_NEEDED, fast=300, full=1000)
CW_D = default(CW_D, fast=1000, full=10_000)

diffviz.interactive_threads(1)
device = diffviz.resolve_device(DEVICE)
ex = exercises("04")  # the workshop track: ex.q1.check(answer), ex.q1.hint(), ex.q1.solution()


def pm(value, se, digits=3):
    """'value ± SE' as one table entry."""
    return f"{value:.{digits}f} ± {se:.{digits}f}"


print(f"device {device}; d = {D_REF}, n = {N_SAMPLES} particles, Euler steps {STEPS}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. Stochastic interpolants and the sampler clock
# A **stochastic interpolant** mixes a noise draw $z \sim N(0, I_d)$ and a data point $x_1$ along a path
# $I_\tau = a(\tau)\,z + b(\tau)\,x_1$, $\tau \in [0, 1]$, with pure noise at $\tau = 0$ and data at $\tau = 1$
# [theory §8.1](../docs/theory.md#s8-1). We use $a(\tau) = c\,(1 - \tau)$ and $b(\tau) = \tau$.
# This is the forward marginal $x_t = m(t)\,x_0 + s(t)\,z$ of notebooks 00–03 read the other way round (data
# $x_0$ there, $x_1$ here): $\tau$ runs from noise to data, the diffusion time $t$ from data to noise.

# %% [markdown] slideshow={"slide_type": "fragment"}
# The sampler runs on a **clock** $u \in [0, 1]$: noise at $u = 0$, data at $u = 1$ — the **opposite** of the
# diffusion time $t$ of notebooks 00–03, where samplers run $t$ from $T$ down to $t_{\min}$. A *schedule* is a
# map $u \mapsto \tau(u)$ (uniform: $\tau = u$); the sampler takes $N$ equal Euler steps in $u$. Where diffviz
# treats an interpolant as a forward process (`diffviz.Interpolant`), it takes $t = 1 - u$, so
# $m(t) = b(\tau(1 - t))$ and $s(t) = a(\tau(1 - t))$.

# %% [markdown] slideshow={"slide_type": "subslide"}
# Two values of $c$: $c = 1$, the **VP interpolant** (it starts from $N(0, I_d)$, like VP's prior), and
# $c = \sqrt d$, the **VE interpolant** (it starts from $N(0, d\,I_d)$, like VE's wide prior with
# $\sigma_T^2 = d$). The names are Aranguri et al.'s analogy with the priors: **neither path preserves
# variance**. The table evaluates both through the package's diffusion-time interface at $t = 1 - u$; the last
# columns give $E|I_\tau|^2/d = a^2 + b^2(1 + \sigma_w^2)$ for the data of section 2.

# %% slideshow={"slide_type": "-"}
u = torch.linspace(0.0, 1.0, 5, dtype=torch.float64)
t = 1 - u  # the diffusion time the Process interface takes
vp, ve = diffviz.Interpolant("vp", d=D_REF), diffviz.Interpolant("ve", d=D_REF)
b, a_vp, a_ve = vp.mean_scale(t), vp.std(t), ve.std(t)  # b(τ) = m(t) is the same for both interpolants
clock = pd.DataFrame({"u": u, "t = 1 − u": t, "b(τ) = m(t)": b, "a(τ) = s(t), VP": a_vp, "a(τ) = s(t), VE": a_ve,
                      "E|I|²/d, VP": a_vp ** 2 + b ** 2 * (1 + SIGMA2),
                      "E|I|²/d, VE": a_ve ** 2 + b ** 2 * (1 + SIGMA2)}).astype(float)
clock.round(3)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. The two-mode mixture and its exact posterior
# Data $x_1 = s\,\mu + \sigma_w\,\eta$: a mode $s = \pm 1$ with $P(s = +1) = p = 0.8$, centre
# $\mu = (1, \dots, 1)$ (so $|\mu|^2 = d$), noise $\eta \sim N(0, I_d)$ and within-mode variance
# $\sigma_w^2 = 0.25$. Two features: the **mode weight** $p$ (high-level) and the **within-mode variance**
# $\sigma_w^2$ (low-level). From samples we estimate $\hat p$ = fraction with $\mu\cdot X > 0$ and
# $\hat\sigma_w^2$ = mean of $|X - \mathrm{sign}(\mu\cdot X)\,\mu|^2/d$ [theory §8.3](../docs/theory.md#s8-3).

# %% [markdown] slideshow={"slide_type": "subslide"}
# The sampler solves the probability-flow ODE of the interpolant,
# $dX/du = \tau'(u)\,\big[a'(\tau)\,E[z\,|\,X] + b'(\tau)\,E[x_1\,|\,X]\big]$, from $X_0 \sim N(0, c^2 I_d)$.
# For this mixture the posterior means are exact [theory §8.2](../docs/theory.md#s8-2): with
# $\Delta(\tau) = a^2 + \sigma_w^2 b^2$,
#
# $$E[s|x] = \tanh\!\Big(\tfrac12\ln\tfrac{p}{1-p} + \frac{b\,\mu\cdot x}{\Delta}\Big),\quad
# E[x_1|x] = \frac{b\,\sigma_w^2}{\Delta}x + \frac{a^2}{\Delta}\mu\,E[s|x],\quad
# E[z|x] = \frac{a}{\Delta}\big(x - b\,\mu\,E[s|x]\big).$$

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Exercise 04.q1 · The exact score of the two-mode mixture** (write the code). Write `two_mode_score(x, t)`: the
# exact score $\nabla\ln p_t(x)$ of the two-mode mixture ($p = 0.8$, $\sigma_w^2 = 0.25$, $\mu = (1, \dots, 1)$)
# under the VP interpolant `vp` of §1 at diffusion time $t$ ($b = m(t)$, $a = s(t)$), for a batch `x` of shape (n,
# d).
# `ex.q1.hint()` gives a hint (`ex.q1.hint(2)` the next), `ex.q1.solution()` the solution.

# %% tags=["solution"] slideshow={"slide_type": "-"}
# exercise 04.q1
### BEGIN SOLUTION
p_q1, sigma2_q1 = 0.8, 0.25  # the mixture of this exercise


def two_mode_score(x, t):
    b, a = float(vp.mean_scale(t)), float(vp.std(t))  # b(τ) = m(t), a(τ) = s(t)
    delta = a ** 2 + sigma2_q1 * b ** 2
    e_s = torch.tanh(0.5 * math.log(p_q1 / (1 - p_q1)) + b * x.sum(-1, keepdim=True) / delta)  # E[s|x]
    return -(x - b * e_s) / delta
### END SOLUTION
ex.q1.check(two_mode_score)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. Where the features are decided, and time dilations
# The mode enters only through $b\,\mu\cdot x/\Delta$. **VP interpolant**: $\mu\cdot x \approx b\,d\,s +
# \sqrt d\,g$ ($g \sim N(0, 1)$) and $\Delta = O(1)$, so the mode is settled once $b = \tau \sim 1/\sqrt d$; a
# uniform first step $\Delta\tau = 1/N \gg 1/\sqrt d$ jumps over that window and $p$ is lost. **VE
# interpolant**: $\Delta \approx d(1-\tau)^2$, so the mode is decided at $\tau = O(1)$, but $\sigma_w^2$ only
# matters once $d(1-\tau)^2 \lesssim \sigma_w^2$, in the last $1/\sqrt d$ of the path, which a uniform last step
# jumps over: $\sigma_w^2$ is lost (paper; [theory §8.4](../docs/theory.md#s8-4)).

# %% [markdown] slideshow={"slide_type": "subslide"}
# A **time dilation** gives the critical window half of the clock. With the window $w = \kappa/\sqrt d$
# ($\kappa = 3$): the dilated VP schedule spends $u \in [0, \tfrac12]$ on $\tau \in [0, w]$, the dilated VE
# schedule spends $u \in [\tfrac12, 1]$ on $\tau \in [1 - w, 1]$; both are linear in between (paper). The table
# gives $\tau(u)$ of the four schedules at $d$ = `D_REF`.

# %% slideshow={"slide_type": "-"}
u = torch.linspace(0.0, 1.0, 5, dtype=torch.float64)
dilations = pd.DataFrame({pt.schedule_label(kind, dilation):
                          diffviz.Interpolant(kind, dilation, d=D_REF, kappa=KAPPA).tau(u).numpy()
                          for kind, dilation in pt.SCHEDULES}, index=pd.Index(u.numpy(), name="u"))
dilations.round(4)

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Exercise 04.q2 · The dilated schedule τ(u)** (write the code). Write `tau_dilated(u, kind, d)`: the dilated
# schedule $\tau(u)$ with window $w = \kappa/\sqrt d$, $\kappa = 3$, for `kind` "vp" or "ve", at a float64
# tensor `u` of clock times in $[0, 1]$ (same shape back). Dilated VP: $\tau$ runs over $[0, w]$ while
# $u \in [0, \tfrac12]$; dilated VE: over $[1 - w, 1]$ while $u \in [\tfrac12, 1]$; linear on each half. It is
# checked at many $u$ (including $u = \tfrac12$), both kinds, $d$ from $10^2$ to $10^6$.
# `ex.q2.hint()` gives a hint (`ex.q2.hint(2)` the next), `ex.q2.solution()` the solution.

# %% tags=["solution"] slideshow={"slide_type": "-"}
# exercise 04.q2
### BEGIN SOLUTION
kappa_q2 = 3.0  # the window is w = kappa / sqrt(d)


def tau_dilated(u, kind, d):
    w_q2 = kappa_q2 / math.sqrt(d)
    tau_half = w_q2 if kind == "vp" else 1 - w_q2  # τ(1/2): VP ends its window there, VE starts its window there
    return torch.where(u <= 0.5, 2 * tau_half * u, tau_half + (1 - tau_half) * (2 * u - 1))
### END SOLUTION
ex.q2.check(tau_dilated)

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Exercise 04.q3 · Which interpolant keeps the mode weight?** (predict, then check). Before the sweep of §4:
# at $d = 10^4$, with 20 **uniform** Euler steps, which interpolant's sampler recovers the mode weight
# $p = 0.8$ within 0.05: "vp", "ve", "both" or "neither"? Set `prediction`; the check answers with the exact
# figures. `ex.q3.hint()` gives a hint (`ex.q3.hint(2)` the next), `ex.q3.solution()` the solution.

# %% tags=["solution"] slideshow={"slide_type": "-"}
# exercise 04.q3
### BEGIN SOLUTION
prediction = "ve"  # VP's first uniform step (1/20) jumps over its mode window (1/sqrt(d) = 0.01)
### END SOLUTION
ex.q3.check(prediction)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. The dichotomy: features against the number of steps
# Four schedules share the same initial noise (common random numbers). Markers: simulation ± 2 standard
# errors (*estimated*). Dotted lines: the expected features of the Euler sampler, *exact* up to quadrature
# through a reduction *derived* for diffviz [theory §8.5](../docs/theory.md#s8-5): the velocity is
# $A(u)X + B(u, \mu\cdot X)\,\mu$, so under Euler the mode coordinate $M = \mu\cdot X/d$ follows a scalar
# recursion from $M_0 = c\,g/\sqrt d$ and the part orthogonal to $\mu$ is only rescaled; both features are
# then one-dimensional Gaussian integrals, at any $d$ (`pt.euler_features_exact`).

# %% slideshow={"slide_type": "-"}
sweep = pt.features_vs_steps(D_REF, N_SAMPLES, STEPS, P, SIGMA2, KAPPA, seed=SEED, device=device)
dash_pt.features_vs_steps_figure(sweep)

# %% [markdown] slideshow={"slide_type": "subslide"}
# At `REF_STEPS` Euler steps (20 by default): the uniform VP schedule puts too many samples in the heavier mode ($\hat p > p$);
# the uniform VE schedule shrinks each mode to almost a point ($\hat\sigma_w^2 \ll \sigma_w^2$); the dilated
# schedules keep both. What is left for them is the ordinary $O(1/N)$ Euler bias, the same at every $d$.

# %% slideshow={"slide_type": "-"}
ref_runs, ref_rows = {}, {"target": {"p̂ ± SE": f"{P:.3f}", "p̂, Euler exact": f"{P:.3f}",
                                     "σ̂_w² ± SE": f"{SIGMA2:.4f}", "σ̂_w², Euler exact": f"{SIGMA2:.4f}"}}
for kind, dilation in pt.SCHEDULES:
    r = pt.run_gm(D_REF, N_SAMPLES, REF_STEPS, kind, dilation, P, SIGMA2, KAPPA, seed=SEED, device=device)
    eu = pt.euler_features_exact(D_REF, REF_STEPS, kind, dilation, P, SIGMA2, KAPPA)
    ref_runs[f"{kind}_{dilation}"] = r
    ref_rows[pt.schedule_label(kind, dilation)] = {
        "p̂ ± SE": pm(r["p_hat"], r["p_se"]), "p̂, Euler exact": f"{eu['p_hat']:.3f}",
        "σ̂_w² ± SE": pm(r["sigma2_hat"], r["sigma2_se"], 4), "σ̂_w², Euler exact": f"{eu['sigma2_hat']:.4f}"}
pd.DataFrame.from_dict(ref_rows, orient="index")

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Exercise 04.q4 · Simulate p̂ of the dilated VP sampler** (statistical). Run 4000 samples of the **dilated
# VP** sampler with 5 Euler steps at $d = 1000$ ($p = 0.8$, $\sigma_w^2 = 0.25$, $\kappa = 3$) and set
# `in_plus` to the 0/1 indicator of $\mu\cdot X > 0$ for each sample (shape (n,)). The check compares
# $\hat p$ = the mean of `in_plus`, with its binomial standard error $\sqrt{\hat p(1 - \hat p)/n}$, against
# the *exact* expectation of $\hat p$ for this 5-step Euler sampler (the reduced recursion above), not against
# $p$: 5 steps leave an Euler bias. `ex.q4.hint()` gives a hint (`ex.q4.hint(2)` the next), `ex.q4.solution()`
# the solution.

# %% tags=["solution"] slideshow={"slide_type": "-"}
# exercise 04.q4
### BEGIN SOLUTION
run_q4 = pt.run_gm(1000, 4000, 5, "vp", "dilated", p=0.8, sigma2=0.25, kappa=3.0, seed=1, return_samples=True)
in_plus = run_q4["x"].sum(-1) > 0  # mu . x > 0 with mu = (1, ..., 1)
### END SOLUTION
ex.q4.check(in_plus)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. Steps needed against the dimension
# The smallest step count (doubling from 6) with $|\hat p - p| \le 0.05$ and
# $|\hat\sigma_w^2 - \sigma_w^2| \le 0.2\,\sigma_w^2$. Markers: simulation; dotted steps: the exact Euler features
# (no sampling noise), continued to $d = 10^6$. Uniform schedules grow like $\sqrt d$ (grey guide), dilated ones
# stay flat: $\Theta(\sqrt d)$ against $\Theta_d(1)$ (paper). The simulated markers carry the sampling noise of
# $\hat p$: a factor 2 either way near the threshold.

# %% slideshow={"slide_type": "-"}
step_grid = [6 * 2 ** k for k in range(13)]  # 6 ... 24576
needed_sim = pt.steps_needed_all(D_LIST, TOL_P, TOL_SIGMA2, steps=step_grid, method="simulate", n=N_NEEDED,
                                 p=P, sigma2=SIGMA2, kappa=KAPPA, seed=SEED, device=device)
needed_exact = pt.steps_needed_all(D_EXACT, TOL_P, TOL_SIGMA2, steps=step_grid, method="exact", p=P,
                                   sigma2=SIGMA2, kappa=KAPPA)
dash_pt.steps_needed_figure(needed_sim, needed_exact)

# %% [markdown] slideshow={"slide_type": "subslide"}
# The exact Euler steps needed (*exact* up to quadrature; "> 24576": no step count of the grid passes). For the
# VP interpolant the gap opens only beyond the FAST sizes: at $d \le 1600$ the mode window
# $\tau \lesssim 1/\sqrt d$ is still wide enough for the ~50 steps that $\sigma_w^2$ needs anyway.

# %% slideshow={"slide_type": "-"}
pd.DataFrame.from_dict({pt.schedule_label(*key.split("/")): {f"d = {d:,}": str(k) if k else f"> {step_grid[-1]}"
                                                             for d, k in zip(D_EXACT, v["steps_needed"])}
                        for key, v in needed_exact.items()}, orient="index")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6. The mode decision along the ODE
# The mode coordinate $M_u = \mu\cdot X_u/d$ of a few particles of the dilated VE sampler (the paper's
# Figure 2, top, at a smaller $d$). Each particle picks its mode during the first half of the clock ($\tau$ from
# 0 to $1 - w$); the second half, stretched over the last $w$ of $\tau$, only shapes the spread inside the mode.

# %% slideshow={"slide_type": "-"}
traj = pt.run_gm(D_REF, N_SAMPLES, 40, "ve", "dilated", P, SIGMA2, KAPPA, seed=SEED, device=device,
                 record_magnetization=True, n_traj=12)
display(pd.DataFrame({"particles": [N_SAMPLES], "in their final mode at u = 1/2": [traj["decided_at_half"]]},
                     index=["VE dilated, 40 steps"]))
dash_pt.magnetization_figure(traj)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 7. Curie–Weiss
# Spins $x \in \{\pm1\}^d$ with law $\propto \exp\big(\frac{\beta_{CW}}{2d}S^2 + \frac{h}{d}S\big)$,
# $S = \sum_i x_i$: inverse temperature $\beta_{CW} = 2$, field $h = 0.7$. The magnetization of a sample is
# $M = S/d$; its features are $P(M > 0)$ (which mode, high-level) and $E|M|$ (how magnetized, low-level). Their
# exact values come from the law of $S$ (*exact*) [theory §8.6](../docs/theory.md#s8-6).

# %% [markdown] slideshow={"slide_type": "subslide"}
# The noised law has no closed-form posterior. The authors' velocity treats the data as two
# **product-Bernoulli** modes (an approximation): a mode $s = \pm1$ with weight $(1 \pm \tanh(h\,m_{CW}))/2$
# (the ratio $e^{2h m_{CW}}$ of the two peaks of the law, derived), then independent spins of mean
# $s\,m_{CW}$, where $m_{CW}$ is the mean-field magnetization, the largest root of
# $m_{CW} = \tanh(\beta_{CW} m_{CW} + h/d)$. Given the mode, each coordinate's posterior mean is
# $E[x_{1i}|x, s] = \tanh(b\,x_i/a^2 + s\,\mathrm{atanh}\,m_{CW})$ (`CurieWeiss.posterior_interpolant`).

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Exercise 04.q5 · The mean-field magnetization m_CW** (closed form). Compute $m_{CW}$ for
# $\beta_{CW} = 2$, $h = 0.7$, $d = 1000$: the largest root of $m = \tanh(\beta_{CW}\,m + h/d)$, as a float
# `m_cw` (relative tolerance $10^{-9}$). The table below shows it, rounded.
# `ex.q5.hint()` gives a hint (`ex.q5.hint(2)` the next), `ex.q5.solution()` the solution.

# %% tags=["solution"] slideshow={"slide_type": "-"}
# exercise 04.q5
### BEGIN SOLUTION
beta_q5, h_q5, d_q5 = 2.0, 0.7, 1000
m_cw = 1.0  # from above, the fixed-point iteration decreases to the largest root
for _ in range(200):
    m_cw = math.tanh(beta_q5 * m_cw + h_q5 / d_q5)
### END SOLUTION
ex.q5.check(m_cw)

# %% [markdown] slideshow={"slide_type": "subslide"}
# The approximation misses the enhanced fluctuations of $M$ within a mode: its sd is $\sqrt{\chi/d}$ with
# $\chi = (1 - m_{CW}^2)/(1 - \beta_{CW}(1 - m_{CW}^2))$, not $\sqrt{(1 - m_{CW}^2)/d}$; see the sd$|M|$ column.
# $M$ is measured on $\mathrm{sign}(X)$, the nearest spin configuration; the last column says how far the raw
# output is from $\pm1$.

# %% slideshow={"slide_type": "-"}
cw = pt.cw_comparison(CW_D, N_SAMPLES, [("ve", "dilated", CW_STEPS), ("ve", "dilated", 20), ("ve", "none", 20),
                                        ("vp", "none", 20)], CW_BETA, CW_H, KAPPA, seed=SEED, device=device)
first = next(iter(cw["runs"].values()))
display(pd.DataFrame({"d": [CW_D], "m_CW (mean field)": [round(cw["m_mean_field"], 4)],
                      "weight of the mode s = +1": [round(cw["p_plus"], 4)]}, index=["approximation"]))
cw_ex, cw_exs = first["exact"], first["exact_sampler"]
cw_rows = {"exact law": {"P(M>0) ± SE": f"{cw_ex['p_pos']:.4f}", "E|M| ± SE": f"{cw_ex['abs_m']:.4f}",
                         "sd|M|": f"{cw_ex['abs_m_sd']:.4f}", "mean ||X_i| − 1|": "0"},
           f"exact sampler (n = {N_SAMPLES})": {
               "P(M>0) ± SE": pm(cw_exs["p_pos"], cw_exs["p_pos_se"], 4),
               "E|M| ± SE": pm(cw_exs["abs_m"], cw_exs["abs_m_se"], 4),
               "sd|M|": f"{cw_exs['abs_m_sd']:.4f}", "mean ||X_i| − 1|": "0"}}
for key, r in cw["runs"].items():
    kind, dilation, n_steps = key.split("/")
    s = r["sampler"]
    cw_rows[f"{pt.schedule_label(kind, dilation)}, {n_steps} steps"] = {
        "P(M>0) ± SE": pm(s["p_pos"], s["p_pos_se"], 4), "E|M| ± SE": pm(s["abs_m"], s["abs_m_se"], 4),
        "sd|M|": f"{s['abs_m_sd']:.4f}", "mean ||X_i| − 1|": f"{r['spin_dev']:.2g}"}  # 0: every spin at ±1
pd.DataFrame.from_dict(cw_rows, orient="index")

# %% [markdown] slideshow={"slide_type": "subslide"}
# With 100 steps the dilated VE sampler matches the exact $P(M > 0)$ within its standard error and $E|M|$ up to
# the Euler bias, with every spin at $\pm1$. At 20 steps the dichotomy reappears. Uniform VE keeps $P(M > 0)$
# but stops short of $\pm1$ (each coordinate near its posterior mean) and its signs all align: $|M| \approx 1$
# instead of $m_{CW}$, the low-level feature is lost. Uniform VP ends on $\pm1$ spins with the weight tilted to
# the heavier mode: the high-level feature is lost (mild at $d = 10^3$, strong at $d = 10^4$).

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 8. Larger $d$ on a GPU
# A simulation costs $O(n\,d\,N)$ ($n$ particles, $N$ steps). With `DEVICE = "cuda"` the next cell runs the
# four schedules at $d = 10^6$ (the paper's Figure 2 size; 200 particles, 40 steps). On a CPU it is skipped:
# the exact Euler features of section 5 already reach $d = 10^6$.

# %% slideshow={"slide_type": "-"}
gpu_runs = {}
if device.type == "cuda":
    gpu_rows = {}
    for kind, dilation in pt.SCHEDULES:
        r = pt.run_gm(D_GPU, 200, 40, kind, dilation, P, SIGMA2, KAPPA, seed=SEED, device=device)
        eu = pt.euler_features_exact(D_GPU, 40, kind, dilation, P, SIGMA2, KAPPA)
        gpu_runs[f"{kind}_{dilation}"] = r
        gpu_rows[pt.schedule_label(kind, dilation)] = {
            "p̂ ± SE": pm(r["p_hat"], r["p_se"]), "p̂, Euler exact": f"{eu['p_hat']:.3f}",
            "σ̂_w² ± SE": pm(r["sigma2_hat"], r["sigma2_se"], 4), "σ̂_w², Euler exact": f"{eu['sigma2_hat']:.4f}"}
    display(pd.DataFrame.from_dict(gpu_rows, orient="index"))
else:
    print("no CUDA device: skipped (set DEVICE = 'cuda' on a GPU machine)")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 9. Dashboard
# Pick a schedule, the number of Euler steps and $d$. Three panels: the histogram of the mode coordinate
# $\mu\cdot X/d$ against the exact target (bars against the black line); the within-mode coordinates
# against $N(0, \sigma_w^2)$; the feature errors (dotted: exact Euler expectation over step counts;
# markers: this simulation ± 2 SE). The status line gives $\hat p$ and $\hat\sigma_w^2$ beside the targets
# $p$ and $\sigma_w^2$. With 300 particles, $d = 10^3$ updates in tens of ms on one CPU thread, $d = 10^4$ in
# about half a second.

# %% slideshow={"slide_type": "-"}
dashboard = dash_pt.PhaseTransitionDashboard(n=300, p=P, sigma2=SIGMA2, kappa=KAPPA, device=device)
dashboard

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Take-aways
# - An interpolant's sampler clock $u$ runs from noise ($u = 0$) to data ($u = 1$), the opposite of the
#   diffusion time $t$; diffviz converts with $t = 1 - u$.
# - With uniform steps the VP interpolant gets the within-mode variance $\sigma_w^2$ right but tilts the mode
#   weights $p$; the VE interpolant keeps $p$ but collapses the modes. Neither path preserves variance.
# - Each feature is decided in a window of width about $1/\sqrt d$: at the start of the path for VP, at its end
#   for VE; uniform steps need $\Theta(\sqrt d)$ of them to resolve it.
# - A time dilation that gives the critical window half of the clock needs $\Theta_d(1)$ steps at any $d$.
# - On Curie–Weiss the same dichotomy appears, and the product-Bernoulli velocity still misses the within-mode
#   fluctuations of $M$.

# %% tags=["figures", "remove-cell"] slideshow={"slide_type": "skip"}
# Regression bookkeeping (hidden in the student notebooks and slides): the key figures, the dashboard's update
# time and a seed-independent printed check.
from diffviz.record import record, set_path

set_path(FIGURES_PATH)
record("pt_sweep_d", D_REF)
record("pt_sweep_n", N_SAMPLES)
record("pt_sweep_steps", STEPS)
for key, rows in sweep["schedules"].items():
    for field in ("p_hat", "p_se", "sigma2_hat", "sigma2_se", "p_exact", "sigma2_exact", "sigma2_perp_hat",
                  "sigma2_perp_se", "sigma2_perp_exact"):
        record(f"pt_{key.replace('/', '_')}_{field}", rows[field])
for name, r in ref_runs.items():
    record(f"pt_ref_{name}_p_hat", r["p_hat"])
    record(f"pt_ref_{name}_p_se", r["p_se"])
    record(f"pt_ref_{name}_sigma2_hat", r["sigma2_hat"])
record("pt_ref_steps", REF_STEPS)
record("pt_needed_d", D_LIST)
record("pt_needed_exact_d", D_EXACT)
for key in needed_sim:
    record(f"pt_needed_{key.replace('/', '_')}", needed_sim[key]["steps_needed"])
    record(f"pt_needed_exact_{key.replace('/', '_')}", needed_exact[key]["steps_needed"])
record("pt_decided_at_half_ve_dilated", traj["decided_at_half"])
record("pt_cw_d", CW_D)
record("pt_cw_exact_p_pos", first["exact"]["p_pos"])
record("pt_cw_exact_abs_m", first["exact"]["abs_m"])
record("pt_cw_exact_abs_m_sd", first["exact"]["abs_m_sd"])
for key, r in cw["runs"].items():
    name = key.replace("/", "_")
    for field in ("p_pos", "p_pos_se", "abs_m", "abs_m_se", "abs_m_sd"):
        record(f"pt_cw_{name}_{field}", r["sampler"][field])
    record(f"pt_cw_{name}_spin_dev", r["spin_dev"])
for name, r in gpu_runs.items():
    record(f"pt_gpu_{name}_p_hat", r["p_hat"])
    record(f"pt_gpu_{name}_sigma2_hat", r["sigma2_hat"])

latency = []
for n_steps in (21, 20):  # two updates as a user would make them (the first one, at display, built caches)
    dashboard.set(n_steps=n_steps)
    latency.append(1000 * dashboard.last_update_s)
record("pt_dashboard_update_ms", max(latency))

# a rounded check, independent of the random seed: the exact Euler features at d = 1000 with 20 steps
check = {pt.schedule_label(k, dl): pt.euler_features_exact(1000, 20, k, dl, P, SIGMA2, KAPPA)
         for k, dl in pt.SCHEDULES}
# NBVAL_CHECK_OUTPUT
print({name: (round(e["p_hat"], 2), round(e["sigma2_hat"], 2)) for name, e in check.items()})
