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
# # 4 · VP/VE phase transitions in high dimension
#
# Aranguri, Biroli, Mézard and Vanden-Eijnden (2025, arXiv 2501.00988) sample a two-mode Gaussian mixture in
# dimension $d$ with the probability-flow ODE of a stochastic interpolant and find a **dichotomy**: with
# uniform steps, the VP-like interpolant recovers the spread inside each mode ($\sigma^2$, a *low-level*
# feature) but loses the mode weights ($p$, a *high-level* feature), because the mode is decided at
# $\tau \sim 1/\sqrt d$; the VE-like interpolant gets $p$ right but collapses the modes, because $\sigma^2$
# is resolved only in the last $1/\sqrt d$ of the path. Both need $\Theta(\sqrt d)$ steps; **time-dilated**
# schedules that give each critical window half of the time need $\Theta_d(1)$ steps (paper).
# Below, with the exact posterior (nothing is trained): the dichotomy at $d = 10^3$ (FAST) or $10^4$; the
# steps needed vs $d$; the mode decision along the ODE; the Curie–Weiss model with the authors'
# product-Bernoulli velocity. Simulated features are *estimated* (± standard errors); the expected features
# of the Euler sampler at any $d$ are *exact* up to quadrature through a one-dimensional reduction
# (*derived*, checked against the simulations).

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
DEVICE = "auto"  # auto: CUDA when present, else CPU (a GPU also runs d of 10^6 below)
N_SAMPLES = 500  # particles per run
D_REF = 10_000  # dimension of the steps sweep
STEPS = [5, 10, 20, 40, 80, 160, 320]  # Euler step counts of the sweep
REF_STEPS = 20  # step count of the recorded features
D_LIST = [100, 400, 1600, 10_000]  # dimensions of the simulated steps-needed search
N_NEEDED = 1000  # particles per run of the steps-needed search
D_EXACT = [100, 400, 1600, 10_000, 100_000, 1_000_000]  # dimensions of the exact (reduced) search
TOL_P = 0.05  # |p_hat - p| tolerance
TOL_SIGMA2 = 0.2  # |sigma2_hat - sigma2| / sigma2 tolerance
P = 0.8  # weight of the mode +mu
SIGMA2 = 0.25  # variance inside each mode
KAPPA = 3.0  # dilation window: eps is KAPPA / sqrt(d)
CW_D = 10_000  # Curie–Weiss dimension
CW_BETA = 2.0  # Curie–Weiss inverse temperature
CW_H = 0.7  # Curie–Weiss field (energy h S / d)
CW_STEPS = 100  # Euler steps of the dilated VE sampler for Curie–Weiss
D_GPU = 1_000_000  # run only on CUDA
FIGURES_PATH = None  # where record() writes the key figures (set by the notebook runner)

# %%
import diffviz
from diffviz.dashboards import phase_transitions as dash_pt
from diffviz.experiments import phase_transitions as pt
from diffviz.record import record, set_path

diffviz.interactive_threads(1)
device = diffviz.resolve_device(DEVICE)
set_path(FIGURES_PATH)
if FAST:
    N_SAMPLES, D_REF, STEPS = min(N_SAMPLES, 300), min(D_REF, 1000), [s for s in STEPS if s <= 80]
    D_LIST, N_NEEDED, CW_D = [d for d in D_LIST if d <= 1600], min(N_NEEDED, 300), min(CW_D, 1000)
print(f"device {device}; d = {D_REF}, n = {N_SAMPLES}, steps {STEPS}")

