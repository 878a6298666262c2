"""Score networks: a time-conditioned MLP for vectors, a tiny U-Net for small images, and `ScoreModel`.

A network predicts one of three equivalent quantities for x_t = m x_0 + s z (`convert` is the only place
that maps between them):

    score = -eps / s        x0 = (x_t - s eps) / m        eps = (x_t - m x0) / s

`ScoreModel(net, process, parametrization)` turns a network into the score interface every sampler uses,
`score(x, t) -> tensor like x`, with preconditioning (Karras et al. 2022, EDM):

- input   c_in = 1 / sqrt(m^2 data_var + s^2): the network sees x_t scaled to unit mean square per
  coordinate, so a VE state at sigma = 50 reaches the network at the same scale as one at sigma = 0.01;
  data_var is the data's mean square per coordinate, E[x_0^2] averaged over coordinates;
- noise   c_noise = log(sigma) / 4 with sigma = s/m: the network is conditioned on the noise level, not
  on t, so the same rule serves VP, sub-VP and VE.

A network is any `nn.Module` mapping (x_in (n, ...), c_noise (n,)) -> tensor like x_in, with a `key()`.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .checks import check_choice, check_int, check_positive
from .processes import as_time, expand_as

PARAMETRIZATIONS = ("score", "eps", "x0")
TIME_EMBEDDINGS = ("fourier", "sinusoidal")


def convert(value: torch.Tensor, xt: torch.Tensor, m, s, *, source: str, target: str) -> torch.Tensor:
    """Map a prediction between parametrizations for x_t = m x0 + s eps: score = -eps/s, x0 = (x_t - s eps)/m.

    m and s are numbers or tensors broadcasting against x_t (use `processes.expand_as` for per-sample ones).
    """
    check_choice("source", source, PARAMETRIZATIONS)
    check_choice("target", target, PARAMETRIZATIONS)
    if source == target:
        return value
    if source == "eps":
        eps = value
    elif source == "score":
        eps = -s * value
    else:  # x0
        eps = (xt - m * value) / s
    if target == "eps":
        return eps
    if target == "score":
        return -eps / s
    return (xt - s * eps) / m


# --- noise-level embeddings --------------------------------------------------------------------------

class TimeEmbedding(nn.Module):
    """Features of the scalar noise condition c (n,) -> (n, dim): [c, sin(2 pi w c), cos(2 pi w c)].

    "fourier": Gaussian Fourier features, w ~ N(0, scale^2) drawn once from a fixed seed (Tancik et al. 2020;
    Song et al. 2021 use them on log sigma); "sinusoidal": w geometric from 1/(2 scale) to 4 scale
    (Transformer-style). The frequencies are a fixed buffer, part of the architecture, not trained.
    """

    def __init__(self, dim: int = 32, kind: str = "fourier", scale: float = 1.0):
        super().__init__()
        self.dim = check_int("dim", dim, 3)
        self.kind = check_choice("time_embedding", kind, TIME_EMBEDDINGS)
        self.scale = check_positive("scale", scale)
        n_freq = (self.dim - 1) // 2
        if kind == "fourier":
            gen = torch.Generator().manual_seed(0)  # fixed: the frequencies define the architecture
            freqs = torch.randn(n_freq, generator=gen, dtype=torch.float64) * self.scale
        else:
            freqs = torch.logspace(math.log10(0.5 / self.scale), math.log10(4.0 * self.scale), n_freq,
                                   dtype=torch.float64)
        self.register_buffer("freqs", freqs.float())
        self.n_pad = self.dim - 1 - 2 * n_freq

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        arg = 2 * math.pi * c[:, None] * self.freqs.to(c.dtype)
        parts = [c[:, None], torch.sin(arg), torch.cos(arg)]
        if self.n_pad:
            parts.append(torch.zeros(c.shape[0], self.n_pad, dtype=c.dtype, device=c.device))
        return torch.cat(parts, dim=1)

    def key(self) -> dict:
        return {"time_embedding": self.kind, "emb_dim": self.dim, "emb_scale": self.scale}


# --- networks ----------------------------------------------------------------------------------------

class ScoreMLP(nn.Module):
    """Residual MLP f(x, c) for x of shape (n, d) (or (n, *shape) flattening to d), conditioned on c (n,).

    Input features phi(x) = [x, sin(2 pi B x), cos(2 pi B x)], B (x_features, d) ~ N(0, x_scale^2) fixed
    (random Fourier features, Tancik et al. 2020): without them an MLP learns the angular structure of
    low-dimensional toys very slowly (spectral bias; 8 Gaussians on a ring, 1000 steps: relative score
    error 0.15 without, 0.015 with). Default x_features: 32 for d <= 8, else 0 (plain x).
    h = W_in phi(x) + E(c);  depth times  h <- h + W_2 silu(W_1 silu(h) + U_k E(c));  out = W_out silu(h).
    """

    def __init__(self, d: int, hidden: int = 128, depth: int = 3, time_embedding: str = "fourier",
                 emb_dim: int = 32, emb_scale: float = 1.0, x_features: int | None = None, x_scale: float = 0.5):
        super().__init__()
        self.d = check_int("d", d, 1)
        self.hidden = check_int("hidden", hidden, 1)
        self.depth = check_int("depth", depth, 1)
        self.x_features = (32 if self.d <= 8 else 0) if x_features is None else check_int("x_features", x_features, 0)
        self.x_scale = check_positive("x_scale", x_scale)
        gen = torch.Generator().manual_seed(1)  # fixed: the projection defines the architecture
        proj = torch.randn(self.d, self.x_features, generator=gen, dtype=torch.float64) * self.x_scale
        self.register_buffer("x_proj", proj.float())
        self.embed = TimeEmbedding(emb_dim, time_embedding, emb_scale)
        self.temb = nn.Sequential(nn.Linear(emb_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.inp = nn.Linear(self.d + 2 * self.x_features, hidden)
        self.cond = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(self.depth))
        self.lin1 = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(self.depth))
        self.lin2 = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(self.depth))
        self.out = nn.Linear(hidden, self.d)

    def features(self, flat: torch.Tensor) -> torch.Tensor:
        """phi(x) = [x, sin(2 pi B x), cos(2 pi B x)] for x of shape (n, d)."""
        if not self.x_features:
            return flat
        arg = 2 * math.pi * flat @ self.x_proj.to(flat.dtype)
        return torch.cat([flat, torch.sin(arg), torch.cos(arg)], dim=1)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != self.d:
            raise ValueError(f"x must flatten to d={self.d} features per sample, got shape {tuple(x.shape)}")
        e = self.temb(self.embed(c))
        h = self.inp(self.features(flat)) + e
        act = nn.functional.silu
        for cond, lin1, lin2 in zip(self.cond, self.lin1, self.lin2):
            h = h + lin2(act(lin1(act(h)) + cond(e)))
        return self.out(act(h)).reshape(x.shape)

    def key(self) -> dict:
        return {"net": "ScoreMLP", "d": self.d, "hidden": self.hidden, "depth": self.depth,
                "x_features": self.x_features, "x_scale": self.x_scale, **self.embed.key()}


def _groups(channels: int) -> int:
    """Largest of 8, 4, 2, 1 that divides `channels` (GroupNorm groups)."""
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


class _ResBlock(nn.Module):
    """h = conv(silu(norm(x)));  FiLM: h = norm(h) (1 + a(e)) + b(e);  out = x' + conv(silu(h))."""

    def __init__(self, cin: int, cout: int, emb: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.film = nn.Linear(emb, 2 * cout)
        self.norm2 = nn.GroupNorm(_groups(cout), cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, e):
        act = nn.functional.silu
        h = self.conv1(act(self.norm1(x)))
        scale, shift = self.film(e)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(act(h))


class ScoreConvNet(nn.Module):
    """Tiny U-Net for images (n, channels, H, W) with even H, W (e.g. 8x8 digits), FiLM-conditioned on c (n,).

    8x8: in-conv -> ResBlock(base) -> down to 4x4 -> ResBlock(2 base) x 2 -> up to 8x8 -> concat skip
    -> ResBlock(base) -> out-conv. About 0.2 M parameters at base = 32.
    """

    def __init__(self, channels: int = 1, base: int = 32, time_embedding: str = "fourier", emb_dim: int = 32,
                 emb_scale: float = 1.0):
        super().__init__()
        self.channels = check_int("channels", channels, 1)
        self.base = check_int("base", base, 1)
        b, e = self.base, 4 * self.base
        self.embed = TimeEmbedding(emb_dim, time_embedding, emb_scale)
        self.temb = nn.Sequential(nn.Linear(emb_dim, e), nn.SiLU(), nn.Linear(e, e))
        self.inp = nn.Conv2d(self.channels, b, 3, padding=1)
        self.enc = _ResBlock(b, b, e)
        self.down = nn.Conv2d(b, 2 * b, 3, stride=2, padding=1)
        self.mid1 = _ResBlock(2 * b, 2 * b, e)
        self.mid2 = _ResBlock(2 * b, 2 * b, e)
        self.up = nn.Conv2d(2 * b, b, 3, padding=1)
        self.dec = _ResBlock(2 * b, b, e)
        self.norm = nn.GroupNorm(_groups(b), b)
        self.out = nn.Conv2d(b, self.channels, 3, padding=1)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels or x.shape[2] % 2 or x.shape[3] % 2:
            raise ValueError(f"x must have shape (n, {self.channels}, H, W) with even H and W, "
                             f"got {tuple(x.shape)}")
        e = self.temb(self.embed(c))
        h0 = self.enc(self.inp(x), e)
        h = self.mid2(self.mid1(self.down(h0), e), e)
        h = self.up(nn.functional.interpolate(h, scale_factor=2.0, mode="nearest"))
        h = self.dec(torch.cat([h, h0], dim=1), e)
        return self.out(nn.functional.silu(self.norm(h)))

    def key(self) -> dict:
        return {"net": "ScoreConvNet", "channels": self.channels, "base": self.base, **self.embed.key()}


def default_net(shape) -> nn.Module:
    """The default network for samples of event shape `shape`: ScoreConvNet for (C, H, W), else ScoreMLP(d)."""
    shape = tuple(int(k) for k in shape)
    if len(shape) == 3 and shape[1] % 2 == 0 and shape[2] % 2 == 0:
        return ScoreConvNet(channels=shape[0])
    return ScoreMLP(math.prod(shape))


# --- the score interface -----------------------------------------------------------------------------

class ScoreModel(nn.Module):
    """score(x, t) -> tensor like x from a network predicting `parametrization` ("eps", "score" or "x0").

    The network sees c_in x with c_in = 1/sqrt(m^2 data_var + s^2) and c_noise = log(s/m)/4 (clamped to
    [-10, 10], so that s = 0 or m = 0 stay finite); its raw output is the parametrization's quantity, mapped
    by `convert`. t is a Python float or a tensor of shape () or (n,). x may live on another device or in
    another dtype than the network: the result comes back like x. Autograd flows through when the network's
    parameters require grad (training) or x does (e.g. divergences); trained models come back frozen.
    """

    def __init__(self, net: nn.Module, process, parametrization: str = "eps", data_var: float = 1.0):
        super().__init__()
        self.net = net
        self.process = process
        self.parametrization = check_choice("parametrization", parametrization, PARAMETRIZATIONS)
        self.register_buffer("data_var", torch.tensor(check_positive("data_var", data_var), dtype=torch.float64))
        self.history = None  # set by diffviz.train.train_score

    def _coefficients(self, t, x: torch.Tensor):
        """Per-sample (m, s, c_in) shaped to broadcast against x, and c_noise of shape (n,), in float64."""
        t = as_time(t).to(device=x.device)
        if t.dim() > 1 or (t.dim() == 1 and t.shape[0] != x.shape[0]):
            raise ValueError(f"t must be a float or a tensor of shape () or ({x.shape[0]},), "
                             f"got shape {tuple(t.shape)}")
        m = self.process.mean_scale(t).to(torch.float64)
        s = self.process.std(t).to(torch.float64)
        c_in = torch.rsqrt(m ** 2 * self.data_var.to(x.device) + s ** 2)
        c_noise = (0.25 * (torch.log(s.clamp_min(1e-30)) - torch.log(m.clamp_min(1e-30)))).clamp(-10.0, 10.0)
        c_noise = c_noise.expand(x.shape[0]) if c_noise.dim() == 0 else c_noise
        return expand_as(m, x), expand_as(s, x), expand_as(c_in, x), c_noise

    def predict(self, x: torch.Tensor, t, what: str = "score") -> torch.Tensor:
        """The model's estimate of `what` in {"score", "eps", "x0"} at (x, t), shaped, typed and placed like x."""
        check_choice("what", what, PARAMETRIZATIONS)
        param = next(self.net.parameters(), None)
        dev = param.device if param is not None else x.device
        dtype = param.dtype if param is not None else x.dtype
        xd = x.to(dev)
        m, s, c_in, c_noise = self._coefficients(t, xd)
        raw = self.net((c_in.to(xd.dtype) * xd).to(dtype), c_noise.to(dtype))
        work = torch.promote_types(dtype, x.dtype)
        out = convert(raw.to(work), xd.to(work), m.to(work), s.to(work), source=self.parametrization, target=what)
        return out.to(device=x.device, dtype=x.dtype)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        """grad_x log p_t(x) estimated by the network."""
        return self.predict(x, t, "score")

    def eps(self, x: torch.Tensor, t) -> torch.Tensor:
        """Noise estimate E[z | x_t = x] = -s score."""
        return self.predict(x, t, "eps")

    def x0(self, x: torch.Tensor, t) -> torch.Tensor:
        """Denoiser E[x_0 | x_t = x] = (x + s^2 score) / m (Tweedie)."""
        return self.predict(x, t, "x0")

    def key(self) -> dict:
        return {"model": "ScoreModel", "parametrization": self.parametrization, "net": self.net.key(),
                "process": self.process.key()}

    def extra_repr(self) -> str:
        return f"parametrization={self.parametrization!r}, process={self.process!r}"
