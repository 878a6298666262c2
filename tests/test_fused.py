"""diffviz.fused against the eager samplers (the reference), and sample(batch_size=...)."""
import math

import pytest
import torch

from diffviz import VE, VP, sample
from diffviz.checks import DivergenceWarning
from diffviz.fused import exact_score, row_blocks, sample_fused
from diffviz.schedules import uniform
from diffviz.targets import Gaussian, GaussianMixture, TwoModeMixture

F64 = torch.float64


def ring(K=5):
    ang = torch.arange(K, dtype=F64) * (2 * math.pi / K)
    return GaussianMixture(torch.full((K,), 1.0 / K, dtype=F64), 2 * torch.stack([ang.cos(), ang.sin()], 1),
                           torch.full((K,), 0.1, dtype=F64))


def randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def gen(seed=1):
    return torch.Generator().manual_seed(seed)


# --- the row blocks --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,d,block", [(1001, 2, 16), (1001, 2, 100), (333, 3, 50), (257, 1000, 4096), (7, 2, 4),
                                       (5, 3, 1), (100, 17, 16), (3, 10 ** 6, 1 << 16)])
def test_row_blocks_cover_the_rows_in_multiples_of_16_numbers(n, d, block):
    blocks = row_blocks(n, d, block)
    assert blocks[0][0] == 0 and blocks[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
    assert all((r1 - r0) * d % 16 == 0 for r0, r1 in blocks[:-1])
    assert len(blocks) == 1 or (blocks[-1][1] - blocks[-1][0]) * d >= 16


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_cpu_normals_drawn_block_by_block_equal_one_draw(dtype):
    """The property the fused loop relies on (an implementation detail of torch's CPU normal generator)."""
    for n, d in [(101, 3), (64, 1000), (9, 2)]:
        whole = torch.randn(n, d, generator=gen(3), dtype=dtype)
        g, parts = gen(3), []
        for r0, r1 in row_blocks(n, d, 48):
            parts.append(torch.randn(r1 - r0, d, generator=g, dtype=dtype))
        assert torch.equal(torch.cat(parts), whole)


# --- the blocked loop (any row-wise score): equal to the eager samplers, bit for bit ---------------------------
@pytest.mark.parametrize("method", ["em", "ode-euler"])
@pytest.mark.parametrize("n,block", [(1001, 16), (1001, 300), (7, 64), (64, 1 << 16)])
def test_blocked_loop_equals_eager(method, n, block):
    proc, target = VP(), ring()
    x_init = randn(n, 2)
    kept = x_init.clone()
    score = lambda x, t: target.score(x, t, proc)  # noqa: E731 - a plain callable: the blocked loop
    eager = sample(score, proc, x_init, 15, method, generator=gen())
    fused = sample_fused(score, proc, x_init, uniform(proc, 15), method=method, generator=gen(), block_elements=block)
    assert torch.equal(fused, eager)
    assert torch.equal(x_init, kept)  # the input is never modified


def test_blocked_loop_images_float64_noncontiguous_and_aliasing_score():
    proc = VE(sigma_T=3.0)
    target = Gaussian(torch.zeros(16, dtype=F64), 0.5)
    score = lambda x, t: target.score(x.reshape(len(x), -1), t, proc).reshape(x.shape)  # noqa: E731
    x_init = randn(40, 1, 4, 4, dtype=F64)
    for method in ("em", "ode-euler"):
        eager = sample(score, proc, x_init, 12, method, generator=gen())
        fused = sample(score, proc, x_init, 12, method, generator=gen(), fused=True)
        assert fused.shape == x_init.shape and fused.dtype == F64
        assert torch.equal(fused, eager)
    xt = randn(2, 50).t()  # a transposed (non-contiguous) start
    plain = lambda x, t: Gaussian(torch.zeros(2, dtype=F64), 1.0).score(x, t, proc)  # noqa: E731
    assert torch.equal(sample(plain, proc, xt, 8, "em", generator=gen(), fused=True),
                       sample(plain, proc, xt, 8, "em", generator=gen()))
    same = lambda x, t: x  # noqa: E731 - returns its input: the loop must not update it in place under the score
    with pytest.warns(DivergenceWarning):  # score = x pushes outwards: the state runs away (finite)
        fused_same = sample(same, proc, xt, 8, "ode-euler", fused=True)
        assert torch.equal(fused_same, sample(same, proc, xt, 8, "ode-euler"))


# --- the affine loop (two-mode mixture via exact_score): equal to float rounding ------------------------------
@pytest.mark.parametrize("method", ["em", "ode-euler"])
@pytest.mark.parametrize("block", [None, 1000, 1 << 30])
def test_affine_loop_matches_eager_to_float_rounding(method, block):
    proc, d = VP(), 300
    target = TwoModeMixture(d, 0.7, 0.3)
    score = exact_score(target, proc)
    assert callable(getattr(score, "affine", None))
    x_init = randn(130, d)
    eager = sample(score, proc, x_init, 25, method, generator=gen())
    fused = sample_fused(score, proc, x_init, uniform(proc, 25), method=method, generator=gen(), block_elements=block)
    torch.testing.assert_close(fused, eager, rtol=2e-5, atol=2e-5)
    # in float64 the two agree to float64 rounding
    x64 = x_init.to(F64)
    torch.testing.assert_close(sample(score, proc, x64, 25, method, generator=gen(), fused=True),
                               sample(score, proc, x64, 25, method, generator=gen()), rtol=1e-11, atol=1e-11)


def test_exact_score_is_the_target_score_and_affine_form():
    proc, target = VP(), TwoModeMixture(7, 0.3, 0.5)
    x = randn(11, 7, dtype=F64)
    score = exact_score(target, proc)
    for t in (0.05, 0.5, 1.0):
        coef, shift = score.affine(x, t)
        torch.testing.assert_close(coef * x + shift, target.score(x, t, proc), rtol=1e-13, atol=1e-13)
        torch.testing.assert_close(score(x, t), target.score(x, t, proc), rtol=0, atol=0)
    assert not hasattr(exact_score(ring(), proc), "affine")  # no affine form: the blocked loop


# --- behaviour shared with the eager samplers ---------------------------------------------------------------------
@pytest.mark.parametrize("affine", [False, True])
def test_fused_divergence_is_reported_with_step(affine):
    proc = VP()
    calls = {"n": 0}

    def exploding(x, t):
        calls["n"] += 1
        return x * (1e300 if calls["n"] >= 3 else 0.0) * 1e300

    if affine:
        score = exact_score(TwoModeMixture(4, 0.5, 1.0), proc)
        score.affine = lambda x, t: (1e300 if t < 0.85 else 0.0, torch.zeros(len(x), 1, dtype=x.dtype))
        match = r"step 3 of 10"  # t = 0.8002 after two steps of 0.0999
    else:
        score, match = exploding, r"step 3 of 10 \(t = "
    with pytest.raises(FloatingPointError, match=match):
        sample(score, proc, torch.ones(4, 4, dtype=F64) * 1e10, 10, "ode-euler", fused=True)


def test_fused_callback_and_trajectory():
    proc, target = VP(), ring()
    x_init = randn(50, 2)
    seen = []
    x, traj = sample(exact_score(target, proc), proc, x_init, 10, "em", generator=gen(), fused=True,
                     trajectory=True, max_points=6, callback=lambda i, t, x: seen.append((i, t, x.shape)))
    assert [s[0] for s in seen] == list(range(1, 11)) and seen[-1][1] == pytest.approx(proc.t_min)
    assert traj.xs.shape == (6, 50, 2)
    torch.testing.assert_close(traj.xs[-1], x)
    eager, traj_e = sample(exact_score(target, proc), proc, x_init, 10, "em", generator=gen(), trajectory=True,
                           max_points=6)
    assert torch.equal(traj.xs, traj_e.xs)


def test_fused_rejects_other_methods_and_bad_blocks():
    proc, target = VP(), ring()
    score = exact_score(target, proc)
    with pytest.raises(ValueError, match="fused"):
        sample(score, proc, randn(4, 2), 5, "heun", fused=True)
    with pytest.raises(ValueError, match="block_elements"):
        sample_fused(score, proc, randn(4, 2), uniform(proc, 5), block_elements=0)


# --- batches ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method,opts,fused", [("ode-euler", {}, False), ("heun", {}, False),
                                               ("ddim", {"eta": 0.0}, False), ("ode-euler", {}, True)])
