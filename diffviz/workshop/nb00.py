"""Exercises of notebook 00 (the tour). Solutions: the cells tagged `solution` in notebooks/00_tour.py."""
from __future__ import annotations

import math

from . import checkers as C
from .core import exercise, lazy


def _vp():
    from diffviz import VP

    return VP()


def _vp_reference(t):
    vp = _vp()
    return float(vp.mean_scale(t)), float(vp.std(t))


def _B(t, b0=0.1, b1=20.0):
    return b0 * t + 0.5 * (b1 - b0) * t ** 2


exercise(
    id="00.q1", kind="code", title="The VP marginal m(t), s(t)",
    statement="""
    Write `vp_marginal(t)` returning the pair $(m(t), s(t))$ of the VP process (β_min = 0.1, β_max = 20) for a
    float $t$: $x_t = m(t)\\,x_0 + s(t)\\,z$. Use the formulas of §1, not `vp.mean_scale`.
    """,
    hints=("First the integrated noise rate $B(t) = \\int_0^t \\beta = \\beta_{\\min} t + \\tfrac12(\\beta_{\\max} - "
           "\\beta_{\\min}) t^2$.",
           "DDPM's $\\bar\\alpha$ is $m^2 = e^{-B}$; VP keeps the variance: $m^2 + s^2 = 1$.",
           "$m = e^{-B/2}$ and $s = \\sqrt{1 - e^{-B}}$ (a standard deviation, not a variance)."),
    checker=C.function(_vp_reference, [(0.05,), (0.3,), (0.7,), (1.0,)],
                       alternatives={"B without its ½": lambda t: (math.exp(-_B(t, 0.1, 39.9) / 2),
                                                                   math.sqrt(1 - math.exp(-_B(t, 0.1, 39.9))))}),
    answer_name="vp_marginal",
    context=lambda: {"vp": _vp()},
    wrong_answers=[
        ("m = e^{-B} (the ½ forgotten)", lambda t: (math.exp(-_B(t)), math.sqrt(1 - math.exp(-_B(t)))), "squared"),
        ("s given as the variance 1 - m²", lambda t: (math.exp(-_B(t) / 2), 1 - math.exp(-_B(t))), "squared"),
        ("sign in the exponent, m = e^{+B/2}", lambda t: (math.exp(_B(t) / 2), math.sqrt(1 - math.exp(-_B(t)))),
         "reciprocal"),
        ("a function that raises", lambda t: 1 / 0, "raises"),
        ("a number, not a function", 0.5, "type"),
    ],
)


# --- 00.q2: the exact score of a two-component mixture (§2) ----------------------------------------
MIX_WEIGHTS, MIX_MEANS, MIX_VARS = (0.3, 0.7), ((-2.0, 0.0), (1.5, 1.0)), (0.25, 1.0)


def _mix_params():
    import torch

    f64 = torch.float64
    return (torch.tensor(MIX_WEIGHTS, dtype=f64), torch.tensor(MIX_MEANS, dtype=f64),
            torch.tensor(MIX_VARS, dtype=f64))


def _mixture():
    from diffviz.targets import GaussianMixture

    return GaussianMixture(*_mix_params())


def _mix_score(x, t, *, normaliser=True, responsibilities=True, scale_mean=True, sign=1.0):
    """The exact score, or one of its typical slips (for the checker's mistake names and the tests)."""
    import torch

    pi, mu, var = _mix_params()
    vp = _vp()
    m, s = float(vp.mean_scale(t)), float(vp.std(t))
    C = m * m * var + s * s  # (K,)
    diff = x[:, None, :] - (m if scale_mean else 1.0) * mu  # (n, K, d)
    logw = torch.log(pi) - 0.5 * (diff ** 2).sum(-1) / C
    if normaliser:
        logw = logw - 0.5 * x.shape[1] * torch.log(C)
    w = torch.softmax(logw, dim=1) if responsibilities else pi.expand(x.shape[0], -1)
    return -sign * (w[:, :, None] * diff / C[:, None]).sum(1)


_NO_NORMALISER = "each component's normalising factor det(2πC_k)^(-1/2) is missing from R_k"
_NO_RESPONSIBILITIES = "the weights must be the responsibilities R_k(x), not the prior weights π_k"
_UNSCALED_MEAN = "the component means must be scaled by m(t): p_t's components sit at m μ_k"

