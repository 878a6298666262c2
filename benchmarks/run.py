"""diffviz benchmarks: one table, every figure measured in this run (see benchmarks/README.md).

    python benchmarks/run.py [--quick] [--device cpu|cuda|auto] [--threads 1] [--json PATH] [--notebooks]

Sections: the machine's limits (memory bandwidth from a large copy, Gaussian-noise draw rate); reverse
Euler–Maruyama and the Euler PF-ODE with exact scores on two problems, for diffviz (eager and fused) against a plain
NumPy loop and torchsde; step cost at large N·d as a fraction of the limits; scaling in N, d and steps (fitted
exponents); peak memory of a d = 10^6 run; dashboard update latency; notebook run times (--notebooks). Targets
are printed as PASS/FAIL lines after the table; nothing here is a timed test.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# problem sizes: (quick, full)
SIZES = {
    "gm": {"quick": dict(n=4096, steps=20), "full": dict(n=65536, steps=50)},
    "gm_matrix": {"quick": dict(n=2048, steps=20), "full": dict(n=10_000, steps=200)},
    "twomode": {"quick": dict(n=256, d=1024, steps=20), "full": dict(n=1024, d=4096, steps=50)},
    "large": {"quick": dict(n=512, d=8192, steps=4), "full": dict(n=2048, d=16384, steps=8)},
    "copy_elements": {"quick": 1 << 26, "full": 1 << 26},  # float32: 256 MiB per array
    "memory": {"quick": dict(n=16, d=10 ** 6, steps=2, batch=4), "full": dict(n=100, d=10 ** 6, steps=10, batch=10)},
    "scaling": {
        "quick": dict(n=(64, 128, 256), d=(512, 1024, 2048), steps=(5, 10, 20), base=dict(n=128, d=1024, steps=10)),
        "full": dict(n=(256, 512, 1024, 2048), d=(1024, 2048, 4096, 8192), steps=(10, 20, 40, 80),
                     base=dict(n=512, d=4096, steps=20)),
    },
}
TARGETS = {"vs_torchsde": 10.0, "vs_numpy": 5.0, "em_noise_fraction": 0.5, "ode_bandwidth_fraction": 0.3,
           "dashboard_ms": 150.0,
           "ceiling_fraction": 0.9,
           "sandbox_50_beads_ms": 300.0}  # sandbox with 50 beads "stays interactive": a click answered in < 0.3 s


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes (< 60 s), for the smoke test")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1: 2 shared cores)")
    p.add_argument("--json", metavar="PATH", help="also write every figure to PATH as JSON")
    p.add_argument("--notebooks", action="store_true", help="also time the notebooks with FAST=True (minutes)")
    p.add_argument("--memory-child", nargs=6, metavar=("VARIANT", "N", "D", "STEPS", "BATCH", "DEVICE"),
                   help=argparse.SUPPRESS)
    return p.parse_args(argv)


# --- helpers -----------------------------------------------------------------------------------------------------
class Table:
    """Rows (section, benchmark, value, unit, note), printed once at the end."""

    def __init__(self):
        self.rows = []

    def add(self, section, name, value, unit="", note=""):
        self.rows.append({"section": section, "benchmark": name, "value": value, "unit": unit, "note": note})
        print(f"  [{section}] {name}: {_fmt(value)} {unit}  {note}", file=sys.stderr, flush=True)
        return value

    def text(self) -> str:
        cells = [("section", "benchmark", "value", "unit", "note")]
        cells += [(r["section"], r["benchmark"], _fmt(r["value"]), r["unit"], r["note"]) for r in self.rows]
        widths = [max(len(c[i]) for c in cells) for i in range(5)]
        lines = []
        for k, c in enumerate(cells):
            lines.append("| " + " | ".join(v.ljust(w) if i != 2 else v.rjust(w)
                                           for i, (v, w) in enumerate(zip(c, widths))) + " |")
            if k == 0:
                lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        return "\n".join(lines)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if v != v:  # NaN
        return "nan"
    a = abs(v)
    if a >= 1e6:
        return f"{v:.3e}"
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fit_exponent(xs, ys) -> float:
    """Least-squares slope of log y against log x."""
    lx, ly = [math.log(v) for v in xs], [math.log(v) for v in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


class Timer:
    def __init__(self, torch, device, reps):
        self.torch, self.device, self.reps = torch, device, reps

    def sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def best(self, fn, reps=None, budget_s=0.5, max_reps=20) -> float:
        """Best wall time after one warm-up call: at least `reps` calls, more (up to `max_reps`) while they take less
        than `budget_s` in all. The minimum is robust to other jobs on shared cores."""
        fn()
        self.sync()
        best, spent, k = math.inf, 0.0, 0
        while k < (reps or self.reps) or (spent < budget_s and k < max_reps):
            t0 = time.perf_counter()
            fn()
            self.sync()
            dt = time.perf_counter() - t0
            best, spent, k = min(best, dt), spent + dt, k + 1
        return best


# --- the problems --------------------------------------------------------------------------------------------------
def ring_mixture(torch, K=8, radius=2.0, var=0.05):
    """The 2-D problem: K isotropic Gaussians on a circle."""
    from diffviz.targets import GaussianMixture

    ang = torch.arange(K, dtype=torch.float64) * (2 * math.pi / K)
    means = radius * torch.stack([ang.cos(), ang.sin()], 1)
    return GaussianMixture(torch.full((K,), 1.0 / K, dtype=torch.float64), means, torch.full((K,), var))


def ring_with_matrices(torch, rotated: bool, K=8, radius=2.0):
    """The 2-D ring with its covariances written as (K, 2, 2) matrices, as a user might: 0.1 I each
    (diagonal-as-matrix), or diag(0.1, 0.01) turned to point along each mean (rotated, full)."""
    from diffviz.targets import GaussianMixture

    ang = torch.arange(K, dtype=torch.float64) * (2 * math.pi / K)
    means = radius * torch.stack([ang.cos(), ang.sin()], 1)
    if rotated:
        R = torch.stack([torch.stack([ang.cos(), -ang.sin()], -1), torch.stack([ang.sin(), ang.cos()], -1)], -2)
        covs = R @ torch.diag(torch.tensor([0.1, 0.01], dtype=torch.float64)) @ R.transpose(-1, -2)
    else:
        covs = torch.stack([0.1 * torch.eye(2, dtype=torch.float64)] * K)
    return GaussianMixture(torch.full((K,), 1.0 / K, dtype=torch.float64), means, covs)


def vp_coefficients(process, t):
    """(f, g^2, m, s^2) of the VP process at t, as a student computes them with `math`."""
    beta = process.beta_min + t * (process.beta_max - process.beta_min)
    B = process.beta_min * t + 0.5 * (process.beta_max - process.beta_min) * t * t
    return -0.5 * beta, beta, math.exp(-0.5 * B), -math.expm1(-B)


def numpy_mixture_step(x, logs, grads, f, g2, h, method, rng):
    """One EM/Euler step of a plain NumPy loop from the per-component log pi_k N_k(x) and gradients: log-sum-exp
    responsibilities R, score = sum_k R_k grad_k, then x - (f x - g^2 score) h + sqrt(g^2 h) xi (EM) or the PF-ODE."""
    import numpy as np

    L = np.stack(logs, axis=1)
    R = np.exp(L - L.max(axis=1, keepdims=True))
    R /= R.sum(axis=1, keepdims=True)
    score = sum(R[:, [k]] * g for k, g in enumerate(grads))
    if method == "em":
        return x - (f * x - g2 * score) * h + math.sqrt(g2 * h) * rng.standard_normal(x.shape)
    return x - (f * x - 0.5 * g2 * score) * h


def numpy_gm(x, ts, process, weights, means, var, method, rng):
    """A plain NumPy loop: the exact GM score (loop over components, log-sum-exp), then the EM/Euler step."""
    d = x.shape[1]
    for i in range(len(ts) - 1):
        t, h = ts[i], ts[i] - ts[i + 1]
        f, g2, m, s2 = vp_coefficients(process, t)
        logs, grads = [], []
        for w, mu, v in zip(weights, means, var):
            C = m * m * v + s2
            diff = x - m * mu
            logs.append(math.log(w) - 0.5 * (diff * diff).sum(axis=1) / C - 0.5 * d * math.log(2 * math.pi * C))
            grads.append(-diff / C)
        x = numpy_mixture_step(x, logs, grads, f, g2, h, method, rng)
    return x


def numpy_gm_full(x, ts, process, weights, means, covs, method, rng):
    """A plain NumPy loop for a mixture with full covariance matrices: per component C = m^2 Sigma + s^2 I, its
    inverse and log-determinant, the Mahalanobis terms, log-sum-exp responsibilities, then the EM/Euler step."""
    import numpy as np

    d = x.shape[1]
    eye = np.eye(d)
    for i in range(len(ts) - 1):
        t, h = ts[i], ts[i] - ts[i + 1]
        f, g2, m, s2 = vp_coefficients(process, t)
        logs, grads = [], []
        for w, mu, S in zip(weights, means, covs):
            C = m * m * S + s2 * eye
            P = np.linalg.inv(C)
            _, logdet = np.linalg.slogdet(C)
            diff = x - m * mu
            Pdiff = diff @ P
            logs.append(math.log(w) - 0.5 * (diff * Pdiff).sum(axis=1) - 0.5 * (logdet + d * math.log(2 * math.pi)))
            grads.append(-Pdiff)
        x = numpy_mixture_step(x, logs, grads, f, g2, h, method, rng)
    return x


def numpy_twomode(x, ts, process, p, sigma2, method, rng):
    """A plain NumPy loop for the two-mode mixture (theory.md §7): score = -(x - m E[s|x] mu) / D."""
    import numpy as np

    hh = 0.5 * math.log(p / (1 - p))
    for i in range(len(ts) - 1):
        t, h = ts[i], ts[i] - ts[i + 1]
        f, g2, m, s2 = vp_coefficients(process, t)
        D = m * m * sigma2 + s2
        e = np.tanh(hh + m * x.sum(axis=1) / D)
        score = -(x - m * e[:, None]) / D
        if method == "em":
            x = x - (f * x - g2 * score) * h + math.sqrt(g2 * h) * rng.standard_normal(x.shape, dtype=x.dtype)
        else:
            x = x - (f * x - 0.5 * g2 * score) * h
    return x


def torchsde_em(torch, score, process, x_init, n_steps, seed):
    """torchsde.sdeint (method="euler", fixed dt) on the reverse SDE in s = T - t: dy = -(f y - g^2 score) ds + g dW."""
    import torchsde

    T, t_end = float(process.T), float(process.t_min)

    class ReverseSDE(torch.nn.Module):
        noise_type, sde_type = "diagonal", "ito"

        def f(self, s, y):
            t = T - float(s)
            return -(float(process.f(t)) * y - float(process.g2(t)) * score(y, t))

        def g(self, s, y):
            return torch.full((), math.sqrt(float(process.g2(T - float(s)))), dtype=y.dtype,
                              device=y.device).expand_as(y)

    ts = torch.tensor([0.0, T - t_end], dtype=x_init.dtype, device=x_init.device)
    span = float(ts[-1])  # the end as x's dtype rounds it, so the Brownian interval and ts agree
    bm = torchsde.BrownianInterval(0.0, span, size=tuple(x_init.shape), dtype=x_init.dtype, device=x_init.device,
                                   entropy=seed)
    with torch.no_grad():
        return torchsde.sdeint(ReverseSDE(), x_init, ts, bm=bm, method="euler", dt=span / n_steps * (1 + 1e-9))[-1]


# --- sections --------------------------------------------------------------------------------------------------------
def measure_limits(torch, table, timer, device, large_elements, copy_elements):
    x = torch.randn(copy_elements, device=device)
    y = torch.empty_like(x)
    t = timer.best(lambda: y.copy_(x))
    bw = 2 * 4 * copy_elements / t
    table.add("limits", f"memory bandwidth: y.copy_(x), float32, {4 * copy_elements >> 20} MiB", bw / 1e9, "GB/s",
              "read + write bytes / time")
    del x, y
    gen = torch.Generator(device=device).manual_seed(0)
    buf = torch.empty(large_elements, device=device)
    t = timer.best(lambda: buf.normal_(generator=gen))
    rate = large_elements / t
    table.add("limits", f"noise draw: normal_ into a preallocated buffer of {large_elements:,}", rate / 1e6,
              "M normals/s", "torch CPU generator" if device.type == "cpu" else "torch CUDA generator")
    return bw, rate


def compare_problem(torch, np, table, timer, device, name, target, x_init, process, n_steps, numpy_fn, results,
                    methods=("em", "ode-euler"), with_torchsde=True):
    """diffviz eager/fused against NumPy and torchsde on one problem; particle-steps per second and ratios."""
    from diffviz import sample
    from diffviz.fused import exact_score
    from diffviz.rng import make_generator
    from diffviz.schedules import uniform

    score = exact_score(target, process)
    n = x_init.shape[0]
    work = n * n_steps
    x_np = x_init.cpu().numpy()
    ts = uniform(process, n_steps).tolist()
    dims = f"d={x_init.shape[1]:,}, " if x_init.shape[1] > 2 else ""
    label = f"{name}, {dims}N={n:,}, {n_steps} steps"
    for method in methods:
        rates = {}
        rates["eager"] = work / timer.best(lambda: sample(score, process, x_init, n_steps, method,
                                                          generator=make_generator(1, device)))
        rates["fused"] = work / timer.best(lambda: sample(score, process, x_init, n_steps, method, fused=True,
                                                          generator=make_generator(1, device)))
        rates["numpy"] = work / timer.best(lambda: numpy_fn(x_np, ts, method, np.random.default_rng(1)))
        if method == "em" and with_torchsde:
            rates["torchsde"] = work / timer.best(lambda: torchsde_em(torch, score, process, x_init, n_steps, 1))
        # The floor of any implementation: the N·d fresh normals a step (EM), plus, for a score without an affine
        # form (which every sampler must call once a step), the time diffviz's own run spends inside the score.
        floor, what = 0.0, []
        if method == "em":
            noise, gen = torch.empty_like(x_init), make_generator(1, device)
            floor += timer.best(lambda: [noise.normal_(generator=gen) for _ in range(n_steps)])
            what.append("noise draw")
        if not callable(getattr(score, "affine", None)) and device.type == "cpu":
            floor += time_in_score(timer, score, process, x_init, n_steps, method, device)
            what.append("score")
        m = "EM" if method == "em" else "PF-ODE Euler"
        if what:
            rates["floor"], rates["floor_what"] = work / floor, " + ".join(what)
            table.add("throughput", f"{m}: the {rates['floor_what']} alone, {label}", rates["floor"],
                      "particle-steps/s", "what every step must do (with this score): a floor, up to timing noise")
        table.add("throughput", f"{m}: diffviz sample (eager), {label}", rates["eager"], "particle-steps/s")
        table.add("throughput", f"{m}: diffviz sample(fused=True), {label}", rates["fused"], "particle-steps/s")
        table.add("throughput", f"{m}: NumPy loop (plain), {label}", rates["numpy"], "particle-steps/s")
        table.add("ratio", f"{m} {name}: diffviz fused / NumPy", rates["fused"] / rates["numpy"], "x",
                  f"eager / NumPy = {rates['eager'] / rates['numpy']:.2f}{_ceiling(rates, 'numpy')}")
        if "torchsde" in rates:
            table.add("throughput", f"{m}: torchsde sdeint euler, {label}", rates["torchsde"], "particle-steps/s")
            table.add("ratio", f"{m} {name}: diffviz fused / torchsde", rates["fused"] / rates["torchsde"], "x",
                      f"eager / torchsde = {rates['eager'] / rates['torchsde']:.2f}{_ceiling(rates, 'torchsde')}")
        if "floor" in rates:
            table.add("ratio", f"{m} {name}: diffviz fused / its floor (the fraction of every ceiling reached)",
                      rates["fused"] / rates["floor"], "x", f"eager / floor = {rates['eager'] / rates['floor']:.2f}; "
                      f"the floor is the {rates['floor_what']} alone")
        results[name, method] = rates


def time_in_score(timer, score, process, x_init, n_steps, method, device) -> float:
    """Seconds a diffviz run (eager, CPU) spends inside `score`, from the fastest of the timer's runs."""
    from diffviz import sample
    from diffviz.rng import make_generator

    spent = []

    def run():
        total = [0.0]

        def timed(x, t):
            t0 = time.perf_counter()
            out = score(x, t)
            total[0] += time.perf_counter() - t0
            return out

        sample(timed, process, x_init, n_steps, method, generator=make_generator(1, device))
        spent.append(total[0])

    timer.best(run)
    return min(spent)


