"""diffviz.sandbox: one scenario end to end against exact references, scenario files, and the printed code.

Exact references: a single bead N(μ, w² I) noised by VP/VE is Gaussian, so KL(p_T ‖ p_∞) has a closed form;
with w = 1, μ = 0 (data N(0, I)) the VP probability-flow ODE with the score error ε e has velocity -½ β(t) ε e
(no x in it), so its output is N(½ ε (B(T) - B(t_min)) e, I) exactly, and Heun integrates the linear β exactly.
Tolerances: four standard errors of the estimate (and the k-NN estimator's bias measured where the truth is 0).
"""
import json
import math

import pytest
import torch

from diffviz import VE, VP, schedules
from diffviz import sandbox as S


def _gauss_kl_iso(mean, var, var_nu):
    """KL(N(mean, var I_2) ‖ N(0, var_nu I_2))."""
    d = 2
    return 0.5 * (d * var / var_nu + sum(m * m for m in mean) / var_nu - d + d * math.log(var_nu / var))


@pytest.mark.parametrize("process", [VP(T=0.4), VE(sigma_T=3.0)])
def test_single_bead_prior_kl_is_the_closed_form(process):
    target = S.beads([[0.7, -0.3]], width=0.5)
    grid = schedules.make_grid("uniform", process, 4)
    res = S.run(target, process, grid, sampler="ode-euler", start="prior", n_samples=200)
    m, s = float(process.mean_scale(process.T)), float(process.std(process.T))
    want = _gauss_kl_iso([m * 0.7, -m * 0.3], m * m * 0.25 + s * s, process.prior_std() ** 2)
    assert res["numbers"]["kl_start_exact"] is True
    assert res["numbers"]["kl_start"] == pytest.approx(want, rel=1e-10)


def test_mixture_kl_start_is_monte_carlo_within_se_of_quadrature():
    process = VP(T=0.3)
    target = S.beads([[-1.5, -0.8], [1.5, -0.8], [0.0, 1.6]], [1.0, 2.0, 1.0], width=0.4)
    res = S.run(target, process, schedules.make_grid("uniform", process, 2), sampler="ddim", start="prior",
                n_samples=100)
    kl, se = res["numbers"]["kl_start"], res["numbers"]["kl_start_se"]
    assert res["numbers"]["kl_start_exact"] is False and se > 0
    g = torch.linspace(-9, 9, 721, dtype=torch.float64)
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    lp = target.log_prob_t(pts, process.T, process)
    lq = -0.5 * (pts ** 2).sum(1) - math.log(2 * math.pi)
    quad = float((lp.exp() * (lp - lq)).sum() * (g[1] - g[0]) ** 2)
    assert abs(kl - quad) < 4 * se, (kl, se, quad)


def test_oracle_start_exact_score_many_steps_matches_the_data():
    """The sampler's output vs fresh data samples: the same KL estimator, the same size, within 4 SE."""
    target = S.beads([[-1.5, -0.8], [1.5, -0.8], [0.0, 1.6]], width=0.4)
    process = VP()
    res = S.run(target, process, schedules.make_grid("karras", process, 200), sampler="heun", start="oracle",
                n_samples=3000, seed=1)
    kl, se = res["numbers"]["kl_samples"], res["numbers"]["kl_samples_se"]
    ref, ref_se = S.kl_to_data(target.sample(3000, generator=2, dtype=torch.float64), target.log_prob)
    assert res["numbers"]["kl_start"] == 0.0 and res["numbers"]["kl_start_exact"] is True
    assert abs(kl - ref) < 4 * math.hypot(se, ref_se), (kl, se, ref, ref_se)
    assert res["numbers"]["nfe"] == 2 * 200 - 1 or res["numbers"]["nfe"] == 2 * 200


def test_constant_score_error_shifts_the_output_as_theory_says():
    """Data N(0, I), VP, Heun: the output is N(δ e, I), δ = ½ ε (B(T) - B(t_min)); its KL to the data is ½ δ²."""
    process = VP()
    target = S.beads([[0.0, 0.0]], width=1.0)
    grid = schedules.make_grid("uniform", process, 50)
    delta_per_eps = 0.5 * float(process.B(process.T) - process.B(process.t_min))
    base = S.run(target, process, grid, sampler="heun", start="prior", eps=0.0, n_samples=4000)["numbers"]
    for eps in (0.1, 0.3):
        n = S.run(target, process, grid, sampler="heun", start="prior", eps=eps, n_samples=4000)["numbers"]
        assert abs(n["mean_along_e"] - eps * delta_per_eps) < 4 * n["mean_along_e_se"]
        want = 0.5 * (eps * delta_per_eps) ** 2
        bias = abs(base["kl_samples"])  # the truth is 0 at ε = 0
        assert abs(n["kl_samples"] - want) < 4 * n["kl_samples_se"] + bias, (eps, n["kl_samples"], want)
        assert n["kl_samples"] > base["kl_samples"]


