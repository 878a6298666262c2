"""diffviz.experiments.diffusion_time and its dashboard (notebook 1, Franzese et al.): the exact toy bound against
theory, the Monte Carlo estimates against exact values within 5 standard errors, and the dashboard driven from code.
"""
import math

import pytest
import torch

from diffviz import theory
from diffviz.experiments import diffusion_time as E
from diffviz.metrics import elbo_terms

LAM, EPS2 = 4.0, 0.01


# --- 1. the Gaussian toy ------------------------------------------------------------------------------------------
def test_gaussian_bound_has_its_interior_minimum_where_theory_says():
    gb = E.gaussian_bound(LAM, EPS2, T_max=1.5, n_grid=1501)
    assert gb["interior"] and 0.0 < gb["T_star"] < 1.5
    assert gb["T_star"] == pytest.approx(gb["T_star_closed"], rel=1e-6)
    # stationarity of the closed form: a^2 u^2 = eps^2 (1 + u a), u = e^{-B(T*)}, a = lam - 1 (derived)
    u = math.exp(-float(E.make_process(1.5).B(gb["T_star"])))
    a = LAM - 1
    assert a * a * u * u == pytest.approx(EPS2 * (1 + u * a), rel=1e-6)
    # the grid minimum sits within one grid step of T*, and it is a true interior minimum
    i = int(gb["bound"].argmin())
    assert abs(gb["T"][i] - gb["T_star"]) <= 1.5 / 1500
    assert gb["bound_star"] <= gb["bound"].min() + 1e-12
    assert gb["bound_star"] < gb["bound"][0] and gb["bound_star"] < gb["bound_T_max"]
    assert gb["bound_star"] == pytest.approx(theory.franzese_bound(gb["T_star"], LAM, EPS2, E.make_process(1.5)))
    # the terms: KL falls, G = 1/2 eps^2 B(T) grows
    assert (gb["kl"][1:] <= gb["kl"][:-1]).all() and (gb["gap"][1:] > gb["gap"][:-1]).all()
    B = E.make_process(1.5).B(torch.as_tensor(gb["T"], dtype=torch.float64)).numpy()
    assert gb["gap"] == pytest.approx(0.5 * EPS2 * B, rel=1e-10, abs=1e-15)


def test_exact_score_longer_is_always_better():
    gb = E.gaussian_bound(LAM, 0.0, T_max=1.5)
    assert not gb["interior"]
    assert (gb["bound"][1:] <= gb["bound"][:-1]).all() and gb["gap"].max() == 0.0
    assert gb["T_star"] == pytest.approx(1.5, rel=1e-6)


def test_optimal_T_grows_as_the_score_improves():
    r = E.optimal_T_vs_eps(LAM, [0.3, 0.1, 0.03, 0.01])
    assert all(t1 < t2 for t1, t2 in zip(r["T_star"][:-1], r["T_star"][1:]))


def test_scaled_toy_and_inputs():
    target = E.make_target("moons", scale=2.0)
    assert torch.diagonal(target.mixture_cov()).mean().item() == pytest.approx(4.0, rel=1e-12)
    assert E.make_target("gaussian").cov_matrix()[0, 0].item() == LAM
    with pytest.raises(ValueError, match="name"):
        E.make_target("spiral")
    with pytest.raises(ValueError, match="init"):
        E.fit_init("kde", target, 0.3)
    with pytest.raises(ValueError, match="T"):
        E.make_process(0.0)


# --- 3. cost ------------------------------------------------------------------------------------------------------
def test_sampling_cost_is_proportional_to_T():
    cost = E.sampling_cost([0.1, 0.3, 1.0], 0.02, methods=("em", "heun"), n=8)
    assert cost["n_steps"] == [5, 15, 50]
    assert cost["nfe"]["em"] == [5, 15, 50] and cost["nfe"]["heun"] == [10, 30, 100]


# --- the constant score error: exact G, against metrics.elbo_terms -------------------------------------------------
def test_constant_error_gives_the_exact_score_gap(gen):
    target = E.make_target("moons")
    process = E.make_process(0.5)
    eps = 0.3
    x = torch.randn(16, 2, generator=gen, dtype=torch.float64)
    diff = E.score_of(target, process, eps)(x, 0.2) - target.score(x, 0.2, process)
    torch.testing.assert_close(diff, torch.full_like(x, eps / math.sqrt(2)))
    G = E.score_gap_constant(process, eps)
    assert G == pytest.approx(0.5 * eps ** 2 * float(process.B(0.5) - process.B(process.t_min)))
    e = elbo_terms(E.score_of(target, process, eps), process, target, n=256, n_t=64, generator=gen)
    assert abs(e["score_gap"] - G) < 5 * e["score_gap_se"]


# --- 4. auxiliary starts -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_T_fits():
    target = E.make_target("moons")
    T = 0.2
    inits = {name: E.fit_init(name, target, T, n_fit=2000, flow_steps=150) for name in ("prior", "gmm", "flow")}
    return target, T, inits


def test_fitted_starts_beat_the_prior_at_small_T(small_T_fits):
    target, T, inits = small_T_fits
    kl = {name: E.init_kl(target, T, init, n=2000) for name, init in inits.items()}
    for name in ("gmm", "flow"):
        assert kl["prior"][0] - kl[name][0] > 5 * math.hypot(kl["prior"][1], kl[name][1]), kl
    assert not any(v[2] for v in kl.values())  # Monte Carlo estimates for the bead mixture


