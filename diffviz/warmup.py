"""Warm a fresh environment (Binder's postBuild, a lecture machine): `python -m diffviz.warmup`.

1. imports every diffviz module, dashboards included (checks the install, writes the bytecode caches);
2. trains, into the model cache, every score network the notebooks train with their default parameters
   (FAST=True), under exactly the same calls, so the notebooks load them instead of training:
     00_tour            train_score(toy("moons"), VP(), steps=600, seed=0)
     01_diffusion_time  E.train_models(E.make_target("moons", 2.0), [0.3, 0.6, 1.0], steps=300, hidden=64, seed=0)
     05_images          I.train_digits(T, steps=400, base=16, batch_size=64, seed=0) for T in (0.3, 1.0)
   `--full` warms the lecture-quality runs (FAST=False) instead; these take much longer.
   The dashboards themselves train nothing (exact scores or fits made in the notebook), so they need no model.

Idempotent: a model already in the cache is loaded, not retrained (the cache key holds everything that defines
it). Cache folder: $DIFFVIZ_CACHE_DIR, else ~/.cache/diffviz (binder/start sets it). Prints what it did; exit
status 1 when a step failed (the others still run).

The calls above mirror the notebooks' parameter cells and FAST blocks: change both together.
tests/test_binder_env.py checks that notebooks run after the warm-up add no model to the cache.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time


def _tour(full: bool, device):
    from . import VP
    from .targets import toy
    from .train import train_score

    return [train_score(toy("moons"), VP(), steps=1500 if full else 600, seed=0, device=device, progress=False)]


def _diffusion_time(full: bool, device):
    from .experiments import diffusion_time as E

    target = E.make_target("moons", 2.0)
    horizons = sorted(set([0.2, 0.3, 0.4, 0.6, 0.8, 1.0] if full else [0.3, 0.6, 1.0]) | {0.3})
    models = E.train_models(target, horizons, steps=3000 if full else 300, hidden=128 if full else 64, seed=0,
                            device=device)
    return list(models.values())


def _images(full: bool, device):
    from .experiments import images as I

    steps, base, batch = (6000, 32, 128) if full else (400, 16, 64)
    return [I.train_digits(T, steps=steps, base=base, batch_size=batch, seed=0, device=device) for T in (0.3, 1.0)]


# notebook -> (what it trains, the function doing the same calls)
JOBS = {
    "00_tour": ("score MLP on the moons toy under VP", _tour),
    "01_diffusion_time": ("one score MLP per horizon T on the scaled moons toy", _diffusion_time),
    "05_images": ("a small U-Net on the 8x8 digits, short and long horizon", _images),
}


def import_all() -> list[str]:
    """Import diffviz and every submodule; the names of those that failed, with the error."""
    import diffviz

    failed = []
    for mod in pkgutil.walk_packages(diffviz.__path__, prefix="diffviz."):
        if mod.name in ("diffviz.warmup", "diffviz.__main__"):
            continue
        try:
            importlib.import_module(mod.name)
        except Exception as err:  # report and go on: the warm-up must not hide which module is broken
            failed.append(f"{mod.name}: {type(err).__name__}: {err}")
    return failed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffviz.warmup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="warm the lecture-quality runs (FAST=False): slow")
    parser.add_argument("--only", nargs="+", choices=sorted(JOBS), metavar="NOTEBOOK",
                        help=f"only these notebooks' models ({', '.join(JOBS)})")
    parser.add_argument("--skip-models", action="store_true", help="only import the package")
    parser.add_argument("--device", default="cpu", help="device to train on (default cpu; 'auto' picks CUDA)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: fastest on small CPUs)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    t = time.perf_counter()
    failed = import_all()
    import torch

    import diffviz
    from .cache import Cache

    torch.set_num_threads(max(1, args.threads))
    device = diffviz.resolve_device(args.device)
    cache = Cache()
    print(f"diffviz {diffviz.__version__} (torch {torch.__version__}, device {device}): imported every module "
          f"in {time.perf_counter() - t:.1f} s" + (f"; {len(failed)} failed" if failed else ""), flush=True)
    for line in failed:
        print(f"  import failed: {line}", flush=True)
    status = 1 if failed else 0
    if args.skip_models:
        return status

    print(f"model cache: {cache.directory} ({len(cache.entries())} entries); "
          f"{'lecture-quality (FAST=False)' if args.full else 'default (FAST=True)'} models", flush=True)
    for name in args.only or list(JOBS):
        what, job = JOBS[name]
        t = time.perf_counter()
        try:
            models = job(args.full, device)
        except Exception as err:
            print(f"  {name}: FAILED ({type(err).__name__}: {err})", flush=True)
            status = 1
            continue
        loaded = sum(bool(m.history.from_cache) for m in models)
        trained = len(models) - loaded
        print(f"  {name}: {what}: {len(models)} model(s), {trained} trained, {loaded} already cached "
              f"({time.perf_counter() - t:.1f} s)", flush=True)
    print(f"warm-up done in {time.perf_counter() - start:.1f} s; cache {cache.directory} holds "
          f"{len(cache.entries())} entries", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
