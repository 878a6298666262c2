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
# # 3 · Scheduling on a Gaussian source
#
# A sampler with a budget of $N$ steps must choose *where* to put them: which time grid? For a Gaussian
# source the question has an exact answer, because with the exact score a DDIM step is a linear map and the
# law after $N$ steps is a closed form.
#
# **You will learn**
# - to compute the exact KL after $N$ DDIM steps on a Gaussian source from the angles $\psi_i$ of the grid;
# - to explain why that KL falls like $N^{-2}$ and what sets the constant;
# - to build the tangent-law grid and compare it with the uniform, quadratic, cosine and Karras grids;
# - to tell DDIM's under-dispersion apart from the PF-ODE Euler and Heun samplers, which can over-disperse;
# - to choose a grid for a covariance with several eigenvalues.
#
# **Prerequisites** DDPM once; notebook 0 (the VP process, time grids, DDIM and the PF-ODE samplers).
#
# **Time** reading ≈ 25 min; run on 2 CPU cores (`diffviz run`): FAST ≈ 19 s, full ≈ 22 s.
#
# **Paper** Q. Sun, H. V. Poor, W. Zhang, *An Elementary Approach to Scheduling in Generative Diffusion
# Models*, arXiv:2601.13602, 2026 (v1–v2; v3 is titled *A Gaussian Perspective for Distributional Discrepancy
# in Generative Diffusion Models*).

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
DEVICE = "auto"
LAM = 4.0  # variance λ of the Gaussian source N(0, λ)
STEPS = None  # step counts N of the exact curves (None: 2 ... 128, 7 values FAST; 2 ... 512, 16 values full)
N_SIM = 20_000  # samples per simulation (§3)
EIGVALS = [0.01, 1.0, 100.0]  # eigenvalues λ_j of the covariance in §5
FIGURES_PATH = None  # where the key figures are written (set by `diffviz run`)

# %% slideshow={"slide_type": "skip"}
import numpy as np
import pandas as pd
import torch

import diffviz
from diffviz import plotting, theory
from diffviz.dashboards.schedules import SchedulesDashboard
from diffviz.experiments import schedules as E
from diffviz.record import set_path
from diffviz.workshop import exercises

default = diffviz.run_defaults(FAST)
STEPS = default(STEPS, fast=[2, 4, 8, 16, 32, 64, 128],
                full=[2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 512])

