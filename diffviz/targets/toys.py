"""2-D toy data sets as Gaussian mixtures of small "beads", so that every noised score is exact.

These are bead approximations of the usual toys (two moons, concentric rings, checkerboard, swiss roll,
eight Gaussians): the shape is covered by K small isotropic Gaussians of standard deviation `std`, laid
at equal spacing along curves (or on a grid inside squares), with weights proportional to the length (or
area) each bead covers. The whole mixture is centered and scaled so that its mean is 0 and its variance,
averaged over the two coordinates, is 1; `std` is given in these final units.
"""
from __future__ import annotations

import math

import torch

from ..checks import check_choice, check_int, check_range
from .mixture import GaussianMixture

TOY_NAMES = ("moons", "rings", "checkerboard", "swissroll", "8gaussians")

# default (number of beads, bead std in final units); std / spacing ~ 0.5-0.7 gives a smooth shape
_DEFAULTS = {
    "moons": (50, 0.09),
    "rings": (120, 0.08),
    "checkerboard": (72, 0.12),
    "swissroll": (100, 0.06),
    "8gaussians": (8, 0.12),
}


def _even_along(points: torch.Tensor, n: int) -> torch.Tensor:
    """n points at equal arc length along the densely sampled polyline `points` (M, 2)."""
    seg = (points[1:] - points[:-1]).norm(dim=1)
    arc = torch.cat([torch.zeros(1, dtype=torch.float64), seg.cumsum(0)])
    targets = torch.linspace(0.0, arc[-1].item(), n, dtype=torch.float64)
    idx = torch.searchsorted(arc, targets).clamp(1, len(arc) - 1)
    frac = ((targets - arc[idx - 1]) / (arc[idx] - arc[idx - 1]).clamp_min(1e-300))[:, None]
    return points[idx - 1] + frac * (points[idx] - points[idx - 1])


def _beads(name: str, n_beads: int):
    """Bead centers (K, 2) and weights (K,) in raw units, before centering and scaling."""
    if name == "moons":
        half = max(1, n_beads // 2)
        th = torch.linspace(0.0, math.pi, half, dtype=torch.float64)
        outer = torch.stack([torch.cos(th), torch.sin(th)], 1)
        inner = torch.stack([1 - torch.cos(th), 0.5 - torch.sin(th)], 1)
        centers = torch.cat([outer, inner])
        return centers, torch.ones(len(centers), dtype=torch.float64)
    if name == "rings":
        radii = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
        counts = [max(3, round(n_beads * r / radii.sum().item())) for r in radii.tolist()]
        centers, weights = [], []
        for r, c in zip(radii.tolist(), counts):
            th = torch.arange(c, dtype=torch.float64) * (2 * math.pi / c)
            centers.append(r * torch.stack([torch.cos(th), torch.sin(th)], 1))
            weights.append(torch.full((c,), 2 * math.pi * r / c, dtype=torch.float64))  # arc length per bead
        return torch.cat(centers), torch.cat(weights)
    if name == "checkerboard":
        k = max(1, round(math.sqrt(n_beads / 8)))  # k x k beads in each of the 8 dark squares of a 4 x 4 board
        offs = (torch.arange(k, dtype=torch.float64) + 0.5) / k
        centers = []
        for i in range(4):
            for j in range(4):
                if (i + j) % 2 == 0:
                    gx, gy = torch.meshgrid(i + offs, j + offs, indexing="ij")
                    centers.append(torch.stack([gx.reshape(-1), gy.reshape(-1)], 1))
        centers = torch.cat(centers)
        return centers, torch.ones(len(centers), dtype=torch.float64)
    if name == "swissroll":
        t = torch.linspace(1.5 * math.pi, 4.5 * math.pi, 4000, dtype=torch.float64)
        curve = torch.stack([t * torch.cos(t), t * torch.sin(t)], 1)
        centers = _even_along(curve, n_beads)
        return centers, torch.ones(n_beads, dtype=torch.float64)
    # 8gaussians (n_beads Gaussians evenly on a circle)
    th = torch.arange(n_beads, dtype=torch.float64) * (2 * math.pi / n_beads)
    return torch.stack([torch.cos(th), torch.sin(th)], 1), torch.ones(n_beads, dtype=torch.float64)


def toy(name: str, *, n_beads: int | None = None, std: float | None = None) -> GaussianMixture:
    """A 2-D toy as an isotropic GaussianMixture of beads: "moons", "rings", "checkerboard", "swissroll",
    "8gaussians"; mean 0, average coordinate variance 1, bead standard deviation `std` (final units)."""
    name = check_choice("name", name, set(TOY_NAMES))
    default_n, default_std = _DEFAULTS[name]
    n_beads = check_int("n_beads", default_n if n_beads is None else n_beads, low=2)
    std = check_range("std", default_std if std is None else std, 0.0, 1.0, low_open=True, high_open=True)
    centers, weights = _beads(name, n_beads)
    weights = weights / weights.sum()
    centers = centers - weights @ centers
    # total variance per coordinate: (c^2 sum_k pi_k |mu_k|^2 + 2 std^2) / 2 = 1
    spread = (weights * (centers ** 2).sum(1)).sum().item()
    c = math.sqrt((2.0 - 2.0 * std ** 2) / spread)
    covs = torch.full((len(weights),), std ** 2, dtype=torch.float64)
    return GaussianMixture(weights, c * centers, covs, name=f"toy:{name}")