def step_time(timer, run, n_steps) -> float:
    """Seconds per step: (time of n_steps + 1 steps - time of 1 step) / n_steps (removes the setup)."""
    return max(timer.best(lambda: run(n_steps + 1)) - timer.best(lambda: run(1)), 1e-12) / n_steps


def large_fractions(torch, table, timer, device, cfg, bw, rate, results):
    from diffviz import VP, sample
    from diffviz.fused import exact_score
    from diffviz.rng import make_generator
    from diffviz.targets import TwoModeMixture

    n, d, k = cfg["n"], cfg["d"], cfg["steps"]
    process = VP()
    target = TwoModeMixture(d, 0.8, 0.25)
    score = exact_score(target, process)
    x_init = torch.randn(n, d, generator=make_generator(0, device), device=device)
    nd = n * d
    label = f"two-mode, N·d = {n:,}·{d:,} = {nd:,}"
    for fused in (False, True):
        tag = "fused" if fused else "eager"
        t_em = step_time(timer, lambda s: sample(score, process, x_init, s, "em", fused=fused,
                                                 generator=make_generator(2, device)), k)
        t_ode = step_time(timer, lambda s: sample(score, process, x_init, s, "ode-euler", fused=fused), k)
        f_em = nd / t_em / rate
        f_ode = 2 * nd * 4 / t_ode / bw
        table.add("large N·d", f"EM step ({tag}), {label}", nd / t_em / 1e6, "M particle-coords/s",
                  f"= {100 * f_em:.0f}% of the noise-draw rate")
        table.add("large N·d", f"PF-ODE step ({tag}), {label}", 2 * nd * 4 / t_ode / 1e9, "GB/s (2·N·d·4 B / step)",
                  f"= {100 * f_ode:.0f}% of the copy bandwidth")
        results["large", tag] = {"em_fraction": f_em, "ode_fraction": f_ode}