def test_batches_equal_one_batch_for_deterministic_methods(method, opts, fused):
    proc, target = VP(), ring()
    x_init = randn(103, 2)
    score = exact_score(target, proc)
    whole = sample(score, proc, x_init, 12, method, fused=fused, **opts)
    for bs in (1, 10, 50, 103, 500):
        assert torch.equal(sample(score, proc, x_init, 12, method, batch_size=bs, fused=fused, **opts), whole)


def test_batches_of_a_stochastic_method_use_the_generator_batch_after_batch():
    proc, target = VP(), ring()
    x_init = randn(25, 2)
    score = exact_score(target, proc)
    batched = sample(score, proc, x_init, 8, "em", generator=gen(), batch_size=10)
    g = gen()
    by_hand = torch.cat([sample(score, proc, x_init[s:s + 10], 8, "em", generator=g) for s in (0, 10, 20)])
    assert torch.equal(batched, by_hand)
    assert torch.equal(sample(score, proc, x_init, 8, "em", generator=gen(), batch_size=10, fused=True), by_hand)
    x, traj = sample(score, proc, x_init, 8, "em", generator=gen(), batch_size=10, trajectory=True)
    assert traj.xs.shape[1] == 10  # the first batch's particles
    torch.testing.assert_close(traj.xs[-1], x[:10])
    with pytest.raises(ValueError, match="batch_size"):
        sample(score, proc, x_init, 8, "em", batch_size=0)


