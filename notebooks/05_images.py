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
# # 5 · Images: a small score model on 8×8 digits
#
# Notebook 1 asked how long the forward diffusion should run, on toys where every density is known. Here the same
# question on real data: handwritten digits, a tiny score network, a short and a long horizon, and a fitted start
# for the short one. Apart from the counts of score evaluations, every number here is *estimated*, with its
# standard error.
#
# **You will learn**
# - describe what the VP forward process leaves of an image at a short and at a long horizon;
# - fit starts $q_\phi$ (a Gaussian, a Gaussian mixture) to free samples of $p_T$ and compare them in bits per
#   dimension;
# - explain why a deterministic sampler started from the prior at a short horizon gets the mean pixel wrong;
# - measure a model's bits per dimension on test digits with the probability-flow ODE, and read a paired
#   difference with its standard error.
#
# **Prerequisites** — DDPM seen once; notebook 00 (the VP process, the samplers, DDIM) and notebook 01 (the bound
# $\mathrm{KL}(p_T\|q) + G(s_\theta, T)$, fitted starts, the probability-flow likelihood).
#
# **Time** — reading about 20 minutes; run with `diffviz run` on 2 CPU cores: FAST ≈ 25 s (model cache warm;
# about 32 s cold), full ≈ 15 min.
#
# **Paper** — this notebook applies notebook 01's study to images. It builds on:
# - G. Franzese, S. Rossi, L. Yang, A. Finamore, D. Rossi, M. Filippone, P. Michiardi, "How Much Is Enough? A
#   Study on Diffusion Times in Score-Based Generative Models", *Entropy* 25(4):633, 2023; arXiv:2206.05173
#   (notebook 01);
# - Y. Song, J. Sohl-Dickstein, D. P. Kingma, A. Kumar, S. Ermon, B. Poole, "Score-Based Generative Modeling
#   through Stochastic Differential Equations", ICLR 2021; arXiv:2011.13456 (the VP SDE, the probability-flow
#   ODE and its likelihood);
# - J. Song, C. Meng, S. Ermon, "Denoising Diffusion Implicit Models", ICLR 2021; arXiv:2010.02502 (DDIM);
# - data: the digits data set of scikit-learn (`sklearn.datasets.load_digits`), a copy of the test part of the UCI
#   "Optical Recognition of Handwritten Digits" data set (E. Alpaydin, C. Kaynak, 1998).

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
FAST = True  # quick run (CI, Binder); False for lecture quality. Picks the defaults of the sizes set to None
SEED = 0
DEVICE = "auto"  # auto: CUDA when present, else CPU
T_SHORT = 0.3  # short horizon
T_LONG = 1.0  # long horizon
TRAIN_STEPS = None  # optimiser steps per network (None: 400 FAST, 4000 full: minutes on a GPU, ~10-20 min per network on 1 CPU thread)
BASE = None  # channels of the U-Net (None: 16 FAST, 32 full; about 0.2 M parameters at 32)
BATCH = None  # training batch (None: 64 FAST, 128 full)
N_FIT = None  # free samples x_T to fit the starts (None: 4000 FAST, 20000 full)
GMM_COMPONENTS = None  # components of the GMM start (None: 4 FAST, 8 full)
N_SAMPLES = None  # samples drawn per (horizon, start) (None: 16 FAST, 32 full)
STEP_SIZE = None  # fixed sampler step size, T / STEP_SIZE steps (None: 0.02 FAST, 0.005 full)
N_TEST = None  # test digits for bits/dim (None: 64 FAST, 297 = all full)
NLL_STEPS = None  # Heun steps of the probability-flow likelihood (None: 30 FAST, 100 full)
N_PROBES = None  # Hutchinson probes per step (None: 1 FAST, 2 full)
FIGURES_PATH = None  # file for the key figures the tests check (set by the notebook runner)

# %% slideshow={"slide_type": "skip"}
import pandas as pd
import torch

import diffviz
from diffviz import plotting
from diffviz.experiments import images as I