# %% [markdown]
# ## 1. The model, the interpolants and the exact velocity
# Data $x_1 = s\,\mu + \sigma\eta$ with $s = \pm 1$, $P(s = +1) = p = 0.8$, $\eta \sim N(0, I_d)$,
# $\mu = (1, \dots, 1)$ so $|\mu|^2 = d$, and $\sigma^2 = 1/4$. The interpolant
# $I_\tau = \alpha(\tau) z + \beta(\tau) x_1$ runs from noise ($\tau = 0$) to data ($\tau = 1$) with
# $\alpha = c(1 - \tau)$, $\beta = \tau$: $c = 1$ is **VP**-like, $c = \sqrt d$ is **VE**-like.
# Sampling solves $dX/du = \tau'(u)\,[\dot\alpha\,E[z|X] + \dot\beta\,E[x_1|X]]$ from $X_0 \sim N(0, c^2 I)$
# with $N$ Euler steps uniform in $u$; the schedule is the map $u \mapsto \tau$. For this mixture the posterior
# means are exact (theory.md §7): with $h = \tfrac12\ln\frac{p}{1-p}$, $D = \alpha^2 + \sigma^2\beta^2$,
#
# $$E[s|x] = \tanh\!\Big(h + \frac{\beta\,\mu\cdot x}{D}\Big),\quad
# E[x_1|x] = \frac{\beta\sigma^2}{D}x + \frac{\alpha^2}{D}\mu\,E[s|x],\quad
# E[z|x] = \frac{\alpha}{D}\big(x - \beta\mu\,E[s|x]\big).$$
#
# **Where the features are decided.** The mode enters only through $\beta\,\mu\cdot x/D$. For VP,
# $\mu\cdot x \approx \beta d\,s + \sqrt d\,g$ and $D = O(1)$, so the sign is settled once $\beta \sim 1/\sqrt d$:
# a uniform first step $\Delta\tau = 1/N \gg 1/\sqrt d$ jumps over that window. For VE, $D \approx d(1-\tau)^2$
# and the mode is decided at $\tau = O(1)$, but the spread $\sigma^2$ only matters once $d(1-\tau)^2 \lesssim
# \sigma^2$, i.e. in the last $1/\sqrt d$ of the path, which a uniform last step jumps over (paper).
# **Dilations** ($\varepsilon = \kappa/\sqrt d$, $\kappa = 3$): VP spends $u \in [0, \tfrac12]$ on
# $\tau \in [0, \varepsilon]$, VE spends $u \in [\tfrac12, 1]$ on $\tau \in [1 - \varepsilon, 1]$ (paper).
#
# **Features** (estimated): $\hat p$ = fraction of samples with $\mu\cdot X > 0$ (target $p$);
# $\hat\sigma^2$ = mean of $|X - \mathrm{sign}(\mu\cdot X)\mu|^2/d$ (target $\sigma^2$).
#
# **Exact reference for the Euler sampler** (derived): the velocity is $A(u)X + B(u, \mu\cdot X)\,\mu$, so under
# Euler the mode coordinate $M = \mu\cdot X/d$ follows a scalar recursion started at $M_0 = c\,g/\sqrt d$,
# $g \sim N(0,1)$, and the orthogonal part is only rescaled. The expected $\hat p$ and $\hat\sigma^2$ of the
# simulation are then 1-D Gaussian integrals, at any $d$ (`pt.euler_features_exact`).
# (Each Euler step moves $\tau$ by $\tau(u_{k+1}) - \tau(u_k)$, so the kink of the dilation at $u = 1/2$ is crossed exactly for any step count; see `diffviz.samplers.interpolant_ode`.)

# %% [markdown]
# ## 2. The dichotomy: features vs number of steps
# Four schedules, the same initial noise for all (common random numbers). Markers: simulation ± 2 standard
# errors; dotted lines: the exact expectation of the Euler sampler.

# %%
sweep = pt.features_vs_steps(D_REF, N_SAMPLES, STEPS, P, SIGMA2, KAPPA, seed=SEED, device=device)
record("pt_sweep_d", D_REF)
record("pt_sweep_n", N_SAMPLES)
record("pt_sweep_steps", STEPS)
for key, rows in sweep["schedules"].items():
    name = key.replace("/", "_")
    for field in ("p_hat", "p_se", "sigma2_hat", "sigma2_se", "p_exact", "sigma2_exact", "sigma2_perp_hat",
                  "sigma2_perp_se", "sigma2_perp_exact"):
        record(f"pt_{name}_{field}", rows[field])
dash_pt.features_vs_steps_figure(sweep)

# %% [markdown]
# At the reference step count: uniform VP puts too many samples in the heavier mode ($\hat p > p$), uniform VE
# shrinks each mode to (almost) a point ($\hat\sigma^2 \ll \sigma^2$); the dilated schedules keep both.
# What is left for them is the ordinary $O(1/N)$ Euler bias, the same at every $d$.

# %%
ref = {}
for kind, dilation in pt.SCHEDULES:
    r = pt.run_gm(D_REF, N_SAMPLES, REF_STEPS, kind, dilation, P, SIGMA2, KAPPA, seed=SEED, device=device)
    ex = pt.euler_features_exact(D_REF, REF_STEPS, kind, dilation, P, SIGMA2, KAPPA)
    name = f"{kind}_{dilation}"
    ref[pt.schedule_label(kind, dilation)] = {"p̂": r["p_hat"], "± SE": r["p_se"], "p (Euler, exact)": ex["p_hat"],
                                              "σ̂²": r["sigma2_hat"], "σ² (Euler, exact)": ex["sigma2_hat"]}
    record(f"pt_ref_{name}_p_hat", r["p_hat"])
    record(f"pt_ref_{name}_p_se", r["p_se"])
    record(f"pt_ref_{name}_sigma2_hat", r["sigma2_hat"])