def scaling(torch, table, timer, device, cfg, results):
    from diffviz import VP, sample
    from diffviz.fused import exact_score
    from diffviz.rng import make_generator
    from diffviz.targets import TwoModeMixture

    process = VP()
    base = cfg["base"]
    for method in ("em", "ode-euler"):
        for var in ("n", "d", "steps"):
            times = []
            for v in cfg[var]:
                p = {**base, var: v}
                target = TwoModeMixture(p["d"], 0.8, 0.25)
                x_init = torch.randn(p["n"], p["d"], generator=make_generator(0, device), device=device)
                score = exact_score(target, process)
                times.append(timer.best(lambda: sample(score, process, x_init, p["steps"], method, fused=True,
                                                       generator=make_generator(1, device))))
            e = fit_exponent(cfg[var], times)
            m = "EM" if method == "em" else "PF-ODE"
            others = ", ".join(f"{k}={v:,}" for k, v in base.items() if k != var)
            table.add("scaling", f"{m} fused: time ~ {var}^b, {var} in {list(cfg[var])} ({others})", e, "b",
                      "1 = linear")
            results["scaling", method, var] = e


def memory_child(variant, n, d, steps, batch, device):
    """Run in a subprocess: peak memory of one d = 10^6 two-mode run above the state before it (JSON on stdout)."""
    import resource

    import torch

    from diffviz import VP, sample
    from diffviz.fused import exact_score
    from diffviz.rng import make_generator
    from diffviz.targets import TwoModeMixture

    n, d, steps, batch = int(n), int(d), int(steps), int(batch)
    dev = torch.device(device)
    torch.set_num_threads(1)
    process = VP()
    score = exact_score(TwoModeMixture(d, 0.8, 0.25), process)
    x_init = torch.randn(n, d, generator=make_generator(0, dev), device=dev)
    kw = {"fused": variant.startswith("fused"), "batch_size": batch if variant.endswith("batched") else None}
    # one tiny run first: the first call's one-time costs (lazy imports, kernel set-up) are not the run's memory
    tiny = exact_score(TwoModeMixture(64, 0.8, 0.25), process)
    sample(tiny, process, torch.randn(8, 64, device=dev), 2, "em", generator=make_generator(1, dev),
           **{**kw, "batch_size": 4 if kw["batch_size"] else None})
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        before = torch.cuda.memory_allocated(dev)
        x = sample(score, process, x_init, steps, "em", generator=make_generator(1, dev), **kw)
        torch.cuda.synchronize(dev)
        peak = torch.cuda.max_memory_allocated(dev) - before
    else:
        # ru_maxrss of an exec'd child starts at its parent's RSS (Linux keeps the pre-exec high-water mark), so
        # read this process's own high-water mark (VmHWM), reset to the current RSS just before the run
        try:
            Path("/proc/self/clear_refs").write_text("5")
            reset = True
        except OSError:
            reset = False
        before = _proc_status_bytes("VmRSS")
        x = sample(score, process, x_init, steps, "em", generator=make_generator(1, dev), **kw)
        peak = (_proc_status_bytes("VmHWM") if reset else
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) - before
    print(json.dumps({"peak_bytes": peak, "x_bytes": x.numel() * x.element_size()}))