diffviz.interactive_threads(1)
device = diffviz.resolve_device(DEVICE)
set_path(FIGURES_PATH)
gen = diffviz.make_generator(SEED, device)
process = E.sun_process()
ex = exercises("03")  # the workshop track: ex.q1.check(answer), ex.q1.hint(), ex.q1.solution()
print(f"VP process, grid from t = {process.T} to {process.t_min}; sigma from "
      f"{float(process.sigma(process.T)):.1f} down to {float(process.sigma(process.t_min)):.1e}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. DDIM on a Gaussian source, exactly
# The data is $N(0, \lambda)$ along one eigendirection; the process is VP with $\bar\alpha(t) = m(t)^2$, and
# $\sigma = s/m = \sqrt{(1-\bar\alpha)/\bar\alpha}$ is the noise level of the rescaled state $x_t/m = x_0 + \sigma z$.
# A grid $t_0 = T > \dots > t_N = t_{\min}$ (index 0 the noisiest) gives angles $\psi_i = \arctan(\sigma_i/\sqrt\lambda)$,
# decreasing along the run; write $\Delta\psi_i = \psi_{i-1} - \psi_i > 0$ for step $i$.

# %% [markdown] slideshow={"slide_type": "fragment"}
# Started from the exact $p_T$ with the exact score, DDIM ($\eta = 0$) outputs $N(0, \hat\lambda)$ with
# $$\hat\lambda = \lambda \prod_{i=1}^N \cos^2\Delta\psi_i,\qquad
# \mathrm{KL}(\text{data}\,\|\,\text{output}) = \tfrac12(\rho - 1 - \ln\rho),\quad \rho = \lambda/\hat\lambda = \prod_i \sec^2\Delta\psi_i$$
# ([theory §7.1](../docs/theory.md#s7-1); *exact*, from the paper). The only error left is the discretisation.

# %% [markdown] slideshow={"slide_type": "subslide"}
# Five grids ([theory §2.3](../docs/theory.md#s2-3)): **uniform** in $t$; **quadratic** in $t$ (steps shrink
# towards the data); **cosine** ($\arctan\sigma_i$ evenly spaced, the cosine schedule of improved DDPM);
# **Karras** (EDM: $\sigma_i^{1/7}$ evenly spaced); and the **tangent law** for $\lambda$: the $\psi_i$ evenly
# spaced, $\sigma_i = \sqrt\lambda\tan\psi_i$ (§2 shows why it is best). Their exact KL against $N$:

# %% slideshow={"slide_type": "-"}
curves = E.kl_curves(LAM, STEPS, process=process)
fig = plotting.base_figure(f"Exact KL after N DDIM steps, λ = {LAM}", "steps N", "KL(data ‖ output)",
                           log_x=True, log_y=True, width=620)
for i, (name, kls) in enumerate(curves.items()):
    fig.add_trace(plotting.line(STEPS, kls, name=name, color=plotting.PALETTE[i], mode="lines+markers"))
ref = curves["tangent"][-1] * (STEPS[-1] / np.array(STEPS, dtype=float)) ** 2
fig.add_trace(plotting.line(STEPS, ref, name="∝ N⁻²", color="gray", dash="dash"))
fig

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. The $N^{-2}$ law and the tangent law
# For small steps $\sec^2\Delta\psi \approx 1 + \Delta\psi^2$, so $\rho - 1 \approx \sum_i \Delta\psi_i^2$ and
# $\mathrm{KL} \approx \frac14(\sum_i\Delta\psi_i^2)^2$. With $u = i/N$ and $\Delta\psi_i \approx \psi'(u)/N$, an
# Euler–Maclaurin expansion gives $\mathrm{KL} = \frac{1}{4N^2}\big(\int_0^1\psi'(u)^2du\big)^2 + O(N^{-3})$
# ([theory §7.2](../docs/theory.md#s7-2)): a constant that depends on the grid's *shape* alone.

# %% [markdown] slideshow={"slide_type": "fragment"}
# By Cauchy–Schwarz $\int_0^1\psi'^2 \ge (\psi_0 - \psi_N)^2$, with equality when $\psi$ is linear in $u$: the
# tangent law is optimal, with constant $\frac14(\psi_0 - \psi_N)^4$ ([theory §7.3](../docs/theory.md#s7-3)).
# The table sets $N^2\,\mathrm{KL}$ at the largest $N$ beside each grid's limit.

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Exercise 03.q1 · The N⁻² constant of the tangent law** (closed form). Write `tangent_constant(lam)`: the limit
# of $N^2\,\mathrm{KL}$ for the tangent law, $\frac14(\psi_0 - \psi_N)^4$, as a function of the eigenvalue
# $\lambda$, for this notebook's `process` (its grids run from $t_0 = T$ to $t_N = t_{\min}$). It is checked at
# several $\lambda$; the table below shows its value at $\lambda$ = `LAM`.
# `ex.q1.hint()` gives a hint (`ex.q1.hint(2)` the next), `ex.q1.solution()` the solution.

# %% tags=["solution"] slideshow={"slide_type": "-"}
# exercise 03.q1
### BEGIN SOLUTION
def tangent_constant(lam):
    sigma_0, sigma_N = float(process.sigma(process.T)), float(process.sigma(process.t_min))
    psi_0, psi_N = np.arctan(sigma_0 / np.sqrt(lam)), np.arctan(sigma_N / np.sqrt(lam))
    return 0.25 * (psi_0 - psi_N) ** 4
### END SOLUTION
ex.q1.check(tangent_constant)

# %% slideshow={"slide_type": "-"}
consts = {name: E.asymptotic_constant(name, LAM, process) for name in E.GRIDS}
n2kl = {name: STEPS[-1] ** 2 * float(curves[name][-1]) for name in E.GRIDS}
table_n2 = pd.DataFrame({f"N² KL at N = {STEPS[-1]}": n2kl, "limit (∫ψ′² du)² / 4": consts}).rename_axis("grid")
table_n2.style.format("{:.4f}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Exercise 03.q2 · The tangent-law grid** (write the code). Write `tangent_grid(n, lam)`: the $N$-step
# tangent-law grid of `process` for the eigenvalue $\lambda$, as a float64 tensor of times
# $t_0 = T > t_1 > \dots > t_N = t_{\min}$ ($N$ steps, so $N + 1$ points), built from $\psi_i$ evenly spaced between
# $\psi_0 = \arctan(\sigma(T)/\sqrt\lambda)$ and $\psi_N = \arctan(\sigma(t_{\min})/\sqrt\lambda)$. Use
# `process.sigma` and `process.t_of_sigma` (σ to time), not `schedules.tangent`. It is checked at several $N$ and
# $\lambda$.
# `ex.q2.hint()` gives a hint (`ex.q2.hint(2)` the next), `ex.q2.solution()` the solution.

# %% tags=["solution"] slideshow={"slide_type": "-"}
# exercise 03.q2
### BEGIN SOLUTION
def tangent_grid(n, lam):
    r = lam ** 0.5
    psi_0, psi_N = np.arctan(float(process.sigma(process.T)) / r), np.arctan(float(process.sigma(process.t_min)) / r)
    psi = torch.linspace(psi_0, psi_N, n + 1, dtype=torch.float64)  # N steps: N + 1 points, noisiest first
    return process.t_of_sigma(r * torch.tan(psi))
### END SOLUTION
ex.q2.check(tangent_grid)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. Simulation agrees with the closed form
# DDIM with the exact score on `N_SIM` samples from the exact $p_T$, uniform grid: the sample variance
# ± its standard error $\hat\lambda\sqrt{2/n}$ ([theory §9.1](../docs/theory.md#s9-1)) against
# $\lambda\prod\cos^2\Delta\psi_i$. Every factor $\cos^2\Delta\psi_i \le 1$, so **DDIM always under-disperses**:
# $\hat\lambda \le \lambda$ on every grid ([theory §4.4](../docs/theory.md#s4-4)).

# %% slideshow={"slide_type": "-"}
sims = {n: E.simulate("uniform", n, LAM, N_SIM, process=process, generator=gen) for n in [4, 8, 16]}
se = {n: r["var_exact"] * (2 / N_SIM) ** 0.5 for n, r in sims.items()}
pd.DataFrame({"exact λ̂": [r["var_exact"] for r in sims.values()],
              "simulated ± SE": [f"{r['var_sim']:.4f} ± {se[n]:.4f}" for n, r in sims.items()],
              "λ̂ / λ": [r["var_exact"] / LAM for r in sims.values()]},
             index=pd.Index(list(sims), name="steps N")).style.format({"exact λ̂": "{:.4f}", "λ̂ / λ": "{:.3f}"})

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. Not every deterministic sampler under-disperses
# Under-dispersion is a property of DDIM's step, not of determinism. The PF-ODE Euler and Heun samplers of
# notebook 0 follow the same probability-flow ODE ([theory §2.2](../docs/theory.md#s2-2)), yet their
# output variance can *exceed* $\lambda$. Below, $\hat\lambda/\lambda$ for the three samplers, exact (variance
# recursion, [theory §4.3](../docs/theory.md#s4-3)), from the exact $p_T$ on the uniform grid; over-dispersion in red.

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Exercise 03.q3 · Does PF-ODE Euler under-disperse too?** (predict, then check). DDIM always under-disperses.
# Predict, before the table below: do 5 PF-ODE Euler steps on the uniform grid, started from the exact $p_T$,
# **over**- or **under**-disperse Gaussian data $N(0, 0.01)$? Set `prediction` to "over" or "under".
# `ex.q3.hint()` gives a hint (`ex.q3.hint(2)` the next), `ex.q3.solution()` the solution.

# %% tags=["solution"] slideshow={"slide_type": "-"}
# exercise 03.q3
### BEGIN SOLUTION
prediction = "over"
### END SOLUTION
ex.q3.check(prediction)

# %% slideshow={"slide_type": "-"}
names = {"ddim": "DDIM", "ode-euler": "PF-ODE Euler", "heun": "Heun"}
ns = [2, 5, 10, 20, 50]


def dispersion(method, lam, n):
    """λ̂/λ: exact output variance over the data variance, N = n steps of the uniform grid from the exact p_T."""
    grid = E.make_grid("uniform", process, n, lam)
    _, var = theory.sampler_moments(process, grid, [lam], method=method, init="exact")
    return float(var[0]) / lam


ratio = pd.DataFrame({(f"{lam:g}", name): [dispersion(m, lam, n) for n in ns]
                      for lam in [0.01, LAM] for m, name in names.items()},
                     index=[f"N = {n}" for n in ns]).T.rename_axis(["λ", "sampler"])
ratio.style.format("{:.3g}").map(lambda v: "color: firebrick; font-weight: bold" if v > 1 else "")

# %% [markdown] slideshow={"slide_type": "fragment"}
# For $\lambda = 0.01$, five PF-ODE Euler steps give $\hat\lambda/\lambda \approx 3.4$ (3.5 on notebook 0's VP,
# which stops at $t_{\min} = 10^{-3}$), and Heun still over-disperses at $N = 50$. The ODE contracts this
# direction mostly in the last stretch before the data, where $p_t$'s variance falls to $\lambda$. PF-ODE Euler
# reads the contraction rate at the noisy end of each step and shrinks too little; Heun's second evaluation
# does not repair that for large steps. DDIM shrinks by $\cos\Delta\psi_i$ and never too little
# ([theory §4.4](../docs/theory.md#s4-4)). With $\lambda = 4$ all three under-disperse: one eigenvalue is no proof.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. Several eigenvalues
# With eigenvalues $\lambda_j$ (weights $w_j$) the KL is a sum over directions, and the same argument applies
# to $\Phi(\sigma) = \int_0^\sigma\sqrt{F}$, $F(\sigma) = \sum_j w_j\,\lambda_j/(\lambda_j + \sigma^2)^2$; for one
# eigenvalue $\Phi = \arctan(\sigma/\sqrt\lambda) = \psi$. The **$\Phi$-law** spaces $\Phi(\sigma_i)$ evenly
# ([theory §7.4](../docs/theory.md#s7-4); *derived* for diffviz, not checked against the paper body).
# For `EIGVALS` a tangent grid tuned to the mean eigenvalue can lose to generic grids; the $\Phi$-law beats all.

# %% slideshow={"slide_type": "-"}
multi_steps = [4, 8, 16, 32, 64]
table = E.multi_eigen_table(EIGVALS, multi_steps, process=process)
fig = plotting.base_figure(f"Summed exact KL, eigenvalues {EIGVALS}", "steps N", "KL(data ‖ output)",
                           log_x=True, log_y=True, width=620)
for i, (name, kls) in enumerate(table.items()):
    fig.add_trace(plotting.line(multi_steps, kls, name=name, color=plotting.PALETTE[i], mode="lines+markers"))
fig

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6. Explore
# Move the eigenvalue $\lambda$, the step count $N$ and the grid: the exact KL curves, the simulated KL beside the
# exact one, the grid's noise levels $\sigma_i$ and DDIM's output law update. Try $\lambda = 1$: the cosine grid
# *is* the tangent law there.

# %% slideshow={"slide_type": "-"}
dash = SchedulesDashboard(lam=LAM, n_steps=32)
dash

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Exercise 03.q4 · How many DDIM steps on the uniform grid?** (dashboard task). On the dashboard of §6 set λ = 1
# and the **uniform** grid, and move N to the smallest step count whose exact KL is below 0.01. Set `answer` to
# the dashboard itself; within one step counts.
# `ex.q4.hint()` gives a hint (`ex.q4.hint(2)` the next), `ex.q4.solution()` the solution.

# %% tags=["solution"] slideshow={"slide_type": "-"}
# exercise 03.q4
### BEGIN SOLUTION
dash.set(lam=1.0, schedule="uniform", n_steps=20)
answer = dash
### END SOLUTION
ex.q4.check(answer)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Take-aways
# - On a Gaussian source DDIM with the exact score is exact algebra: $\hat\lambda = \lambda\prod\cos^2\Delta\psi_i$ and a closed-form KL.
# - The KL falls like $N^{-2}$ with a constant $\frac14(\int\psi'^2)^2$ set by the grid's shape; the tangent law (evenly spaced $\psi$) minimises it.
# - DDIM always under-disperses; the PF-ODE Euler and Heun samplers can over-disperse (λ = 0.01, five Euler steps: λ̂/λ ≈ 3.4).
# - A grid tuned to one eigenvalue can be poor for a spread spectrum; the $\Phi$-law weighs all eigenvalues.

# %% tags=["figures", "remove-cell"] slideshow={"slide_type": "skip"}
from diffviz.record import record  # noqa: E402

n_ref = 32
kl_ref = {name: E.exact_kl(name, n_ref, LAM, process) for name in E.GRIDS}  # = curves at N = 32 when listed
for name in E.GRIDS:
    record(f"kl_N{n_ref}_{name}", kl_ref[name])
    record(f"asymptotic_constant_{name}", consts[name])
    record(f"N2_kl_N{STEPS[-1]}_{name}", n2kl[name])
for n, r in sims.items():
    record(f"sim_uniform_N{n}_var_exact", r["var_exact"])
    record(f"sim_uniform_N{n}_var_sim", r["var_sim"])
    record(f"sim_uniform_N{n}_var_se", se[n])
for name, kls in table.items():
    record(f"multi_kl_N32_{name.split(' ')[0]}{'_phi' if 'Φ' in name else ''}{'_mean' if 'mean' in name else ''}",
           float(kls[multi_steps.index(32)]))
record("dashboard_kl_exact", dash.numbers["kl_exact"])
# NBVAL_CHECK_OUTPUT
print(f"N = {n_ref}: tangent KL {kl_ref['tangent']:.3e} < uniform KL {kl_ref['uniform']:.3e}")
