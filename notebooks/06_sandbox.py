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
# # 6 · Sandbox: your data, every knob
#
# Each earlier notebook answers one paper's question on one prepared target. Here you ask your own: what does a
# VE sampler with 8 steps do to *your* three-blob distribution? Draw the data as Gaussian beads, pick the
# process, the time grid, the sampler, the start and the score, and read exact numbers where a closed form
# exists and estimates with their standard errors where it does not. A button prints the few lines of code
# that reproduce what you see.
#
# **You will learn**
# - to build a 2-D target as a mixture of Gaussian beads and explain why its noised score is exact;
# - to run one scenario end to end (target, process, grid, sampler, start, score) and read its numbers;
# - to tell an exact number (closed form) from a Monte Carlo or nearest-neighbour estimate with its standard error;
# - to predict how the start, the step count and a score error ε move the samples, and check it on the dashboard;
# - to copy a dashboard state as code and hand out a scenario as a JSON file.
#
# **Prerequisites** DDPM once; notebook 0 (processes, samplers, exact scores). Notebooks 1–4 help but are not
# needed.
#
# **Time** reading ≈ 15 min, then as long as you like on the dashboard; run on 2 CPU cores (`diffviz run`):
# FAST ≈ 20 s (13 s after the kernel has started), full ≈ 21 s.
#
# **Background** no single paper: the tools of notebooks 0–4 (Song et al., *Score-Based Generative Modeling
# through Stochastic Differential Equations*, ICLR 2021, arXiv:2011.13456) on data you choose.

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
DEVICE = "cpu"  # the sandbox is 2-D: it runs on the CPU
N_SAMPLES = None  # samples per scenario (None: 1000 FAST, 4000 full)
N_STEPS = 20  # sampler steps N of §2 and §3
FIGURES_PATH = None  # where the key figures are written (set by `diffviz run`)

# %% slideshow={"slide_type": "skip"}
import tempfile
from pathlib import Path

import pandas as pd

import diffviz
from diffviz import VE, VP, plotting, sandbox, schedules
from diffviz.dashboards.sandbox import SandboxDashboard
from diffviz.record import set_path

default = diffviz.run_defaults(FAST)
N_SAMPLES = default(N_SAMPLES, fast=1000, full=4000)

diffviz.interactive_threads(1)
set_path(FIGURES_PATH)
print(f"diffviz {diffviz.__version__}")


def table(results: dict) -> pd.DataFrame:
    """One row per scenario: the numbers of `sandbox.run`, value ± standard error in one column."""
    rows = {}
    for name, n in results.items():
        rows[name] = {
            "KL(p_T ‖ q)": f"{n['kl_start']:.3g}" + ("" if n["kl_start_exact"] else f" ± {n['kl_start_se']:.2g}"),
            "exact?": "exact" if n["kl_start_exact"] else "Monte Carlo",
            "KL(p̂ ‖ p_data)": f"{n['kl_samples']:.3f} ± {n['kl_samples_se']:.3f}",
            "score evaluations": n["nfe"],
        }
    return pd.DataFrame(rows).T


# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. A target you can draw
# A **bead** is a small Gaussian $N(\mu_k, w^2 I)$ in the plane: centre $\mu_k$, width $w$. A drawn target is a
# mixture $p_{\rm data} = \sum_k \pi_k N(\mu_k, w^2 I)$ with weights $\pi_k \ge 0$ summing to one. The forward
# process keeps it a mixture: with $x_t = m(t)\,x_0 + s(t)\,z$,
# $p_t = \sum_k \pi_k N\big(m\,\mu_k, (m^2 w^2 + s^2) I\big)$, so the score $\nabla_x \log p_t$ and the density
# are exact at every time ([theory §3.2](../docs/theory.md#s3-2)). The toys of notebook 1 (moons, rings, ...)
# are bead mixtures too; a Student-t with ν degrees of freedom gives heavy tails
# ([theory §3.3](../docs/theory.md#s3-3)).