def _proc_status_bytes(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def memory(table, device, cfg, results):
    n, d, steps, batch = cfg["n"], cfg["d"], cfg["steps"], cfg["batch"]
    x_mb = n * d * 4 / 2 ** 20
    for variant in ("eager", "fused", "fused-batched"):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-child", variant, str(n), str(d), str(steps),
               str(batch), device.type]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=900)
        if out.returncode != 0:
            table.add("memory", f"d = {d:,} EM, {variant}", "failed", "", out.stderr.strip().splitlines()[-1][:80])
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        peak_mb = r["peak_bytes"] / 2 ** 20
        what = "peak RSS (VmHWM) above the RSS before the run" if device.type == "cpu" else \
            "torch.cuda.max_memory_allocated above the state before the run"
        b = f", batch_size={batch}" if variant.endswith("batched") else ""
        table.add("memory", f"peak, two-mode d = {d:,}, N = {n}, {steps} EM steps, {variant.split('-')[0]}{b}",
                  peak_mb, "MiB", f"= {peak_mb / x_mb:.2f} x the output ({x_mb:.0f} MiB); {what}")
        results["memory", variant] = peak_mb


def _alternative(w):
    """A different legal value for a control widget (next option, or a few steps along a slider)."""
    if hasattr(w, "options"):
        opts = list(w.options.values()) if isinstance(w.options, dict) else [
            o[1] if isinstance(o, tuple) else o for o in w.options]
        return opts[(opts.index(w.value) + 1) % len(opts)] if len(opts) > 1 else None
    if hasattr(w, "base"):  # log slider: min/max/step are exponents
        e = math.log(w.value, w.base) + 5 * w.step
        if e > w.max:
            e = math.log(w.value, w.base) - 5 * w.step
        return w.base ** min(max(e, w.min), w.max)
    if hasattr(w, "min") and hasattr(w, "step"):
        v = w.value + 5 * w.step
        if v > w.max:
            v = w.value - 5 * w.step
        v = min(max(v, w.min), w.max)
        return type(w.value)(v) if isinstance(w.value, int) else round(v, 10)
    return None


