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
# # 0 · A tour of diffviz
#
# A score-based diffusion model noises data with a forward SDE $dx = f(t)\,x\,dt + g(t)\,dW$ and generates
# by running time backwards, which needs the **score** $\nabla \log p_t(x)$ of every noised marginal.
# This tour shows the pieces the other notebooks stand on:
#
# 1. the forward processes (VP, VE) through their marginal $x_t = m(t)\,x_0 + s(t)\,z$;
# 2. exact scores of Gaussian-mixture targets, and a learned score beside them;
# 3. the reverse-time samplers on a time grid, with trajectories;
# 4. how close each sampler gets, measured **exactly** on Gaussian data.
#
# Everything marked *exact* is a closed form computed in float64 (`diffviz.theory`), everything marked
# *estimated* comes from samples.

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
DEVICE = "auto"  # "auto" picks CUDA when present
N_SAMPLES = 2000
N_STEPS = 100
TRAIN_STEPS = 1500
FIGURES_PATH = None  # where record() writes the key figures (set by `diffviz run`)

# %%
import torch

import diffviz
from diffviz import VE, VP, plotting, sample, schedules, theory
from diffviz.record import record, set_path
from diffviz.targets import Gaussian, toy

diffviz.interactive_threads(1)
device = diffviz.resolve_device(DEVICE)
set_path(FIGURES_PATH)
if FAST:
    N_SAMPLES, TRAIN_STEPS = min(N_SAMPLES, 1000), min(TRAIN_STEPS, 600)
gen = diffviz.make_generator(SEED, device)
print(f"diffviz {diffviz.__version__} on {device}")

# %% [markdown]
# ## 1. Forward processes
# A process is its marginal: **VP** shrinks the signal, $m(t) = e^{-B(t)/2}$, while keeping the variance
# near one, $s^2 = 1 - m^2$; **VE** keeps the signal, $m = 1$, and adds noise of growing size
# $s(t) = \sigma(t) = \sigma_{\min}(\sigma_{\max}/\sigma_{\min})^t$. The drift and diffusion follow from the
# marginal: $f = \frac{d}{dt}\log m$, $g^2 = \frac{d}{dt}s^2 - 2 f s^2$ (the test suite checks this by autograd).

# %%
vp, ve = VP(), VE()
ts = torch.linspace(0, 1, 201, dtype=torch.float64)
fig = plotting.base_figure("Signal and noise scales", "t", "scale", log_y=True)
for name, p, dash in [("VP", vp, None), ("VE", ve, "dot")]:
    fig.add_trace(plotting.line(ts, p.mean_scale(ts), name=f"{name}: m(t)", dash=dash))
    fig.add_trace(plotting.line(ts, p.std(ts), name=f"{name}: s(t)", dash=dash))
fig

# %% [markdown]
# ## 2. Targets with exact scores
# The 2-D toys are Gaussian mixtures (beads along the usual shapes), so the noised law $p_t$ is again a
# mixture and its score is exact. Below: data, and the forward process pushing it to noise.

# %%
target = toy("moons")
x0 = target.sample(N_SAMPLES, generator=gen, device=device)
fig = plotting.base_figure("Forward process (VP)", "x₁", "x₂", width=820)
for i, t in enumerate([0.0, 0.1, 0.3, 1.0]):
    xt, _ = vp.marginal(x0, t, generator=gen)
    fig.add_trace(plotting.scatter2d(xt, name=f"t = {t}", color=plotting.PALETTE[i]))
fig

# %% [markdown]
# ## 3. Reverse-time sampling with the exact score
# `diffviz.sample(score, process, x_init, grid, method)` runs one of five samplers on a decreasing time grid
# (N steps = N + 1 times). A score is any function `score(x, t)`: here the exact one of the target.