def test_ode_model_kl_equals_the_endpoint_kl_with_the_exact_score(small_T_fits):
    """KL is invariant under the ODE's bijection: with the exact score, KL(p_data || model) = KL(p_T || nu)."""
    target, T, inits = small_T_fits
    score = E.score_of(target, E.make_process(T))
    model = E.model_kl(target, T, score, inits, n_eval=400, n_steps=40)
    for name, init in inits.items():
        kl, se, _ = E.init_kl(target, T, init, n=2000)
        assert abs(model[name][0] - kl) < 5 * math.hypot(model[name][1], se), (name, model[name], kl)
    assert model["prior"][0] - model["gmm"][0] > 5 * math.hypot(model["prior"][1], model["gmm"][1])


def test_init_kl_is_exact_for_the_gaussian_target():
    target = E.make_target("gaussian")
    T = 0.3
    kl, se, exact = E.init_kl(target, T, E.fit_init("prior", target, T, n_fit=500))
    assert exact and se == 0.0
    assert kl == pytest.approx(theory.endpoint_kl_vp([LAM, LAM], T=T, process=E.make_process(T)), rel=1e-10)
    kl_g, _, exact_g = E.init_kl(target, T, E.fit_init("gaussian", target, T, n_fit=500))
    assert exact_g and 0.0 <= kl_g < kl


def test_compare_inits_counts_steps_from_the_step_size():
    target = E.make_target("moons")
    r = E.compare_inits(target, 0.2, inits=("prior", "gmm"), n_samples=200, step_size=0.02, n_eval=50,
                        nll_steps=10, n_fit=1000, n_kl=500)
    assert r["n_steps"] == 10 and r["nfe"] == 10
    assert r["samples"]["gmm"].shape == (200, 2) and torch.isfinite(r["samples"]["prior"]).all()
    assert set(r["model_kl"]) == {"prior", "gmm"}


# --- 2. trained scores (tiny, cached in a temporary folder) --------------------------------------------------------
def test_trained_bound_terms(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFVIZ_CACHE_DIR", str(tmp_path))
    target = E.make_target("moons")
    models = E.train_models(target, [0.3, 1.0], steps=60, hidden=16, depth=1, batch_size=128)
    assert len(list(tmp_path.glob("*.pt"))) == 2
    again = E.train_models(target, [0.3], steps=60, hidden=16, depth=1, batch_size=128)
    assert again[0.3].history.from_cache
    bt = E.bound_vs_T(target, models, inits=("prior", "gmm"), n=1024, n_t=32, n_fit=1000)
    kl, se = bt["kl"]["prior"], bt["kl_se"]["prior"]
    assert kl[0] - kl[1] > 5 * math.hypot(se[0], se[1])  # the endpoint term falls with T
    assert bt["kl"]["prior"][0] - bt["kl"]["gmm"][0] > 5 * math.hypot(se[0], bt["kl_se"]["gmm"][0])
    assert all(g > 0 and math.isfinite(g) for g in bt["score_gap"])
    assert bt["bound"]["prior"][0] == pytest.approx(kl[0] + bt["score_gap"][0])


# --- the dashboard ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dash():
    from diffviz.dashboards.diffusion_time import DiffusionTimeDashboard

    return DiffusionTimeDashboard(targets=("moons", "gaussian"), T_grid=(0.2, 0.3, 1.0),
                                  inits=("prior", "gaussian", "gmm", "flow"), n_fit=1000, n_kl=1000, flow_steps=60)


def test_dashboard_numbers_and_figures_follow_the_controls(dash):
    nums = dash.set(target="moons", T=0.2, init="prior", n_steps=20, sampler="em", eps=0.3, seed=0)
    assert dash.message == "" and nums["T"] == 0.2 and nums["nfe"] == 20
    assert nums["G"] == pytest.approx(E.score_gap_constant(E.make_process(0.2), 0.3))
    assert nums["bound"] == pytest.approx(nums["kl_pT_nu"] + nums["G"])
    x_prior = list(dash.figures["samples"].data[1].x)
    assert len(x_prior) == dash.n and list(dash.figures["bound"].data[4].x) == [0.2]

    nums_gmm = dash.set(init="gmm")
    se = math.hypot(nums["kl_pT_nu_se"], nums_gmm["kl_pT_nu_se"])
    assert nums["kl_pT_nu"] - nums_gmm["kl_pT_nu"] > 5 * se
    assert list(dash.figures["samples"].data[1].x) != x_prior

    nums = dash.set(T=1.0, sampler="heun", n_steps=10)
    assert nums["nfe"] == 20 and list(dash.figures["bound"].data[4].x) == [1.0]
    assert nums["G"] > nums_gmm["G"]  # G grows with T at fixed eps

    nums = dash.set(target="gaussian", init="prior", T=0.3, eps=0.0)
    assert nums["kl_exact"] and nums["G"] == 0.0
    assert nums["kl_pT_nu"] == pytest.approx(theory.endpoint_kl_vp([LAM, LAM], T=0.3, process=E.make_process(0.3)))
    assert math.isfinite(nums["sample_kl"])


def test_dashboard_latency_default_sizes(dash):
    dash.set(target="moons", T=0.3, init="gmm", n_steps=30, sampler="em", eps=0.3, seed=0)
    times = []
    for seed in (1, 2, 3):
        dash.set(seed=seed)
        times.append(dash.last_update_s)
    assert min(times) < 0.15, times


def test_dashboard_rejects_bad_values(dash):
    with pytest.raises(ValueError, match="T"):
        dash.set(T=0.25)  # not on the grid the starts were fitted for
    with pytest.raises(ValueError, match="unknown"):
        dash.set(horizon=0.3)
    with pytest.raises(ValueError, match="init"):
        type(dash)(inits=("kde",))