def dashboards(table, results):
    import importlib
    import inspect
    import pkgutil

    import diffviz.dashboards as pkg
    from diffviz.widgets import Dashboard

    names = [m.name for m in pkgutil.iter_modules(pkg.__path__)]
    for expected in ("schedules", "phase_transitions", "initialization", "diffusion_time"):
        if expected not in names:
            table.add("dashboards", f"{expected}", "missing", "", "module not written yet: skipped")
    for mod_name in names:
        try:
            mod = importlib.import_module(f"diffviz.dashboards.{mod_name}")
        except Exception as err:  # noqa: BLE001 - a broken module is reported, not fatal
            table.add("dashboards", mod_name, "import failed", "", f"{type(err).__name__}: {err}"[:80])
            continue
        classes = [c for _, c in inspect.getmembers(mod, inspect.isclass)
                   if issubclass(c, Dashboard) and c is not Dashboard and c.__module__ == mod.__name__
                   and c.__name__ not in SEPARATE_DASHBOARDS]
        for cls in classes:
            try:
                t0 = time.perf_counter()
                dash = cls()
                build = time.perf_counter() - t0
                times = []
                for name, w in list(dash.controls.items()):
                    old, new = w.value, _alternative(w)
                    if new is None or new == old:
                        continue
                    for value in (new, old):
                        t0 = time.perf_counter()
                        dash.set(**{name: value})
                        times.append(time.perf_counter() - t0)
            except Exception as err:  # noqa: BLE001
                table.add("dashboards", cls.__name__, "failed", "", f"{type(err).__name__}: {err}"[:80])
                continue
            med = 1e3 * statistics.median(times)
            table.add("dashboards", f"{cls.__name__}: dash.set(...) update, median of {len(times)}", med, "ms",
                      f"max {1e3 * max(times):.0f} ms; built in {build:.1f} s")
            results["dashboard", cls.__name__] = med


