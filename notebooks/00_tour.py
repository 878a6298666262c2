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
# # 0 · A tour of diffviz
#
# DDPM adds noise step by step and learns to remove it. Score-based models say the same in continuous time:
# a forward SDE noises the data, and running time backwards needs the **score** $\nabla_x \log p_t(x)$ of
# every noised law. This tour builds the pieces the other notebooks stand on.
#
# **You will learn**
# - to write the VP and VE forward processes through their marginal $x_t = m(t)\,x_0 + s(t)\,z$;
# - to explain the reverse-time SDE, the probability-flow ODE and the five samplers that discretise them;
# - to train a score network by denoising score matching and measure its error against an exact score;
# - to compute the *exact* error of each sampler on Gaussian data, and check it by simulation.
#
# **Prerequisites** DDPM once (noising chain, $\bar\alpha_t$, the $\varepsilon$-prediction loss); Gaussians.
#
# **Time** reading ≈ 20 min; run on 2 CPU cores (`diffviz run`): FAST ≈ 14 s (23 s when the score network is
# not yet cached), full ≈ 34 s.
#
# **Background** Y. Song, J. Sohl-Dickstein, D. P. Kingma, A. Kumar, S. Ermon, B. Poole, *Score-Based
# Generative Modeling through Stochastic Differential Equations*, ICLR 2021, arXiv:2011.13456 ·
# J. Ho, A. Jain, P. Abbeel, *Denoising Diffusion Probabilistic Models*, NeurIPS 2020, arXiv:2006.11239 ·
# J. Song, C. Meng, S. Ermon, *Denoising Diffusion Implicit Models* (DDIM), ICLR 2021, arXiv:2010.02502.

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
DEVICE = "auto"  # "auto" picks CUDA when present
N_SAMPLES = None  # points per scatter plot (None: 1000 FAST, 2000 full)
N_STEPS = 100  # steps N of the samplers in §3 and §4
TRAIN_STEPS = None  # optimiser steps of the score network (None: 600 FAST, 1500 full)
STEP_COUNTS = None  # step counts N of the exact comparison in §5 (None: 5 ... 80 FAST, 5 ... 320 full)
FIGURES_PATH = None  # where the key figures are written (set by `diffviz run`)

# %% slideshow={"slide_type": "skip"}
import math

import pandas as pd
import torch

import diffviz
from diffviz import VE, VP, plotting, sample, schedules, theory
from diffviz.metrics import relative_score_error
from diffviz.record import set_path
from diffviz.targets import Gaussian, GaussianMixture, toy
from diffviz.train import train_score
from diffviz.workshop import exercises

default = diffviz.run_defaults(FAST)
N_SAMPLES = default(N_SAMPLES, fast=1000, full=2000)
TRAIN_STEPS = default(TRAIN_STEPS, fast=600, full=1500)
STEP_COUNTS = default(STEP_COUNTS, fast=[5, 10, 20, 40, 80], full=[5, 10, 20, 40, 80, 160, 320])

diffviz.interactive_threads(1)
device = diffviz.resolve_device(DEVICE)
set_path(FIGURES_PATH)
gen = diffviz.make_generator(SEED, device)
SAMPLERS = {"em": "Euler–Maruyama", "ode-euler": "PF-ODE Euler", "heun": "Heun", "ddim": "DDIM",
            "pc": "predictor–corrector"}  # code name -> name in the text