# %% slideshow={"slide_type": "-"}
target = sandbox.beads([[-1.5, -0.8], [1.5, -0.8], [0.0, 1.6]], weights=[1.0, 1.0, 1.0], width=0.4)
x0 = target.sample(N_SAMPLES, generator=SEED)
fig = plotting.base_figure("Three beads: samples of p_data", "x₁", "x₂", width=420, height=420)
fig.add_trace(plotting.scatter2d(x0, name="x₀ ~ p_data"))
fig.update_yaxes(scaleanchor="x")
fig

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. One scenario end to end
# A **scenario** fixes six things: the target, the process (VP, sub-VP or VE, with its horizon T or σ_T), the
# time grid $t_0 = T > \dots > t_N$, the sampler, the start q (the law of $x_T$ the sampler starts from) and the
# score $s_\theta(x, t) = \nabla_x\log p_t(x) + \varepsilon e$: the exact score plus a constant error of size
# ε in the direction $e = (1, 1)/\sqrt2$. `sandbox.run` draws from q, runs the sampler and returns the numbers.

# %% slideshow={"slide_type": "-"}
process = VP(T=1.0)
grid = schedules.make_grid("uniform", process, N_STEPS)
result = sandbox.run(target, process, grid, sampler="heun", start="prior", eps=0.0, n_samples=N_SAMPLES, seed=SEED)
table({"VP, Heun, prior start": result["numbers"]})

# %% [markdown] slideshow={"slide_type": "subslide"}
# The three numbers, and which kind each is:
# - **KL(p_T ‖ q)**: what the start costs. It is 0 for the *oracle* start q = p_T; it is a closed form (exact)
#   when p_T and q are both Gaussian (one bead, [theory §4.1](../docs/theory.md#s4-1)); otherwise a Monte Carlo
#   mean of $\log p_T(x) - \log\nu(x)$ over $x \sim p_T$, ± its standard error
#   ([theory §9.1](../docs/theory.md#s9-1)).
# - **KL(p̂ ‖ p_data)**: how far the samples' law p̂ is from the data. We know $\log p_{\rm data}$ exactly but not
#   $\log\hat p$, so the entropy of p̂ is a nearest-neighbour estimate ([theory §9.2](../docs/theory.md#s9-2));
#   the ± treats the per-sample terms as independent, and the estimate can dip slightly below 0.
# - **score evaluations**: calls of $s_\theta$ per sample, what a trained network would cost (Heun pays two per
#   step, the other samplers one).

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. Three questions you can now ask
# *Does the start matter?* With a short VP horizon, $p_T$ is still far from the prior $N(0, I)$. A start fitted
# to free samples of $p_T$ can close the gap: a single Gaussian helps little here ($p_T$ still has three modes), a
# mixture of Gaussians fitted by expectation–maximisation ("GMM") closes most of it, the oracle $q = p_T$ all of it.

# %% slideshow={"slide_type": "-"}
short = VP(T=0.3)
short_grid = schedules.make_grid("uniform", short, N_STEPS)
starts = {start: sandbox.run(target, short, short_grid, sampler="heun", start=start, n_samples=N_SAMPLES,
                             seed=SEED)["numbers"] for start in sandbox.STARTS}
table({f"VP T = 0.3, start {sandbox.STARTS[k]}": v for k, v in starts.items()})

# %% [markdown] slideshow={"slide_type": "subslide"}
# *What do few VE steps do?* VE with σ_T = 10 and 8 Euler–Maruyama steps against Heun on the Karras grid; and
# *what does a score error do?* A constant error ε e pushes every step along e, so the samples shift along e
# (for data $N(0, I)$ under VP the shift is exactly $\tfrac12\varepsilon\,(B(T) - B(t_{\min}))$, `tests/test_sandbox.py`).