SEPARATE_DASHBOARDS = ("SandboxDashboard",)  # timed by their own function below


def sandbox_dashboard(table, results, reps: int = 7):
    """SandboxDashboard: one fresh update (compute and draw, nothing cached) at the defaults and with 50 drawn
    beads, median of `reps`; the baseline, measured in the same run, is `diffviz.sandbox.run` on the same scenario
    (the numbers alone, no drawing): the ratio is what drawing adds."""
    import numpy as np

    from diffviz import sandbox as S
    from diffviz.dashboards.sandbox import SandboxDashboard

    def fresh(dash):
        dash._run_key, dash.last_values = None, None  # forget the cached run: a full update
        t0 = time.perf_counter()
        dash.update()
        return time.perf_counter() - t0

    def compute_only(scenario):
        t0 = time.perf_counter()
        S.run_scenario(scenario)
        return time.perf_counter() - t0

    dash = SandboxDashboard()
    rng = np.random.default_rng(0)
    cases = {"defaults (3 beads)": None, "50 beads": [[float(x), float(y), 1.0] for x, y in rng.uniform(-3, 3, (50, 2))]}
    for label, beads in cases.items():
        if beads is not None:
            dash.set(beads=beads)
        fresh(dash)  # warm-up
        upd = statistics.median(fresh(dash) for _ in range(reps))
        base = statistics.median(compute_only(dash.scenario) for _ in range(reps))
        table.add("dashboards", f"SandboxDashboard: one update, {label}, median of {reps}", 1e3 * upd, "ms",
                  f"baseline sandbox.run alone {1e3 * base:.0f} ms: update / baseline {upd / base:.2f}x")
        key = "SandboxDashboard" if beads is None else "SandboxDashboard (50 beads)"
        results["dashboard", key] = 1e3 * upd


