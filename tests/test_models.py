"""Score networks and the ScoreModel wrapper: parametrizations, preconditioning, shapes, keys."""
import itertools

import pytest
import torch
from torch import nn

from diffviz.models import (PARAMETRIZATIONS, ScoreConvNet, ScoreMLP, ScoreModel, TimeEmbedding, convert,
                            default_net)
from diffviz.processes import VE, VP, expand_as


def _triple(n=64, d=3, seed=0):
    """x_t = m x0 + s eps in float64 with per-sample m, s of shape (n, 1)."""
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, d, generator=g, dtype=torch.float64)
    eps = torch.randn(n, d, generator=g, dtype=torch.float64)
    m = 0.05 + torch.rand(n, 1, generator=g, dtype=torch.float64)
    s = 0.05 + torch.rand(n, 1, generator=g, dtype=torch.float64)
    return x0, eps, m * x0 + s * eps, m, s


@pytest.mark.parametrize("source,target", list(itertools.permutations(PARAMETRIZATIONS, 2)))
def test_conversions_are_mutually_inverse(source, target):
    _, _, xt, m, s = _triple()
    value = torch.randn(xt.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    there = convert(value, xt, m, s, source=source, target=target)
    back = convert(there, xt, m, s, source=target, target=source)
    torch.testing.assert_close(back, value, rtol=1e-12, atol=1e-12)


def test_conversions_match_the_definitions():
    x0, eps, xt, m, s = _triple()
    torch.testing.assert_close(convert(eps, xt, m, s, source="eps", target="x0"), x0, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(convert(x0, xt, m, s, source="x0", target="eps"), eps, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(convert(eps, xt, m, s, source="eps", target="score"), -eps / s)
    assert convert(eps, xt, m, s, source="eps", target="eps") is eps
    with pytest.raises(ValueError, match="source"):
        convert(eps, xt, m, s, source="noise", target="eps")


def test_time_embedding_shapes_and_choices():
    c = torch.linspace(-1, 1, 5)
    for kind in ("fourier", "sinusoidal"):
        for dim in (3, 32, 33):
            assert TimeEmbedding(dim, kind)(c).shape == (5, dim)
    with pytest.raises(ValueError, match="time_embedding"):
        TimeEmbedding(32, "linear")


def test_networks_keep_shapes_and_reject_bad_ones():
    c = torch.zeros(4)
    mlp = ScoreMLP(2, hidden=16, depth=2)
    assert mlp(torch.randn(4, 2), c).shape == (4, 2)
    assert ScoreMLP(64, hidden=16, depth=1)(torch.randn(4, 1, 8, 8), c).shape == (4, 1, 8, 8)
    with pytest.raises(ValueError, match="d=2"):
        mlp(torch.randn(4, 3), c)
    conv = ScoreConvNet(channels=1, base=8)
    assert conv(torch.randn(4, 1, 8, 8), c).shape == (4, 1, 8, 8)
    with pytest.raises(ValueError, match="even"):
        conv(torch.randn(4, 1, 7, 7), c)
    assert isinstance(default_net((1, 8, 8)), ScoreConvNet)
    assert isinstance(default_net((2,)), ScoreMLP)
    with pytest.raises(ValueError, match="hidden"):
        ScoreMLP(2, hidden=0)


def test_keys_describe_the_architecture():
    a, b = ScoreMLP(2, hidden=16).key(), ScoreMLP(2, hidden=32).key()
    assert a["net"] == "ScoreMLP" and a["hidden"] == 16 and a != b
    assert ScoreMLP(2, time_embedding="sinusoidal").key()["time_embedding"] == "sinusoidal"
    assert ScoreConvNet(base=8).key() == {"net": "ScoreConvNet", "channels": 1, "base": 8,
                                           "time_embedding": "fourier", "emb_dim": 32, "emb_scale": 1.0}
    key = ScoreModel(ScoreMLP(2, hidden=16), VP(), "x0").key()
    assert key["parametrization"] == "x0" and key["process"] == VP().key() and key["net"] == a


class _Spy(nn.Module):
    """Records what the network sees; predicts eps = 0.3 x_in (any fixed map will do)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.3))
        self.seen = None

    def forward(self, x, c):
        self.seen = (x.detach().clone(), c.detach().clone())
        return self.w * x


def test_time_may_be_float_scalar_or_per_sample():
    model = ScoreModel(ScoreMLP(2, hidden=16, depth=1), VP())
    x = torch.randn(6, 2)
    ref = model(x, 0.4)
    torch.testing.assert_close(model(x, torch.tensor(0.4)), ref)
    torch.testing.assert_close(model(x, torch.full((6,), 0.4, dtype=torch.float64)), ref)
    assert model(x, torch.linspace(0.1, 1, 6)).shape == x.shape
    with pytest.raises(ValueError, match="shape"):
        model(x, torch.ones(5))
    out = model(x.double(), 0.4)  # result comes back like x
    assert out.dtype == torch.float64 and out.shape == x.shape


def test_input_preconditioning_gives_unit_scale_and_log_sigma_condition():
    """c_in x_t has mean square 1 per coordinate at every noise level, also for VE at sigma = 50."""
    g = torch.Generator().manual_seed(0)
    x0 = 3.0 * torch.randn(20000, 2, generator=g, dtype=torch.float64)  # data_var = 9
    for process, t in ((VE(), 1.0), (VE(), 0.0), (VP(), 0.5), (VP(), 1e-3)):
        spy = _Spy()
        model = ScoreModel(spy, process, data_var=9.0)
        xt, _ = process.marginal(x0, t, generator=g)
        model(xt, t)
        x_in, c = spy.seen
        assert abs(x_in.pow(2).mean().item() - 1.0) < 0.05
        sigma = (process.std(t) / process.mean_scale(t)).item()
        torch.testing.assert_close(c, torch.full_like(c, torch.log(torch.tensor(sigma)).item() / 4))


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
def test_score_eps_x0_views_agree(parametrization):
    """eps = -s score and x0 = (x + s^2 score)/m (Tweedie) whatever the network predicts."""
    process = VP()
    model = ScoreModel(ScoreMLP(2, hidden=16, depth=1), process, parametrization).double()
    x = torch.randn(8, 2, dtype=torch.float64)
    t = torch.linspace(0.05, 0.9, 8, dtype=torch.float64)
    m, s = expand_as(process.mean_scale(t), x), expand_as(process.std(t), x)
    score = model(x, t)
    torch.testing.assert_close(model.eps(x, t), -s * score)
    torch.testing.assert_close(model.x0(x, t), (x + s ** 2 * score) / m)
