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
# # 3 · Scheduling on a Gaussian source (Sun, Poor & Zhang)
#
# Which time grid should a sampler with a budget of $N$ steps use? For a **Gaussian source** the question has
# an exact answer. With the exact score, a deterministic DDIM step ($\eta = 0$) is a linear map along each
# eigendirection of the covariance, so the law after $N$ steps is Gaussian and its KL to the data is a
# closed form (*paper*, checked here against an independent recursion and against simulation):
#
# $$\psi_i = \arctan\frac{\sigma_i}{\sqrt{\lambda}},\quad \sigma_i^2 = \frac{1-\bar\alpha_i}{\bar\alpha_i},\qquad
# \hat\lambda = \lambda \prod_i \cos^2(\psi_i - \psi_{i-1}),\qquad
# \mathrm{KL} = \tfrac12(\rho - 1 - \ln\rho),\ \rho = \prod_i \sec^2(\psi_i - \psi_{i-1}).$$
#
# Deterministic sampling always **under-disperses** ($\hat\lambda \le \lambda$). An Euler–Maclaurin expansion gives
# $\mathrm{KL} = \frac{1}{4N^2}\big(\int_0^1 \psi'(u)^2\,du\big)^2 + O(N^{-3})$: the KL falls like $N^{-2}$ and
# the best grid makes $\psi$ linear in $u = i/N$, the **tangent law**
# $\sigma_i = \sqrt\lambda \tan\big((1 - i/N)\arctan(\sigma_{\max}/\sqrt\lambda)\big)$.
# With several eigenvalues the same argument applied to $\Phi(\sigma) = \int_0^\sigma\sqrt{F}$,
# $F = \sum_j w_j \lambda_j/(\lambda_j+\sigma^2)^2$, gives a grid that is *derived* for diffviz (not confirmed
# against the paper body).

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
DEVICE = "auto"
LAM = 4.0  # eigenvalue of the Gaussian source N(0, LAM)
N_SIM = 20_000  # samples per simulation
EIGVALS = [0.01, 1.0, 100.0]  # several eigenvalues
FIGURES_PATH = None

# %%
import numpy as np
import torch

import diffviz
from diffviz import plotting
from diffviz.dashboards.schedules import SchedulesDashboard
from diffviz.experiments import schedules as E
from diffviz.record import record, set_path

diffviz.interactive_threads(1)
device = diffviz.resolve_device(DEVICE)
set_path(FIGURES_PATH)
gen = diffviz.make_generator(SEED, device)
process = E.sun_process()
STEPS = [2, 4, 8, 16, 32, 64, 128] if FAST else [2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 512]
print(f"VP process, grid from t = {process.T} to {process.t_min}; sigma from "
      f"{float(process.sigma(process.T)):.1f} down to {float(process.sigma(process.t_min)):.1e}")

# %% [markdown]
# ## 1. Exact KL against the number of steps
# Five grids: uniform in $t$, quadratic in $t$, cosine (uniform in $\arctan\sigma$), Karras/EDM ($\rho = 7$),
# and the tangent law for $\lambda$. All start from the exact $p_T$, so the only error is discretization.

# %%
curves = E.kl_curves(LAM, STEPS, process=process)
fig = plotting.base_figure(f"Exact KL after N DDIM steps, λ = {LAM}", "steps N", "KL(data ‖ output)",
                           log_x=True, log_y=True, width=620)
for i, (name, kls) in enumerate(curves.items()):
    fig.add_trace(plotting.line(STEPS, kls, name=name, color=plotting.PALETTE[i], mode="lines+markers"))
ref = curves["tangent"][-1] * (STEPS[-1] / np.array(STEPS, dtype=float)) ** 2
fig.add_trace(plotting.line(STEPS, ref, name="∝ N⁻²", color="gray", dash="dash"))
n_ref = 32
for name in curves:
    record(f"kl_N{n_ref}_{name}", float(curves[name][STEPS.index(n_ref)]))
fig

# %% [markdown]
# ## 2. The $N^{-2}$ law and its constant
# $N^2\,\mathrm{KL}$ settles to $\frac14(\int_0^1\psi'^2du)^2$, a property of the grid's shape alone. The tangent law
# has the smallest constant, $\frac14(\psi_{\max}-\psi_{\min})^4$.

# %%
rows = []
for name in E.GRIDS:
    const = E.asymptotic_constant(name, LAM, process)
    n2kl = STEPS[-1] ** 2 * float(curves[name][-1])
    rows.append((name, n2kl, const))
    record(f"asymptotic_constant_{name}", const)
    record(f"N2_kl_N{STEPS[-1]}_{name}", n2kl)
print(f"{'grid':>10}  {'N² KL at N=' + str(STEPS[-1]):>16}  {'limit (∫ψ′²)²/4':>16}")
for name, n2kl, const in rows:
    print(f"{name:>10}  {n2kl:16.4f}  {const:16.4f}")

# %% [markdown]
# ## 3. Simulation agrees with the closed form
# DDIM on $N$ steps with 20 000 samples (exact score): the sample variance sits within its standard error of
# $\lambda\prod\cos^2\Delta\psi_i$.

# %%
sim_rows = []
for n in [4, 8, 16]:
    r = E.simulate("uniform", n, LAM, N_SIM, process=process, generator=gen)
    se = r["var_exact"] * (2 / N_SIM) ** 0.5
    sim_rows.append((n, r["var_exact"], r["var_sim"], se))
    record(f"sim_uniform_N{n}_var_exact", r["var_exact"])
    record(f"sim_uniform_N{n}_var_sim", r["var_sim"])
    record(f"sim_uniform_N{n}_var_se", se)
print(f"{'N':>4} {'exact var':>10} {'simulated':>10} {'std err':>8}")
for n, ve, vs, se in sim_rows:
    print(f"{n:4d} {ve:10.4f} {vs:10.4f} {se:8.4f}")

# %% [markdown]
# ## 4. Several eigenvalues
# A covariance with eigenvalues $\{0.01, 1, 100\}$: a tangent grid tuned to one eigenvalue (here the mean) can be
# far worse than generic grids, while the $\Phi$-law that weighs all eigenvalues (*derived*) beats all of them.

# %%
multi_steps = [4, 8, 16, 32, 64]
table = E.multi_eigen_table(EIGVALS, multi_steps, process=process)
fig = plotting.base_figure(f"Summed exact KL, eigenvalues {EIGVALS}", "steps N", "KL", log_x=True, log_y=True, width=620)
for i, (name, kls) in enumerate(table.items()):
    fig.add_trace(plotting.line(multi_steps, kls, name=name, color=plotting.PALETTE[i], mode="lines+markers"))
    record(f"multi_kl_N32_{name.split(' ')[0]}{'_phi' if 'Φ' in name else ''}{'_mean' if 'mean' in name else ''}",
           float(kls[multi_steps.index(32)]))
fig

# %% [markdown]
# ## 5. Explore
# Move the eigenvalue, the step count and the schedule: the exact curves, the simulated KL (red circle) and the
# grid's noise levels update. The cosine grid *is* the tangent law for $\lambda = 1$.

# %%
dash = SchedulesDashboard(lam=LAM, n_steps=n_ref)
record("dashboard_kl_exact", dash.numbers["kl_exact"])
dash

# %%
# NBVAL_CHECK_OUTPUT
print(f"N = {n_ref}: tangent KL {curves['tangent'][STEPS.index(n_ref)]:.3e} < uniform KL "
      f"{curves['uniform'][STEPS.index(n_ref)]:.3e}")