default = diffviz.run_defaults(FAST)
TRAIN_STEPS = default(TRAIN_STEPS, fast=400, full=4000)
BASE = default(BASE, fast=16, full=32)
BATCH = default(BATCH, fast=64, full=128)
N_FIT = default(N_FIT, fast=4000, full=20_000)
GMM_COMPONENTS = default(GMM_COMPONENTS, fast=4, full=8)
N_SAMPLES = default(N_SAMPLES, fast=16, full=32)
STEP_SIZE = default(STEP_SIZE, fast=0.02, full=0.005)
N_TEST = default(N_TEST, fast=64, full=297)
NLL_STEPS = default(NLL_STEPS, fast=30, full=100)
N_PROBES = default(N_PROBES, fast=1, full=2)

diffviz.interactive_threads(1)
device = diffviz.resolve_device(DEVICE)
HORIZONS = (T_SHORT, T_LONG)
train, test = I.digits("train"), I.digits("test")


def pm(value, se, digits=3):
    """One table entry 'value ± standard error'."""
    return f"{value:.{digits}f} ± {se:.{digits}f}"


print(f"device {device}; {len(train)} training and {len(test)} test digits; horizons {HORIZONS}; "
      f"{TRAIN_STEPS} training steps, base {BASE}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. The data and what the forward process leaves of it
# scikit-learn's 8×8 digits: $d = 64$ pixels, mapped from $0, \dots, 16$ to $[-1, 1]$; 1500 training and 297 test
# images. The forward process is VP as in notebook 01, $x_T = m(T)x_0 + s(T)z$
# ([theory §1.2](../docs/theory.md#s1-2)). At $T = 0.3$, $m(T) \approx 0.63$ against a noise level
# $s(T) \approx 0.78$: the digits can still be made out, and $p_T$ is far from the prior $p_\infty = N(0, I)$ —
# its mean image is $m(T)$ times the data's, about $-0.6$ on the background where the prior has 0.

# %% [markdown] slideshow={"slide_type": "fragment"}
# Top row: training digits. Middle and bottom: the same digits noised to $x_T$ at the short and the long horizon.

# %% slideshow={"slide_type": "-"}
gen = diffviz.make_generator(SEED, "cpu")
x0 = train.data[:8]
rows = [x0] + [I.make_process(T).marginal(x0, T, generator=gen)[0] for T in HORIZONS]
plotting.image_grid(torch.cat(rows), nrow=8, title=f"data; x_T at T = {T_SHORT:g}; x_T at T = {T_LONG:g}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. Two score networks
# The score network is a small **U-Net** (a convolutional network whose decoder reuses the encoder's feature maps
# through skip connections). It is trained by denoising score matching ([theory §3.4](../docs/theory.md#s3-4)) on
# $t \sim U[10^{-3}, T]$, once for each horizon, with the same budget and seed. Trained networks are cached by
# their full definition, so a rerun loads them.

# %% slideshow={"slide_type": "-"}
models = {T: I.train_digits(T, steps=TRAIN_STEPS, base=BASE, batch_size=BATCH, seed=SEED, device=device)
          for T in HORIZONS}
final_loss = {T: float(m.history.losses[-50:].mean()) if len(m.history.losses) else float("nan")
              for T, m in models.items()}
pd.DataFrame({"final training loss (last 50 steps)": [f"{final_loss[T]:.4f}" for T in HORIZONS],
              "weights": ["cache" if models[T].history.from_cache else "trained" for T in HORIZONS]},
             index=pd.Index(HORIZONS, name="T"))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. Starts for the reverse process
# Three starts $q$: the prior $p_\infty$; a Gaussian with full $64\times 64$ covariance; a Gaussian mixture model
# (GMM) fitted by expectation–maximisation. The last two are fitted by maximum likelihood to free samples $x_T$ of
# the *training* digits ([theory §5.3](../docs/theory.md#s5-3)). We score them on $x_T$ of the *test* digits by the
# cross-entropy
#
# $$\mathbb{E}_{p_T}[-\log q(x_T)] = H(p_T) + \mathrm{KL}(p_T\|q).$$

# %% [markdown] slideshow={"slide_type": "fragment"}
# The entropy $H(p_T)$ is the same for every start, so differences between starts at one $T$ are differences of
# $\mathrm{KL}(p_T\|q)$ (*estimated*, ± SE, [theory §9.1](../docs/theory.md#s9-1)). The unit is **bits per
# dimension**: nats divided by $d\ln 2$ ([theory §9.4](../docs/theory.md#s9-4)). Expect the fitted starts to win
# clearly at $T = 0.3$; at $T = 1$ the prior already equals $p_T$ up to $e^{-B(1)}$, and fitting can only add
# estimation error.

# %% slideshow={"slide_type": "-"}
inits = {(T, name): I.fit_image_init(name, T, n_fit=N_FIT, seed=SEED, gmm_components=GMM_COMPONENTS)
         for T in HORIZONS for name in I.INITS}
xent = {key: I.endpoint_xent(init, key[0], seed=SEED + 1) for key, init in inits.items()}
pd.DataFrame({f"T = {T:g}": [pm(*xent[T, name], digits=4) for name in I.INITS] for T in HORIZONS},
             index=pd.Index([I.INIT_LABELS[name] for name in I.INITS], name="E[−log q(x_T)], bits/dim"))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. Samples
# We sample with **DDIM** ($\eta = 0$), a deterministic sampler like the probability-flow ODE
# ([theory §2.4](../docs/theory.md#s2-4)), with the same step size for both horizons: the short horizon needs
# $T_{\rm short}/T_{\rm long}$ of the score evaluations. The table gives the mean pixel of the samples (± SE over
# images) beside the data's mean pixel.

# %% slideshow={"slide_type": "-"}
samples, nfe = {}, {}
for T in HORIZONS:
    for name in I.INITS:
        samples[T, name], nfe[T] = I.sample_images(models[T], T, inits[T, name], N_SAMPLES, step_size=STEP_SIZE,
                                                   seed=SEED)
data_mean = float(train.data.mean())
per_image = {key: x.mean(dim=(1, 2, 3)) for key, x in samples.items()}  # mean pixel of each sampled image
pd.DataFrame({"score evaluations": [nfe[T] for T, _ in samples],
              f"mean pixel (data: {data_mean:.3f})": [pm(float(v.mean()), float(v.std()) / len(v) ** 0.5)
                                                      for v in per_image.values()]},
             index=pd.MultiIndex.from_tuples([(T, I.INIT_LABELS[name]) for T, name in samples], names=["T", "start"]))

# %% [markdown] slideshow={"slide_type": "subslide"}
# Rows of each grid: prior start, fitted Gaussian, fitted GMM. From the prior at $T = 0.3$ the background stays
# grey: $x_T$ of the data has mean $m(T)$ times the data's mean, the prior has mean 0, and a deterministic sampler
# carries that error to the output. The fitted starts fix it. (A stochastic sampler partly forgets its start, as
# in notebook 01, and hides the difference better.)

# %% slideshow={"slide_type": "-"}
grids = {T: plotting.image_grid(torch.cat([samples[T, name][:8] for name in I.INITS]), nrow=8,
                                title=f"T = {T:g}, {nfe[T]} score evaluations — rows: prior, Gaussian, GMM")
         for T in HORIZONS}
grids[T_SHORT]

# %% slideshow={"slide_type": "-"}
grids[T_LONG]

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. Bits per dimension on test digits
# The probability-flow ODE (notebook 01 §4, [theory §2.2](../docs/theory.md#s2-2)) maps a test digit $x_0$ to
# $x_T$, and $-\log\hat p(x_0) = -\log q(x_T) - \int_0^T\nabla\cdot v\,dt$ ([theory §9.3](../docs/theory.md#s9-3)).
# In $d = 64$ the exact divergence $\nabla\cdot v$ costs 64 gradient passes; **Hutchinson's estimator**
# (Hutchinson, 1990) $\nabla\cdot v = \mathbb{E}_r[r^\top (\partial v/\partial x)\, r]$, with random sign vectors
# $r$, costs one pass per probe and is unbiased.

# %% [markdown] slideshow={"slide_type": "fragment"}
# The path and its divergence integral do not depend on the start, so one path per model serves every start: the
# difference to the prior start is *paired* (same digits, same path) and has a small standard error. These
# bits/dim are the continuous density rescaled to pixel units, comparable between these models, not to published
# values.

# %% slideshow={"slide_type": "-"}
x_test = test.data[:N_TEST]
bpd = {T: I.bits_per_dim(models[T], T, {name: inits[T, name] for name in I.INITS}, x_test, n_steps=NLL_STEPS,
                         n_probes=N_PROBES, seed=SEED + 2) for T in HORIZONS}
pd.DataFrame({"bits/dim": [pm(r["bpd"], r["se"]) for T in HORIZONS for r in bpd[T].values()],
              "difference to the prior start": [pm(r["diff_prior"], r["diff_prior_se"])
                                                for T in HORIZONS for r in bpd[T].values()]},
             index=pd.MultiIndex.from_tuples([(T, I.INIT_LABELS[name]) for T in HORIZONS for name in bpd[T]],
                                             names=["T", "start"]))

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Reading the table.** At the short horizon the fitted start should lower the bits/dim by many standard errors;
# at the long horizon the starts should agree within the error of the fit. Whether the short horizon with a fitted
# start also beats the long horizon is a question for *this run*: it depends on how well each network learned its
# interval. Notebook 01's bound suggests why the short one can win with a small budget — its network has a shorter
# interval to learn — but it guarantees nothing for two separately trained networks.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Take-aways
# - At a short horizon $p_T$ still carries the data (its mean image is $m(T)$ times the data's), so the prior is a
#   poor start.
# - A Gaussian or a GMM fitted to free samples of $p_T$ lowers the endpoint cross-entropy, and with it
#   $\mathrm{KL}(p_T\|q)$, far below the prior's at $T = 0.3$; at $T = 1$ the prior is already right.
# - A deterministic sampler (DDIM, the probability-flow ODE) carries the start's error to the output: from the
#   prior at $T = 0.3$ the background stays grey.
# - The probability-flow ODE gives bits/dim on test digits; sharing one path between starts makes their
#   difference paired and precise.
# - The short horizon costs $T_{\rm short}/T_{\rm long}$ of the score evaluations at the same step size.

# %% tags=["figures", "remove-cell"] slideshow={"slide_type": "skip"}
# Regression bookkeeping (hidden from students and slides): the figures the tests check, and a rounded printed
# check for nbval.
from diffviz.record import record, set_path

set_path(FIGURES_PATH)
for T in HORIZONS:
    record(f"train_loss_T{T:g}", final_loss[T])
for (T, name), (value, se) in xent.items():
    record(f"xent_T{T:g}_{name}", value)
    record(f"xent_se_T{T:g}_{name}", se)
record("data_mean_pixel", data_mean)
for (T, name), v in per_image.items():
    record(f"sample_mean_T{T:g}_{name}", float(v.mean()))
    record(f"sample_mean_se_T{T:g}_{name}", float(v.std() / len(v) ** 0.5))
for T in HORIZONS:
    record(f"nfe_T{T:g}", nfe[T])
for T, rows in bpd.items():
    for name, r in rows.items():
        record(f"bpd_T{T:g}_{name}", r["bpd"])
        record(f"bpd_se_T{T:g}_{name}", r["se"])
        record(f"bpd_diff_T{T:g}_{name}", r["diff_prior"])
        record(f"bpd_diff_se_T{T:g}_{name}", r["diff_prior_se"])
record("n_test", int(x_test.shape[0]))
# NBVAL_CHECK_OUTPUT
short_gain = bpd[T_SHORT]["gaussian"]["diff_prior"] + 5 * bpd[T_SHORT]["gaussian"]["diff_prior_se"] < 0
print(f"NFE at T = {T_SHORT:g}: {I.steps_for(T_SHORT, STEP_SIZE)}, at T = {T_LONG:g}: {I.steps_for(T_LONG, STEP_SIZE)}; "
      f"Gaussian start beats the prior at T = {T_SHORT:g}: {short_gain}")