def test_every_sampler_start_process_and_schedule_runs():
    s = dict(S.DEFAULTS, n_samples=300, n_steps=4)
    for key, values in [("sampler", ("em", "ode-euler", "heun", "ddim", "pc")),
                        ("start", tuple(S.STARTS)), ("process", tuple(S.PROCESSES)),
                        ("schedule", [x for x in S.SCHEDULES if x != "dilated"]),
                        ("data", S.DATA)]:
        for v in values:
            n = S.run_scenario({**s, key: v})["numbers"]
            assert all(math.isfinite(float(x)) for x in n.values()), (key, v, n)
    with pytest.raises(ValueError, match="dilated.*interpolant"):
        S.run_scenario({**s, "schedule": "dilated"})


def test_printed_code_gives_the_same_numbers():
    s = dict(S.DEFAULTS, beads=[[0.123456789, -1.0, 2.0], [1.5, 1.5, 1.0]], width=0.33, process="ve",
             sigma_T=7.5, sampler="em", start="gaussian", eps=0.15, n_samples=500, seed=3, n_steps=7)
    code = S.to_code(s)
    assert len(code.strip().splitlines()) <= 12
    ns = {}
    exec(compile(code, "<to_code>", "exec"), ns)
    assert ns["result"]["numbers"] == S.run_scenario(s)["numbers"]
    for data in ("moons", "student-t"):
        code = S.to_code({**s, "data": data})
        assert ("toy('moons')" in code) if data == "moons" else ("StudentT(2, df=3.0)" in code)


def test_scenario_json_round_trip_and_bad_files(tmp_path):
    s = dict(S.DEFAULTS, eps=0.25, schedule="karras")
    path = S.save_scenario(s, tmp_path / "a.json")
    assert S.load_scenario(path) == S.check_scenario(s)
    bad = tmp_path / "bad.json"
    cases = [
        ("{not json", r"bad.json: not a JSON file"),
        (json.dumps([1, 2]), r"must be a JSON object"),
        (json.dumps({k: v for k, v in s.items() if k != "sampler"}), r"\['sampler'\] missing"),
        (json.dumps({**s, "colour": 1}), r"unknown scenario field.*colour"),
        (json.dumps({**s, "sampler": "rk4"}), r"'sampler' must be one of \['em', 'ode-euler', 'heun', 'ddim', 'pc'\]"),
        (json.dumps({**s, "n_steps": 0}), r"'n_steps' must be an integer in \[1, 200\]"),
        (json.dumps({**s, "n_steps": 2.5}), r"'n_steps' must be an integer"),
        (json.dumps({**s, "eps": -1}), r"'eps' must be a number in \[0, 2\], got -1"),
        (json.dumps({**s, "T": "long"}), r"'T' must be a number in \[0.1, 3\]"),
        (json.dumps({**s, "beads": [[0, 0]]}), r"'beads' must be a list of at most 200 \[x, y, weight\]"),
        (json.dumps({**s, "beads": [[9, 0, 1]]}), r"'beads'.*x, y in \[-4, 4\]"),
        (json.dumps({**s, "beads": []}), r"'beads' must be non-empty"),
    ]
    for text, pattern in cases:
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(ValueError, match=pattern):
            S.load_scenario(bad)


def test_heavy_tails_make_every_gaussian_tailed_start_infinitely_wrong():
    """Student-t data with ν ≤ 2 has no variance: KL(p_T ‖ q) = ∞ for the prior, a Gaussian or a GMM (theory §6.2)."""
    process = VP(T=0.5)
    grid = schedules.make_grid("uniform", process, 3)
    from diffviz.targets import StudentT

    for start in ("prior", "gaussian", "gmm"):
        n = S.run(StudentT(2, 1.5), process, grid, sampler="ddim", start=start, n_samples=200)["numbers"]
        assert n["kl_start"] == math.inf and n["kl_start_exact"] is True
    n = S.run(StudentT(2, 1.5), process, grid, sampler="ddim", start="oracle", n_samples=200)["numbers"]
    assert n["kl_start"] == 0.0
    n = S.run(StudentT(2, 5.0), process, grid, sampler="ddim", start="prior", n_samples=200)["numbers"]
    assert math.isfinite(n["kl_start"]) and n["kl_start_exact"] is False