# %% slideshow={"slide_type": "-"}
ve = VE(sigma_T=10.0)
runs = {
    "VE, 8 Euler–Maruyama steps, uniform": sandbox.run(target, ve, schedules.make_grid("uniform", ve, 8),
                                                       sampler="em", n_samples=N_SAMPLES, seed=SEED),
    "VE, 8 Heun steps, Karras": sandbox.run(target, ve, schedules.make_grid("karras", ve, 8), sampler="heun",
                                            n_samples=N_SAMPLES, seed=SEED),
    "VP, 20 Heun steps, ε = 0.1": sandbox.run(target, process, grid, sampler="heun", eps=0.1, n_samples=N_SAMPLES,
                                              seed=SEED),
}
table({k: r["numbers"] for k, r in runs.items()})

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. The sandbox
# Click on the left plot to add a bead, click on a bead to remove it; switch the click mode to *select* to pick
# a bead and set its weight. Start from a toy or the Student-t instead, or press *clear* and draw from scratch.
# The right plot is the exact noised density $p_t$ at the time slider, with the tracked particles at the
# nearest grid time. The read-out says which numbers are exact and which are estimated.
# *Predict first*: with the Karras grid and 5 steps, which sampler is closest to the data? Then check.

# %% slideshow={"slide_type": "-"}
dash = SandboxDashboard(n_samples=N_SAMPLES)
dash

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Copy as code.** The *copy as code* button (or `dash.to_code()`) prints the plain diffviz calls that
# reproduce the current state; running them gives the dashboard's numbers (same seed). *save* / *load* (or
# `dash.save(path)`, `dash.load(path)`) keep a scenario in a small JSON file: a lecturer can hand one out.
# A bad file is refused with the field and the allowed values.

# %% slideshow={"slide_type": "-"}
dash.set(process="ve", sigma_T=10.0, sampler="em", n_steps=8)
print(dash.to_code())
scenario_file = dash.save(Path(tempfile.mkdtemp()) / "three_blobs_ve8.json")
print(scenario_file.read_text(encoding="utf-8"))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Take-aways
# - A mixture of Gaussian beads has an exact noised score and density at every time, so any drawing can be
#   sampled with no learning error at all, and ε adds a controlled one.
# - A scenario is six choices (target, process, grid, sampler, start, score); `sandbox.run` turns them into
#   numbers, and the dashboard's code button prints that call.
# - KL(p_T ‖ q) is exact for the oracle and for Gaussian pairs, otherwise a Monte Carlo mean ± standard error;
#   the samples' KL to the data is always an estimate.
# - A short horizon makes the start matter; few steps make the grid and the sampler matter; a constant score
#   error moves the samples along its direction.

# %% tags=["figures", "remove-cell"] slideshow={"slide_type": "skip"}
import contextlib  # noqa: E402
import io  # noqa: E402

from diffviz.record import record  # noqa: E402

record("default_kl_samples", result["numbers"]["kl_samples"])
record("default_kl_samples_se", result["numbers"]["kl_samples_se"])
record("default_nfe", result["numbers"]["nfe"])
for k, n in starts.items():
    record(f"short_kl_start_{k}", n["kl_start"])
    record(f"short_kl_start_se_{k}", n["kl_start_se"])
    record(f"short_kl_start_exact_{k}", n["kl_start_exact"])
record("eps_mean_along_e", runs["VP, 20 Heun steps, ε = 0.1"]["numbers"]["mean_along_e"])
record("eps_mean_along_e_se", runs["VP, 20 Heun steps, ε = 0.1"]["numbers"]["mean_along_e_se"])
record("eps0_mean_along_e", result["numbers"]["mean_along_e"])
record("dashboard_n_beads", dash.numbers["n_beads"])
record("dashboard_nfe", dash.numbers["nfe"])
ns = {}
with contextlib.redirect_stdout(io.StringIO()):
    exec(dash.to_code(), ns)  # noqa: S102
record("dashboard_code_matches", ns["result"]["numbers"] == sandbox.run_scenario(dash.scenario)["numbers"])
record("dashboard_loaded_matches", sandbox.load_scenario(scenario_file) == dash.scenario)
# NBVAL_CHECK_OUTPUT
print(f"oracle start: KL(p_T ‖ q) = {starts['oracle']['kl_start']:g}; dashboard beads: {dash.numbers['n_beads']}")