def notebooks(table, results):
    from diffviz.notebook_run import run_notebook

    paths = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    with tempfile.TemporaryDirectory(prefix="diffviz-bench-") as tmp:
        os.environ.setdefault("DIFFVIZ_CACHE_DIR", str(Path(tmp) / "cache"))
        for path in paths:
            t0 = time.perf_counter()
            try:
                run_notebook(path, {"FAST": True}, Path(tmp) / path.stem)
                note = "FAST=True, fresh cache"
            except Exception as err:  # noqa: BLE001
                note = f"FAILED: {type(err).__name__}"
            dt = time.perf_counter() - t0
            table.add("notebooks", path.stem, dt, "s", note)
            results["notebook", path.stem] = dt


def _ceiling(rates, other) -> str:
    """'; ceiling Cx (...)': the best ratio any run of these steps could reach against `other` (the floor's)."""
    if "floor" not in rates:
        return ""
    return f"; ceiling ≈ {rates['floor'] / rates[other]:.1f}x (the {rates['floor_what']} alone)"


def verdicts(results, device) -> list[str]:
    lines = []

    def line(ok, text):
        lines.append(f"{'PASS' if ok else 'FAIL'}  {text}")

    dev = device.type.upper()

    def ratio_line(rates, other, target, what):
        """Ratio fused / other against its target; an EM target above its ceiling (floor / other, the floor being
        the noise draw, plus the score where it has no affine form) is restated as the fraction of that ceiling
        reached, fused / floor >= 90%, with the ceiling beside it."""
        r = rates["fused"] / rates[other]
        ceiling = rates["floor"] / rates[other] if "floor" in rates and "noise" in rates["floor_what"] else math.inf
        if target <= ceiling:
            line(r >= target, f"{what} = {r:.1f}x {'torchsde' if other == 'torchsde' else 'the NumPy loop'} "
                              f"(target >= {target:g}x){_ceiling(rates, other)}")
        else:
            frac = rates["fused"] / rates["floor"]
            line(frac >= TARGETS["ceiling_fraction"],
                 f"{what} = {r:.1f}x {'torchsde' if other == 'torchsde' else 'the NumPy loop'}: the target {target:g}x "
                 f"lies above the ceiling {ceiling:.1f}x (the {rates['floor_what']} alone), so restated: "
                 f"{100 * frac:.0f}% of the ceiling (target >= {100 * TARGETS['ceiling_fraction']:.0f}%)")

    for name in ("gm-2d", "gm-2d diag-as-matrix", "gm-2d rotated full", "two-mode"):
        em = results.get((name, "em"))
        if em and "torchsde" in em:
            ratio_line(em, "torchsde", TARGETS["vs_torchsde"], f"{dev} {name} EM: diffviz fused")
        for method in ("em", "ode-euler"):
            rates = results.get((name, method))
            if rates:
                ratio_line(rates, "numpy", TARGETS["vs_numpy"], f"{dev} {name} {method}: diffviz fused")
    big = results.get(("large", "fused"))
    if big:
        line(big["em_fraction"] >= TARGETS["em_noise_fraction"],
             f"large N·d EM step (fused) at {100 * big['em_fraction']:.0f}% of the noise-draw rate (target >= 50%)")
        line(big["ode_fraction"] >= TARGETS["ode_bandwidth_fraction"],
             f"large N·d PF-ODE step (fused) at {100 * big['ode_fraction']:.0f}% of the copy bandwidth "
             f"(target >= 30%)")
    for key, med in results.items():
        if key[0] == "dashboard":
            target = TARGETS["sandbox_50_beads_ms"] if "50 beads" in key[1] else TARGETS["dashboard_ms"]
            line(med < target, f"dashboard {key[1]}: median update {med:.0f} ms (target < {target:.0f} ms)")
    return lines


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.memory_child:
        memory_child(*args.memory_child)
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import numpy as np
    import torch

    from diffviz import VP
    from diffviz.device import resolve_device
    from diffviz.rng import make_generator
    from diffviz.targets import TwoModeMixture

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    size = "quick" if args.quick else "full"
    timer = Timer(torch, device, 2 if args.quick else 3)
    table, results = Table(), {}
    t_start = time.perf_counter()
    print(f"diffviz benchmarks ({size}) on {cpu_model()}, device {device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s)", file=sys.stderr, flush=True)

    large = SIZES["large"][size]
    bw, rate = measure_limits(torch, table, timer, device, large["n"] * large["d"], SIZES["copy_elements"][size])

    process = VP()
    cfg = SIZES["gm"][size]
    gm = ring_mixture(torch)
    x_gm = torch.randn(cfg["n"], 2, generator=make_generator(0, device), device=device)
    w, mu, var = gm.weights.tolist(), [np.asarray(m) for m in gm.means.numpy()], gm.covs.tolist()
    compare_problem(torch, np, table, timer, device, "gm-2d", gm, x_gm, process, cfg["steps"],
                    lambda x, ts, m, rng: numpy_gm(x, ts, process, w, mu, var, m, rng), results)

    # the same ring with its covariances written as matrices (EM only): the GaussianMixture reads diagonal
    # matrices as diagonals and whitens full ones; the NumPy loop is the plain full-covariance one
    cfg = SIZES["gm_matrix"][size]
    x_gmm = torch.randn(cfg["n"], 2, generator=make_generator(0, device), device=device)
    for name, rotated in (("gm-2d diag-as-matrix", False), ("gm-2d rotated full", True)):
        gmm = ring_with_matrices(torch, rotated)
        w, mu, covs = gmm.weights.tolist(), gmm.means.numpy(), gmm.cov_matrices().numpy()
        compare_problem(torch, np, table, timer, device, name, gmm, x_gmm, process, cfg["steps"],
                        lambda x, ts, m, rng: numpy_gm_full(x, ts, process, w, mu, covs, m, rng), results,
                        methods=("em",), with_torchsde=False)

    cfg = SIZES["twomode"][size]
    tm = TwoModeMixture(cfg["d"], 0.8, 0.25)
    x_tm = torch.randn(cfg["n"], cfg["d"], generator=make_generator(0, device), device=device)
    compare_problem(torch, np, table, timer, device, "two-mode", tm, x_tm, process, cfg["steps"],
                    lambda x, ts, m, rng: numpy_twomode(x, ts, process, 0.8, 0.25, m, rng), results)

    large_fractions(torch, table, timer, device, large, bw, rate, results)
    scaling(torch, table, timer, device, SIZES["scaling"][size], results)
    memory(table, device, SIZES["memory"][size], results)
    if args.quick:
        table.add("dashboards", "all", "skipped", "", "--quick (building them takes ~20 s)")
    else:
        dashboards(table, results)
        sandbox_dashboard(table, results)
    if args.notebooks:
        notebooks(table, results)
    else:
        table.add("notebooks", "all", "skipped", "", "pass --notebooks to time them (minutes)")

    total = time.perf_counter() - t_start
    header = (f"diffviz benchmarks ({size}) — {cpu_model()}, {os.cpu_count()} CPU(s), device {device}, torch "
              f"{torch.__version__}, NumPy {np.__version__}, {torch.get_num_threads()} thread(s), {total:.0f} s")
    print(header)
    print(table.text())
    lines = verdicts(results, device)
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps({"header": header, "rows": table.rows, "verdicts": lines}, indent=1))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