exercise(
    id="00.q2", kind="code", title="The exact score of a two-component mixture",
    statement="""
    Write `mixture_score(x, t)`: the exact score $\\nabla\\ln p_t(x)$ under VP of the mixture `mix` above
    ($0.3\\,N(\\mu_1, 0.25\\,I) + 0.7\\,N(\\mu_2, I)$, $\\mu_1 = (-2, 0)$, $\\mu_2 = (1.5, 1)$: the tensors
    `pi_mix`, `mu_mix`, `var_mix`), for a float64 batch `x` of shape (n, 2) and a float $t$. Use `vp.mean_scale(t)`
    and `vp.std(t)`, not `mix.score`.
    """,
    hints=("Each component is noised separately: $p_t = \\sum_k \\pi_k N(m\\mu_k, C_k)$ with "
           "$C_k = m^2\\Sigma_k + s^2 I$ (here a number times $I$).",
           "$\\nabla\\ln p_t(x) = \\sum_k R_k(x)\\,[-(x - m\\mu_k)/C_k]$, with responsibilities "
           "$R_k(x) \\propto \\pi_k N(x; m\\mu_k, C_k)$ summing to 1 over $k$.",
           "In log space: $R_k = \\mathrm{softmax}_k(\\ln\\pi_k - \\|x - m\\mu_k\\|^2/(2C_k) - \\ln C_k)$ "
           "in d = 2 (`torch.softmax(..., dim=1)` on an (n, 2) array; `x[:, None, :] - m * mu_mix` is (n, 2, 2))."),
    checker=C.score_function(_mixture, _vp, times=(0.05, 0.3, 0.7),
                             alternatives={_NO_NORMALISER: lambda x, t: _mix_score(x, t, normaliser=False),
                                           _NO_RESPONSIBILITIES: lambda x, t: _mix_score(x, t, responsibilities=False),
                                           _UNSCALED_MEAN: lambda x, t: _mix_score(x, t, scale_mean=False)}),
    answer_name="mixture_score",
    context=lambda: {"vp": _vp(), "pi_mix": _mix_params()[0], "mu_mix": _mix_params()[1],
                     "var_mix": _mix_params()[2], "mix": _mixture()},
    wrong_answers=[
        ("sign flipped", lambda x, t: _mix_score(x, t, sign=-1.0), "sign"),
        ("normalising factor of N(x; mμ_k, C_k) dropped", lambda x, t: _mix_score(x, t, normaliser=False),
         _NO_NORMALISER),
        ("prior weights π_k for R_k(x)", lambda x, t: _mix_score(x, t, responsibilities=False), _NO_RESPONSIBILITIES),
        ("means not scaled by m(t)", lambda x, t: _mix_score(x, t, scale_mean=False), _UNSCALED_MEAN),
        ("a stub", lambda x, t: ..., "not attempted"),
    ],
)


# --- 00.q3: one Euler–Maruyama step of the reverse SDE (§3) ----------------------------------------
def _em_step(x, t, t_next, score, xi, *, half=1.0, sign=1.0, noise="std", at_next=False):
    """An Euler–Maruyama step of the VP reverse SDE, or one of its typical slips."""
    vp = _vp()
    s = t_next if at_next else t
    h = t - t_next
    f, g2 = float(vp.f(s)), float(vp.g2(s))
    drift = f * x - half * sign * g2 * score(x, s)
    q = {"std": math.sqrt(g2 * h), "var": g2 * h, "zero": 0.0}[noise]
    return x - h * drift + q * xi


def _em_step_checker():
    """C.sampler_step("em"), exposing the exact output laws it compares with (for the test that a verdict never
    shows them): the variances after 5 and 20 steps on N(0, diag(0.25, 1, 4))."""
    check = C.sampler_step("em", eigvals=(0.25, 1.0, 4.0), n_steps=(5, 20))

    def expected():
        from diffviz import theory

        return [float(v) for n in (5, 20) for v in theory.sampler_moments(_vp(), n, [0.25, 1.0, 4.0], method="em")[1]]

    check.expected = expected
    return check