# %%
exact_score = lambda x, t: target.score(x, t, vp)  # noqa: E731
x_init = vp.prior(2).sample(N_SAMPLES, generator=gen, device=device)
grid = schedules.uniform(vp, N_STEPS)
x_em, traj = sample(exact_score, vp, x_init, grid, "em", generator=gen, trajectory=True, max_points=6)
fig = plotting.base_figure("Reverse SDE (Euler–Maruyama), exact score", "x₁", "x₂", width=820)
for i, (t, xs) in enumerate(zip(traj.ts.tolist(), traj.xs)):
    fig.add_trace(plotting.scatter2d(xs, name=f"t = {t:.3f}", color=plotting.PALETTE[i % 8], opacity=0.35))
fig

# %% [markdown]
# ## 4. A learned score
# `diffviz.train.train_score` fits a small time-conditioned MLP by denoising score matching; trained models
# are cached on disk (keyed by everything that defines them), so re-running this cell is instant.
# We compare it with the exact score by the relative error $E\|s_\theta - \nabla\log p_t\|^2 / E\|\nabla \log p_t\|^2$.

# %%
from diffviz.metrics import relative_score_error  # noqa: E402
from diffviz.train import train_score  # noqa: E402

learned = train_score(target, vp, steps=TRAIN_STEPS, seed=SEED, device=device, progress=False)
rel_err = relative_score_error(learned, exact_score, vp, target, generator=gen)
record("tour_learned_score_rel_error", rel_err)
x_learned = sample(learned, vp, x_init, grid, "em", generator=gen)
fig = plotting.base_figure(f"Samples: exact vs learned score (rel. error {rel_err:.3f})", "x₁", "x₂", width=820)
fig.add_trace(plotting.scatter2d(x0, name="data", color="lightgray"))
fig.add_trace(plotting.scatter2d(x_em, name="exact score", color=plotting.PALETTE[0]))
fig.add_trace(plotting.scatter2d(x_learned, name="learned score", color=plotting.PALETTE[1]))
fig

# %% [markdown]
# ## 5. How good is each sampler? Exactly.
# On Gaussian data $N(\mu, \Sigma)$ with the exact score every sampler is a linear map, so its output is
# Gaussian with a covariance given by an exact recursion (`theory.sampler_moments`). That gives the KL of the
# sampler's output for any grid and step count, and the simulation agrees with it.

# %%
lam = torch.tensor([0.25, 1.0, 4.0], dtype=torch.float64)
gauss = Gaussian(torch.zeros(3, dtype=torch.float64), lam)
methods = ["em", "ode-euler", "heun", "ddim", "pc"]
step_counts = [5, 10, 20, 40, 80] if FAST else [5, 10, 20, 40, 80, 160, 320]
fig = plotting.base_figure("Exact KL(data ‖ sampler output), VP, uniform grid", "steps N", "KL", log_x=True, log_y=True)
for i, m in enumerate(methods):
    kls = [theory.sampler_kl(vp, schedules.uniform(vp, n), lam, method=m, init="prior") for n in step_counts]
    fig.add_trace(plotting.line(step_counts, kls, name=m, color=plotting.PALETTE[i], mode="lines+markers"))
    record(f"tour_exact_kl_{m}_N{step_counts[-1]}", kls[-1])
fig

# %% [markdown]
# The simulation agrees: 20 000 samples through Heun with 10 steps, empirical variances next to the exact ones.

# %%
n_check = 20_000
g10 = schedules.uniform(vp, 10)
x = sample(lambda x, t: gauss.score(x, t, vp), vp, vp.prior(3).sample(n_check, generator=gen, dtype=torch.float64),
           g10, "heun", generator=gen)
_, var_exact = theory.sampler_moments(vp, g10, lam, method="heun", init="prior")
var_sim = x.var(0)
record("tour_heun10_var_exact", [float(v) for v in var_exact])
record("tour_heun10_var_sim", [float(v) for v in var_sim])
# NBVAL_CHECK_OUTPUT
print("exact variances after 10 Heun steps:", [round(float(v), 3) for v in var_exact])