# --- CUDA: the captured step --------------------------------------------------------------------------------------------
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (the CUDA-graph path)")


@cuda
def test_cuda_graph_ode_matches_eager():
    proc, d = VP(), 512
    target = TwoModeMixture(d, 0.7, 0.3)
    x_init = randn(256, d).cuda()
    for score in (exact_score(target, proc), lambda x, t: target.score(x, t, proc)):
        eager = sample(score, proc, x_init, 30, "ode-euler")
        fused = sample(score, proc, x_init, 30, "ode-euler", fused=True)
        torch.testing.assert_close(fused, eager, rtol=1e-4, atol=1e-4)


@cuda
def test_cuda_graph_em_is_reproducible_and_has_the_right_law():
    proc, d, n = VP(), 64, 4000
    target = TwoModeMixture(d, 0.7, 0.3)
    score = exact_score(target, proc)
    x_init = randn(n, d).cuda()
    g = lambda: torch.Generator(device="cuda").manual_seed(5)  # noqa: E731
    a = sample(score, proc, x_init, 200, "em", generator=g(), fused=True)
    b = sample(score, proc, x_init, 200, "em", generator=g(), fused=True)
    assert torch.equal(a, b)
    p_hat = TwoModeMixture.mode_weight(a)
    assert abs(p_hat - 0.7) < 5 * math.sqrt(0.7 * 0.3 / n)
    assert abs(TwoModeMixture.within_mode_var(a) - 0.3) < 0.05


@cuda
def test_cuda_graph_falls_back_when_the_score_cannot_be_captured():
    proc, target = VP(), TwoModeMixture(8, 0.5, 1.0)

    def syncing(x, t):
        float(x.sum())  # a host sync: not allowed while capturing
        return target.score(x, t, proc)

    x_init = randn(16, 8).cuda()
    with pytest.warns(RuntimeWarning, match="CUDA graph"):
        fused = sample(syncing, proc, x_init, 10, "ode-euler", fused=True)
    torch.testing.assert_close(fused, sample(syncing, proc, x_init, 10, "ode-euler"))


@pytest.mark.parametrize("method", ["em", "ode-euler"])
@pytest.mark.parametrize("affine", [False, True])
def test_the_captured_step_run_eagerly_on_the_cpu_matches_the_sampler(method, affine):
    """The CUDA path's step (device step counter, tensor times) checked on the CPU, without a graph."""
    from diffviz.fused import _CounterStep
    from diffviz.samplers import _coefs

    proc, d = VP(), 40
    target = TwoModeMixture(d, 0.7, 0.3)
    score = exact_score(target, proc) if affine else (lambda x, t: target.score(x, t, proc))
    x_init, grid = randn(64, d), uniform(proc, 20)
    step = _CounterStep(score, x_init, grid, _coefs(proc, grid, method), method, gen(), check=True)
    for _ in range(20):
        step()
    step.raise_if_diverged(grid.tolist(), "test")
    eager = sample(score, proc, x_init, grid, method, generator=gen())
    torch.testing.assert_close(step.x, eager, rtol=2e-5, atol=2e-5)
    assert int(step.idx) == 20 and int(step.first_bad) == -1
    bad = _CounterStep(lambda x, t: x * float("nan"), x_init, grid, _coefs(proc, grid, method), method, gen(), True)
    for _ in range(3):
        bad()
    with pytest.raises(FloatingPointError, match="step 1 of 20"):
        bad.raise_if_diverged(grid.tolist(), "test")