exercise(
    id="00.q3", kind="code", title="One Euler–Maruyama step",
    statement="""
    Write `em_step(x, t, t_next, score, xi)`: one Euler–Maruyama step of the reverse SDE of `vp`, from time $t$
    down to $t_{\\text{next}} < t$, for a float64 batch `x`; `score(x, t)` is the score and `xi` the step's
    standard normal noise $\\xi$ (the shape of `x`: use it, do not draw your own). `vp.f(t)` is the drift rate
    $f(t)$, `vp.g2(t)` is $g(t)^2$. The check runs your step on Gaussian data and compares the law after 5 and
    20 steps with the exact one (§5).
    """,
    hints=("Write the step size $h = t - t_{\\text{next}} > 0$; time runs backwards, so $dt = -h$ and "
           "$d\\bar W$ has variance $h$.",
           "Evaluate $f$, $g^2$ and the score at the left point $t$ (the point the step starts from).",
           "$x' = x - h\\,[f\\,x - g^2\\,\\mathrm{score}(x, t)] + \\sqrt{g^2 h}\\;\\xi$: the full $g^2$ "
           "(the ½ belongs to the probability-flow ODE) and $\\sqrt{h}$ on the noise."),
    checker=_em_step_checker(),
    answer_name="em_step",
    context=lambda: {"vp": _vp()},
    wrong_answers=[
        ("the PF-ODE's ½ on the score term", lambda *a: _em_step(*a, half=0.5), "half"),
        ("noise h g² ξ: the variance where its square root is due", lambda *a: _em_step(*a, noise="var"), "squared"),
        ("drift sign flipped (a forward step)", lambda *a: _em_step(*a, sign=-1.0), "sign"),
        ("coefficients at t_next", lambda *a: _em_step(*a, at_next=True), "off-by-one"),
        ("no noise", lambda *a: _em_step(*a, noise="zero"), "no noise: the ξ term is missing"),
    ],
)


# --- 00.q4: simulate 10 Euler–Maruyama steps (§5) --------------------------------------------------
EM_STEPS, EM_LAM = 10, (0.25, 1.0, 4.0)


def _em_var(method="em", n_steps=EM_STEPS):
    """The exact output variance after n_steps of `method` from p_∞ (per eigendirection)."""
    from diffviz import schedules, theory

    vp = _vp()
    return theory.sampler_moments(vp, schedules.uniform(vp, n_steps), list(EM_LAM), method=method, init="prior")[1]


def _simulate(n, method="em", seed=1):
    import torch

    from diffviz import sample, schedules
    from diffviz.targets import Gaussian

    vp = _vp()
    lam = torch.tensor(EM_LAM, dtype=torch.float64)
    gauss = Gaussian(torch.zeros(3, dtype=torch.float64), lam)
    gen = torch.Generator().manual_seed(seed)
    x_init = vp.prior(3).sample(n, generator=gen, dtype=torch.float64)
    return sample(lambda x, t: gauss.score(x, t, vp), vp, x_init, schedules.uniform(vp, EM_STEPS), method,
                  generator=gen)


def _data_samples(n, seed=2):
    import torch

    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=gen, dtype=torch.float64) * torch.tensor(EM_LAM, dtype=torch.float64).sqrt()


_LOOKS_LIKE_DATA = ("these look like draws of the data law N(0, λ) (or of a far more accurate sampler, such as "
                    "Heun), not the output of 10 Euler–Maruyama steps")

exercise(
    id="00.q4", kind="statistical", title="Simulate 10 Euler–Maruyama steps",
    statement=f"""
    The same test for Euler–Maruyama: run `n_check` = 20 000 samples from $p_\\infty$ through {EM_STEPS}
    Euler–Maruyama steps on the uniform grid `g10` with the exact score of `gauss` ($\\lambda$ = (0.25, 1, 4)),
    and pass the output, shape (n, 3), as `x_em`. The check compares its variance per eigendirection with the
    exact `theory.sampler_moments(vp, g10, lam, method="em")`, within 5 standard errors computed from your
    sample size, and says how many SE off it is.
    """,
    hints=("Copy the Heun simulation above and change the method.",
           "`sample(lambda x, t: gauss.score(x, t, vp), vp, vp.prior(3).sample(n_check, generator=gen, "
           "dtype=torch.float64), g10, \"em\", generator=gen)`"),
    checker=C.statistical(_em_var, "var", k=5, min_n=1000, shape=(3,),
                          alternatives={_LOOKS_LIKE_DATA: lambda: list(EM_LAM)}),
    answer_name="x_em",
    context=lambda: _em_context(),
    wrong_answers=[
        ("Heun instead of Euler–Maruyama", lazy(lambda: _simulate(20_000, "heun")), _LOOKS_LIKE_DATA),
        ("the data law itself", lazy(lambda: _data_samples(20_000)), _LOOKS_LIKE_DATA),
        ("too few samples", lazy(lambda: _simulate(200)), "size"),
        ("one coordinate only", lazy(lambda: _simulate(20_000)[:, 0]), "shape"),
    ],
)


def _em_context():
    import torch

    from diffviz import sample, schedules
    from diffviz.targets import Gaussian

    vp = _vp()
    lam = torch.tensor(EM_LAM, dtype=torch.float64)
    return {"vp": vp, "lam": lam, "gauss": Gaussian(torch.zeros(3, dtype=torch.float64), lam), "n_check": 20_000,
            "g10": schedules.uniform(vp, EM_STEPS), "gen": torch.Generator().manual_seed(0), "sample": sample}