record("pt_ref_steps", REF_STEPS)
print(f"d = {D_REF}, n = {N_SAMPLES}, {REF_STEPS} Euler steps; targets p = {P}, σ² = {SIGMA2}")
dash_pt.feature_table(ref).round(3)

# %% [markdown]
# ## 3. Steps needed vs dimension
# The smallest step count (doubling from 6) with $|\hat p - p| \le 0.05$ and $|\hat\sigma^2 - \sigma^2| \le
# 0.2\,\sigma^2$. Markers: simulation; dotted steps: the exact Euler features (no sampling noise), continued to
# $d = 10^6$. Uniform schedules grow like $\sqrt d$ (grey guide), dilated ones stay flat (paper: $\Theta(\sqrt d)$
# vs $\Theta_d(1)$). For VP the gap only opens beyond the FAST sizes: at $d \le 1600$ the mode window
# $\tau \lesssim 1/\sqrt d$ is still wide enough for the ~50 steps that $\sigma^2$ needs anyway. The simulated
# markers carry the sampling noise of $\hat p$ (a factor 2 either way near the threshold).

# %%
step_grid = [6 * 2 ** k for k in range(13)]  # 6 ... 24576
needed_sim = pt.steps_needed_all(D_LIST, TOL_P, TOL_SIGMA2, steps=step_grid, method="simulate", n=N_NEEDED,
                                 p=P, sigma2=SIGMA2, kappa=KAPPA, seed=SEED, device=device)
needed_exact = pt.steps_needed_all(D_EXACT, TOL_P, TOL_SIGMA2, steps=step_grid, method="exact", p=P, sigma2=SIGMA2,
                                   kappa=KAPPA)
record("pt_needed_d", D_LIST)
record("pt_needed_exact_d", D_EXACT)
for key in needed_sim:
    record(f"pt_needed_{key.replace('/', '_')}", needed_sim[key]["steps_needed"])
    record(f"pt_needed_exact_{key.replace('/', '_')}", needed_exact[key]["steps_needed"])
dash_pt.steps_needed_figure(needed_sim, needed_exact)

# %%
table = {pt.schedule_label(*k.split("/")): dict(zip([f"d={d}" for d in D_EXACT], v["steps_needed"]))
         for k, v in needed_exact.items()}
print("exact Euler steps needed:")
dash_pt.feature_table(table)

# %% [markdown]
# ## 4. The mode decision along the ODE
# $M_u = \mu\cdot X_u/d$ for a few particles of the dilated VE sampler (the paper's Figure 2, top, at a smaller $d$).
# Each particle picks its mode during the first half ($\tau$ from 0 to $1 - \varepsilon$); the second half,
# stretched over the last $\varepsilon$ of $\tau$, only shapes the spread inside the mode.

# %%
traj = pt.run_gm(D_REF, N_SAMPLES, 40, "ve", "dilated", P, SIGMA2, KAPPA, seed=SEED, device=device,
                 record_magnetization=True, n_traj=12)
record("pt_decided_at_half_ve_dilated", traj["decided_at_half"])
print(f"fraction of the {N_SAMPLES} particles already in their final mode at u = 1/2: {traj['decided_at_half']:.3f}")
dash_pt.magnetization_figure(traj)

# %% [markdown]
# ## 5. Curie–Weiss
# Spins $x \in \{\pm1\}^d$ with law $\propto \exp(\frac{\beta}{2d}S^2 + \frac{h}{d}S)$, $S = \sum_i x_i$,
# $\beta = 2$, $h = 0.7$; features $P(M > 0)$ and $|M|$, $M = S/d$. The exact values come from the law of $S$
# (exact). The noised law has no closed-form posterior; the authors' velocity treats the data as a mixture of
# two **product-Bernoulli** laws (paper's approximation): a mode $s = \pm1$ with weight $(1 \pm \tanh(hm))/2$
# (the ratio $e^{2hm}$ of the two peaks of the CW law, derived), then independent spins of mean $s\,m$, $m$ the
# mean-field magnetization ($m = \tanh(\beta m)$). Given the mode, each coordinate's posterior mean is
# $E[x_{1i}|x, s] = \tanh(\beta x_i/\alpha^2 + s\,\mathrm{atanh}\,m)$ and the mode posterior sums the
# per-coordinate log-likelihoods (`CurieWeiss.posterior_interpolant`). The approximation misses the enhanced
# fluctuations of $M$ within a mode (sd $\sqrt{\chi/d}$ with $\chi = (1-m^2)/(1-\beta(1-m^2))$ instead of
# $\sqrt{(1-m^2)/d}$), visible in the sd$|M|$ column.

# %%
cw = pt.cw_comparison(CW_D, N_SAMPLES, [("ve", "dilated", CW_STEPS), ("ve", "dilated", 20), ("ve", "none", 20),
                                        ("vp", "none", 20)], CW_BETA, CW_H, KAPPA, seed=SEED, device=device)