# --- issue 12: runaway, overflow and score output checks in the fused loops --------------------------------------
@pytest.mark.parametrize("method", ["em", "ode-euler"])
@pytest.mark.parametrize("affine", [False, True])
def test_fused_runaway_warns_once_like_the_eager_sampler(method, affine):
    proc = VE(sigma_T=1000.0)
    x_init = proc.prior(4).sample(500, generator=gen(), dtype=F64)
    score = exact_score(TwoModeMixture(4, 0.5, 1.0), proc)
    if not affine:
        score = score.__call__  # the plain score: the row-blocked loop
    with pytest.warns(DivergenceWarning, match=r"ran away at step 2 of 2 \(t = 0\)") as rec:
        sample_fused(score, proc, x_init, uniform(proc, 2), method=method, generator=gen(), block_elements=64)
    assert len([w for w in rec if issubclass(w.category, DivergenceWarning)]) == 1
    with pytest.warns(DivergenceWarning, match=r"ran away at step 2 of 2 \(t = 0\)") as eager_warned:
        sample(score, proc, x_init, 2, method, generator=gen())
    assert len(eager_warned) >= 1


@pytest.mark.parametrize("affine", [False, True])
def test_fused_quiet_on_a_correct_run_and_overflow_names_the_step(affine):
    import warnings

    proc = VE(sigma_T=80.0)
    score = exact_score(TwoModeMixture(4, 0.5, 1.0), proc)
    if not affine:
        score = score.__call__
    x_init = proc.prior(4).sample(500, generator=gen(), dtype=F64)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergenceWarning)
        sample(score, proc, x_init, 100, "em", generator=gen(), fused=True)
    big = VE(sigma_T=1e30)
    score = exact_score(TwoModeMixture(4, 0.5, 1.0), big)
    if not affine:
        score = score.__call__
    with pytest.raises(FloatingPointError, match=r"at step 1 of 10 \(t = "):
        sample(score, big, randn(8, 4), 10, "ode-euler", fused=True)


def test_fused_score_output_checked_at_every_evaluation():
    proc, x_init = VP(), randn(6, 4, dtype=F64)
    calls = {"n": 0}

    def later_bad(x, t):  # (n, 1) after the first call: used to be broadcast silently
        calls["n"] += 1
        return -x if calls["n"] == 1 else -x[:, :1]
    with pytest.raises(ValueError, match=r"at step 2 of 4 \(t = .*got shape \(6, 1\)"):
        sample(later_bad, proc, x_init, 4, "ode-euler", fused=True)
    score = exact_score(TwoModeMixture(4, 0.5, 1.0), proc)
    good = score.affine
    calls["n"] = 0

    def bad_affine(x, t):  # a shift that broadcasts beyond x after the first call
        calls["n"] += 1
        coef, shift = good(x, t)
        return (coef, shift) if calls["n"] == 1 else (coef, shift[:, :, None])
    score.affine = bad_affine
    with pytest.raises(ValueError, match=r"score.affine\(x, t\) at step 2 of 4 .*shift \(6, 1, 1\)"):
        sample(score, proc, x_init, 4, "em", generator=gen(), fused=True)


def test_the_captured_step_reports_runaway_on_the_cpu():
    """The CUDA path's max|x| bookkeeping (first non-finite step, first runaway step) run eagerly on the CPU."""
    from diffviz.fused import _CounterStep
    from diffviz.samplers import _coefs

    proc = VP()
    x_init, grid = randn(16, 3, dtype=F64), uniform(proc, 10)
    far = _CounterStep(lambda x, t: torch.full_like(x, 1e30), x_init, grid, _coefs(proc, grid, "em"), "em", gen(),
                       True)
    for _ in range(3):
        far()
    with pytest.warns(DivergenceWarning, match=r"test: the samples ran away at step 1 of 10 \(t = 0\.9001\)"):
        far.raise_if_diverged(grid.tolist(), "test")
    with pytest.raises(ValueError, match="shaped like x"):
        _CounterStep(lambda x, t: x[:, :1], x_init, grid, _coefs(proc, grid, "em"), "em", gen(), True)()