ex = exercises("00")  # the workshop track: ex.q1.check(answer), ex.q1.hint(), ex.q1.solution()
print(f"diffviz {diffviz.__version__} on {device}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. Forward processes
# Diffusion time runs from the data at $t = 0$ to noise at $t = T$ (here $T = 1$). The forward SDE
# $dx = f(t)\,x\,dt + g(t)\,dW$ is known through its marginal $x_t = m(t)\,x_0 + s(t)\,z$, $z \sim N(0, I)$:
# $m$ scales the signal, $s$ is the noise level. Drift and diffusion follow from them,
# $f = \frac{d}{dt}\log m$ and $g^2 = \frac{d}{dt}s^2 - 2 f s^2$
# ([theory §1.1](../docs/theory.md#s1-1)).

# %% [markdown] slideshow={"slide_type": "fragment"}
# **VP** (variance preserving, the continuous DDPM): a noise rate $\beta(t) = \beta_{\min} + t(\beta_{\max} -
# \beta_{\min})$ with $\beta_{\min} = 0.1$, $\beta_{\max} = 20$, and its integral $B(t) = \int_0^t \beta(u)\,du$.
# Then $m(t) = e^{-B(t)/2}$ and $s^2 = 1 - m^2$: DDPM's $\bar\alpha$ is $m^2 = e^{-B}$
# ([theory §1.2](../docs/theory.md#s1-2)).
# **VE** (variance exploding): $m = 1$ and $s(t) = \sigma(t) = \sigma_{\min}(\sigma_{\max}/\sigma_{\min})^t$
# ([theory §1.4](../docs/theory.md#s1-4)). At $t = T$ both are close to their **prior** $p_\infty$:
# $N(0, I)$ for VP, $N(0, \sigma_T^2 I)$ for VE, the law the samplers start from.

# %% slideshow={"slide_type": "-"}
vp, ve = VP(), VE()
ts = torch.linspace(0, 1, 201, dtype=torch.float64)
fig = plotting.base_figure("Signal scale m(t) and noise level s(t)", "diffusion time t", "scale", log_y=True)
for name, p, dash in [("VP", vp, None), ("VE", ve, "dot")]:
    fig.add_trace(plotting.line(ts, p.mean_scale(ts), name=f"{name}: m(t)", dash=dash))
    fig.add_trace(plotting.line(ts, p.std(ts), name=f"{name}: s(t)", dash=dash))
fig

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Exercise 00.q1 · The VP marginal m(t), s(t)** (write the code). Write `vp_marginal(t)` returning the pair
# $(m(t), s(t))$ of the VP process (β_min = 0.1, β_max = 20) for a float $t$: $x_t = m(t)\,x_0 + s(t)\,z$. Use the
# formulas of §1, not `vp.mean_scale`.
# `ex.q1.hint()` gives a hint (`ex.q1.hint(2)` the next), `ex.q1.solution()` the solution.

# %% tags=["solution"] slideshow={"slide_type": "-"}
# exercise 00.q1
### BEGIN SOLUTION
def vp_marginal(t):
    B = vp.beta_min * t + 0.5 * (vp.beta_max - vp.beta_min) * t ** 2
    return math.exp(-B / 2), math.sqrt(1 - math.exp(-B))
### END SOLUTION
ex.q1.check(vp_marginal)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. Targets with exact scores
# The **score** of the noised law $p_t$ is $\nabla_x \log p_t(x)$: the direction in which density grows. The
# 2-D toys are Gaussian mixtures (beads along the usual shapes); adding Gaussian noise to a mixture gives
# again a mixture, so its score is known exactly at every $t$ ([theory §3.2](../docs/theory.md#s3-2)).
# Below: the two-moons data, and the VP process pushing it towards $p_\infty = N(0, I)$.

# %% slideshow={"slide_type": "-"}
target = toy("moons")
x0 = target.sample(N_SAMPLES, generator=gen, device=device)
fig = plotting.base_figure("Forward process (VP)", "x₁", "x₂", width=820)
for i, t in enumerate([0.0, 0.1, 0.3, 1.0]):
    xt, _ = vp.marginal(x0, t, generator=gen)
    fig.add_trace(plotting.scatter2d(xt, name=f"t = {t}", color=plotting.PALETTE[i]))
fig

# %% [markdown] slideshow={"slide_type": "subslide"}
# The smallest mixture to practise on: two components in 2-D, weights $\pi_k$, means $\mu_k$ and covariances
# $\Sigma_k$ (a number times $I$). Noising keeps it a mixture, $p_t = \sum_k \pi_k N(m\mu_k, C_k)$ with
# $C_k = m^2\Sigma_k + s^2 I$, so its score is a weighted sum of Gaussian scores
# ([theory §3.2](../docs/theory.md#s3-2)). `mix.score(x, t, vp)` computes it.

# %% slideshow={"slide_type": "-"}
pi_mix = torch.tensor([0.3, 0.7], dtype=torch.float64)  # weights π_k
mu_mix = torch.tensor([[-2.0, 0.0], [1.5, 1.0]], dtype=torch.float64)  # means μ_k, one per row
var_mix = torch.tensor([0.25, 1.0], dtype=torch.float64)  # Σ_k = var_mix[k] I
mix = GaussianMixture(pi_mix, mu_mix, var_mix)

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Exercise 00.q2 · The exact score of a two-component mixture** (write the code). Write `mixture_score(x, t)`:
# the exact score $\nabla\ln p_t(x)$ under VP of the mixture `mix` above ($0.3\,N(\mu_1, 0.25\,I) +
# 0.7\,N(\mu_2, I)$, $\mu_1 = (-2, 0)$, $\mu_2 = (1.5, 1)$: the tensors `pi_mix`, `mu_mix`, `var_mix`), for a
# float64 batch `x` of shape (n, 2) and a float $t$. Use `vp.mean_scale(t)` and `vp.std(t)`, not `mix.score`.
# `ex.q2.hint()` gives a hint (`ex.q2.hint(2)` the next), `ex.q2.solution()` the solution.

# %% tags=["solution"] slideshow={"slide_type": "-"}
# exercise 00.q2
### BEGIN SOLUTION
def mixture_score(x, t):
    m, s = float(vp.mean_scale(t)), float(vp.std(t))
    C = m ** 2 * var_mix + s ** 2  # (2,): C_k = m² Σ_k + s² (times I)
    diff = x[:, None, :] - m * mu_mix  # (n, 2, 2): x - m μ_k
    d = x.shape[1]
    log_w = torch.log(pi_mix) - 0.5 * (diff ** 2).sum(-1) / C - 0.5 * d * torch.log(C)
    R = torch.softmax(log_w, dim=1)  # (n, 2): responsibilities R_k(x)
    return -(R[:, :, None] * diff / C[:, None]).sum(1)
### END SOLUTION
ex.q2.check(mixture_score)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. Running time backwards
# The **reverse-time SDE** $dx = [f\,x - g^2\,\nabla\log p_t(x)]\,dt + g\,d\bar W$, run from $t = T$ down to
# $t_{\min}$ and started from $p_T$, has the same marginals $p_t$ as the forward process
# ([theory §2.1](../docs/theory.md#s2-1)). Drop the noise and halve the score term: the **probability-flow
# ODE** $\frac{dx}{dt} = f\,x - \tfrac12 g^2\,\nabla\log p_t(x)$ is deterministic and has the *same* marginals
# ([theory §2.2](../docs/theory.md#s2-2)). In practice we start from $p_\infty \approx p_T$.

# %% [markdown] slideshow={"slide_type": "subslide"}
# A sampler takes $N$ steps on a **time grid** listed in the order it is visited,
# $t_0 = T > t_1 > \dots > t_N = t_{\min}$ (index 0 is the noisiest; $N + 1$ points;
# [theory §2.3](../docs/theory.md#s2-3)). The five samplers of `diffviz.sample` ([theory §2.4](../docs/theory.md#s2-4)):
# - **Euler–Maruyama** (`"em"`): one Euler step of the reverse SDE, with fresh noise — DDPM's ancestral sampler in spirit;
# - **PF-ODE Euler** (`"ode-euler"`) and **Heun** (`"heun"`): Euler's method (first order) and Heun's
#   trapezoid method (second order, two score calls per step) on the probability-flow ODE;
# - **DDIM** (`"ddim"`, $\eta = 0$): predict $\hat x_0$ and $\hat z$ from the score, re-noise to $t_{i+1}$ deterministically;
# - **predictor–corrector** (`"pc"`): an Euler–Maruyama step (predictor), then one Langevin step at $t_{i+1}$,
#   $x \leftarrow x + e\,\nabla\log p_{t_{i+1}}(x) + \sqrt{2e}\,\xi$ (corrector; $e$ set by a signal-to-noise ratio).

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Exercise 00.q3 · One Euler–Maruyama step** (write the code). Write `em_step(x, t, t_next, score, xi)`: one
# Euler–Maruyama step of the reverse SDE of `vp`, from time $t$ down to $t_{\text{next}} < t$, for a float64 batch
# `x`; `score(x, t)` is the score and `xi` the step's standard normal noise $\xi$ (the shape of `x`: use it, do not
# draw your own). `vp.f(t)` is the drift rate $f(t)$, `vp.g2(t)` is $g(t)^2$. The check runs your step on Gaussian
# data and compares the law after 5 and 20 steps with the exact one (§5).
# `ex.q3.hint()` gives a hint (`ex.q3.hint(2)` the next), `ex.q3.solution()` the solution.

# %% tags=["solution"] slideshow={"slide_type": "-"}
# exercise 00.q3
### BEGIN SOLUTION
def em_step(x, t, t_next, score, xi):
    h = t - t_next  # > 0: time runs backwards
    f, g2 = float(vp.f(t)), float(vp.g2(t))
    return x - h * (f * x - g2 * score(x, t)) + math.sqrt(g2 * h) * xi
### END SOLUTION
ex.q3.check(em_step)

# %% [markdown] slideshow={"slide_type": "subslide"}
# Every sampler has one signature: `sample(score, process, x_init, grid, method)`, where a score is any
# function `score(x, t)`. Here the exact score of the moons, Euler–Maruyama on a uniform grid of `N_STEPS`
# steps, and six snapshots of the particles on their way from $p_\infty$ to the data.

# %% slideshow={"slide_type": "-"}
exact_score = lambda x, t: target.score(x, t, vp)  # noqa: E731
x_init = vp.prior(2).sample(N_SAMPLES, generator=gen, device=device)
grid = schedules.uniform(vp, N_STEPS)
x_em, traj = sample(exact_score, vp, x_init, grid, "em", generator=gen, trajectory=True, max_points=6)
fig = plotting.base_figure("Reverse SDE (Euler–Maruyama), exact score", "x₁", "x₂", width=820)
for i, (t, xs) in enumerate(zip(traj.ts.tolist(), traj.xs)):
    fig.add_trace(plotting.scatter2d(xs, name=f"t = {t:.3f}", color=plotting.PALETTE[i % 8], opacity=0.35))
fig

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. A learned score
# Real data has no exact score, so a network $s_\theta(x, t)$ learns it by **denoising score matching**: for
# $x_t = m\,x_0 + s\,z$ the conditional score is $-z/s$, and regressing $s_\theta(x_t, t)$ on it over random
# $x_0, t, z$ has the true score $\nabla\log p_t$ as its minimiser ([theory §3.4](../docs/theory.md#s3-4)).
# `train_score` fits a small MLP that predicts $z$ (DDPM's $\varepsilon$-loss); models are cached on disk, so
# re-running is instant. Its error: $E\|s_\theta - \nabla\log p_t\|^2 / E\|\nabla\log p_t\|^2$ over $x_t \sim p_t$.

# %% slideshow={"slide_type": "-"}
learned = train_score(target, vp, steps=TRAIN_STEPS, seed=SEED, device=device, progress=False)
rel_err = relative_score_error(learned, exact_score, vp, target, generator=gen)
pd.DataFrame({"relative score error": [rel_err]}, index=["learned MLP"]).style.format("{:.4f}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# The same Euler–Maruyama run from the same start, with the learned score in place of the exact one.

# %% slideshow={"slide_type": "-"}
x_learned = sample(learned, vp, x_init, grid, "em", generator=gen)
fig = plotting.base_figure(f"Samples: exact vs learned score (rel. error {rel_err:.3f})", "x₁", "x₂", width=820)
fig.add_trace(plotting.scatter2d(x0, name="data", color="lightgray"))
fig.add_trace(plotting.scatter2d(x_em, name="exact score", color=plotting.PALETTE[0]))
fig.add_trace(plotting.scatter2d(x_learned, name="learned score", color=plotting.PALETTE[1]))
fig

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. How good is each sampler? Exactly.
# Take Gaussian data $N(0, \mathrm{diag}\,\lambda)$ with eigenvalues $\lambda = (0.25, 1, 4)$ and the exact
# score. Then each step of each sampler is an affine map $x' = a\,x + \sqrt{q}\,\xi$ per eigendirection, so the
# output is Gaussian and its variance follows the exact recursion $V \leftarrow a^2 V + q$
# ([theory §4.3](../docs/theory.md#s4-3)). The KL between Gaussians is a closed form
# ([theory §4.1](../docs/theory.md#s4-1)): the sampler's error for any grid and $N$, with no Monte Carlo.

# %% slideshow={"slide_type": "-"}
lam = torch.tensor([0.25, 1.0, 4.0], dtype=torch.float64)
gauss = Gaussian(torch.zeros(3, dtype=torch.float64), lam)
kl = {m: [theory.sampler_kl(vp, schedules.uniform(vp, n), lam, method=m, init="prior") for n in STEP_COUNTS]
      for m in SAMPLERS}
fig = plotting.base_figure("Exact KL(data ‖ output), VP, uniform grid, start p_∞", "steps N", "KL",
                           log_x=True, log_y=True)
for i, (m, kls) in enumerate(kl.items()):
    fig.add_trace(plotting.line(STEP_COUNTS, kls, name=SAMPLERS[m], color=plotting.PALETTE[i], mode="lines+markers"))
fig

# %% [markdown] slideshow={"slide_type": "subslide"}
# The first-order samplers' KL falls like $N^{-2}$ (their variance error is $O(1/N)$ and the KL is quadratic in
# it), Heun's like $N^{-4}$. At large $N$ curves flatten on errors no step count removes: the run stops at
# $t_{\min} > 0$ and starts from $p_\infty$, not $p_T$; the corrector's step size is set by its signal-to-noise
# ratio, not by $N$. Heun costs two score evaluations per step: compare at equal cost too.

# %% slideshow={"slide_type": "-"}
pd.DataFrame({"code name": list(SAMPLERS), f"exact KL at N = {STEP_COUNTS[-1]}": [kl[m][-1] for m in SAMPLERS]},
             index=list(SAMPLERS.values())).style.format({f"exact KL at N = {STEP_COUNTS[-1]}": "{:.2e}"})

# %% [markdown] slideshow={"slide_type": "subslide"}
# The simulation agrees: 20 000 samples through 10 Heun steps from $p_\infty$, their variance per
# eigendirection ± its standard error $v\sqrt{2/n}$ ([theory §9.1](../docs/theory.md#s9-1)), beside the exact one.

# %% slideshow={"slide_type": "-"}
n_check = 20_000
g10 = schedules.uniform(vp, 10)
x = sample(lambda x, t: gauss.score(x, t, vp), vp, vp.prior(3).sample(n_check, generator=gen, dtype=torch.float64),
           g10, "heun", generator=gen)
_, var_exact = theory.sampler_moments(vp, g10, lam, method="heun", init="prior")
var_sim = x.var(0)
se = var_exact * (2 / n_check) ** 0.5
pd.DataFrame({"λ": lam.tolist(), "exact variance": var_exact.tolist(),
              "simulated ± SE": [f"{v:.4f} ± {e:.4f}" for v, e in zip(var_sim.tolist(), se.tolist())]}
             ).style.format({"λ": "{:g}", "exact variance": "{:.4f}"}).hide(axis="index")

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Exercise 00.q4 · Simulate 10 Euler–Maruyama steps** (statistical). The same test for Euler–Maruyama: run
# `n_check` = 20 000 samples from $p_\infty$ through 10 Euler–Maruyama steps on the grid `g10` with the exact score
# of `gauss`, and pass the output, shape (n, 3), as `x_em`. The check compares its variance per eigendirection with
# the exact `theory.sampler_moments(vp, g10, lam, method="em")`, within 5 standard errors computed from your
# sample size, and says how many SE off it is.
# `ex.q4.hint()` gives a hint (`ex.q4.hint(2)` the next), `ex.q4.solution()` the solution.

# %% tags=["solution"] slideshow={"slide_type": "-"}
# exercise 00.q4
### BEGIN SOLUTION
x_init_em = vp.prior(3).sample(n_check, generator=gen, dtype=torch.float64)
x_em = sample(lambda x, t: gauss.score(x, t, vp), vp, x_init_em, g10, "em", generator=gen)
### END SOLUTION
ex.q4.check(x_em)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Take-aways
# - A forward process is its marginal $x_t = m(t)\,x_0 + s(t)\,z$; VP uses $m = e^{-B/2}$ with $B = \int\beta$, VE keeps $m = 1$ and grows $\sigma(t)$.
# - Sampling runs the reverse-time SDE or the probability-flow ODE from $p_\infty$ at $t = T$ down to the data; both need only the score.
# - The five samplers are discretisations of those two equations on a grid $t_0 = T > \dots > t_N$; they differ in order and in noise.
# - Denoising score matching turns "learn the score" into a regression on the added noise.
# - On Gaussian data every sampler is a linear map, so its error is exact: Heun's KL falls far faster than the first-order samplers'.

# %% tags=["figures", "remove-cell"] slideshow={"slide_type": "skip"}
from diffviz.record import record  # noqa: E402

record("tour_learned_score_rel_error", rel_err)
for m in SAMPLERS:
    record(f"tour_exact_kl_{m}_N{STEP_COUNTS[-1]}", kl[m][-1])
record("tour_heun10_var_exact", [float(v) for v in var_exact])
record("tour_heun10_var_sim", [float(v) for v in var_sim])
# NBVAL_CHECK_OUTPUT
print("exact variances after 10 Heun steps:", [round(float(v), 3) for v in var_exact])