first = next(iter(cw["runs"].values()))
record("pt_cw_d", CW_D)
record("pt_cw_exact_p_pos", first["exact"]["p_pos"])
record("pt_cw_exact_abs_m", first["exact"]["abs_m"])
record("pt_cw_exact_abs_m_sd", first["exact"]["abs_m_sd"])
for key, r in cw["runs"].items():
    name = key.replace("/", "_")
    for field in ("p_pos", "p_pos_se", "abs_m", "abs_m_se", "abs_m_sd"):
        record(f"pt_cw_{name}_{field}", r["sampler"][field])
    record(f"pt_cw_{name}_spin_dev", r["spin_dev"])
print(f"d = {CW_D}, n = {N_SAMPLES}: m (mean field) = {cw['m_mean_field']:.4f}, mode weight of the "
      f"approximation = {cw['p_plus']:.4f}")
dash_pt.feature_table(cw["rows"]).round(4)

# %% [markdown]
# $M$ is measured on $\mathrm{sign}(X)$, the nearest spin configuration (as `diffviz.metrics.cw_features`); the
# last column says how far the raw output is from $\pm1$. With 100 steps, dilated VE matches the exact
# $P(M>0)$ within its standard error and $E|M|$ up to the Euler bias, with every spin at $\pm1$. At 20 steps the
# dichotomy reappears: uniform VE keeps $P(M>0)$ but stops short of $\pm1$ (each coordinate near its posterior
# mean) and its signs all align, $|M| \approx 1$ instead of $m$ (low-level feature lost), while uniform VP
# ends on $\pm1$ spins with the mode weight tilted to the heavier mode (high-level feature lost; mild at
# $d = 10^3$, strong at $d = 10^4$).
#
# ## 6. Larger $d$ on a GPU
# The full simulation is $O(n\,d\,N)$; with `DEVICE = "cuda"` the next cell runs the four schedules at
# $d = 10^6$ (the paper's Figure 2 size; 200 particles, 40 steps). On a CPU it is skipped: the exact Euler
# features above already show $d = 10^6$.

# %%
if device.type == "cuda":
    for kind, dilation in pt.SCHEDULES:
        r = pt.run_gm(D_GPU, 200, 40, kind, dilation, P, SIGMA2, KAPPA, seed=SEED, device=device)
        ex = pt.euler_features_exact(D_GPU, 40, kind, dilation, P, SIGMA2, KAPPA)
        record(f"pt_gpu_{kind}_{dilation}_p_hat", r["p_hat"])
        record(f"pt_gpu_{kind}_{dilation}_sigma2_hat", r["sigma2_hat"])
        print(f"{pt.schedule_label(kind, dilation):12s} d = {D_GPU}: p̂ = {r['p_hat']:.3f} ± {r['p_se']:.3f} "
              f"(Euler exact {ex['p_hat']:.3f}), σ̂² = {r['sigma2_hat']:.4f} (Euler exact {ex['sigma2_hat']:.4f})")
else:
    print("no CUDA device: skipped (set DEVICE = 'cuda' on a GPU machine)")

# %% [markdown]
# A rounded check, independent of the random seed: the exact Euler features at $d = 1000$ with 20 steps.

# %%
check = {pt.schedule_label(k, dl): pt.euler_features_exact(1000, 20, k, dl, P, SIGMA2, KAPPA)
         for k, dl in pt.SCHEDULES}
# NBVAL_CHECK_OUTPUT
print({name: (round(e["p_hat"], 2), round(e["sigma2_hat"], 2)) for name, e in check.items()})

# %% [markdown]
# ## 7. Dashboard
# Pick a schedule, the number of Euler steps and $d$: the histogram of the mode coordinate $\mu\cdot X/d$ against
# the exact target (bars vs black line), the within-mode coordinates against $N(0, \sigma^2)$, and the feature
# errors (dotted: exact Euler expectation over step counts; markers: this simulation ± 2 SE). The status line shows
# $\hat p$, $\hat\sigma^2$ beside the targets $p$, $\sigma^2$. (300 particles; $d = 10^3$ updates in tens of ms on
# one CPU thread, $d = 10^4$ in about half a second.)

# %%
dashboard = dash_pt.PhaseTransitionDashboard(n=300, p=P, sigma2=SIGMA2, kappa=KAPPA, device=device)
latency = []
for n_steps in (21, 20):  # two updates as a user would make them (the first one above also builds caches)
    dashboard.set(n_steps=n_steps)
    latency.append(1000 * dashboard.last_update_s)
record("pt_dashboard_update_ms", max(latency))
dashboard
