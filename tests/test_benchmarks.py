"""Smoke test of benchmarks/run.py --quick: it runs and prints its one table (no timing assertions)."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_prints_the_table(tmp_path):
    out_json = tmp_path / "bench.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--json", str(out_json)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert out.startswith("diffviz benchmarks (quick)")
    assert "| section" in out and "| benchmark" in out
    for section in ("limits", "throughput", "ratio", "large N·d", "scaling", "memory", "dashboards", "notebooks"):
        assert f"| {section}" in out, section
    for needle in ("memory bandwidth", "noise draw", "NumPy loop", "torchsde", "fused", "d = 1,000,000"):
        assert needle in out, needle
    verdicts = [line for line in out.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert len(verdicts) >= 8
    data = json.loads(out_json.read_text())
    assert data["rows"] and data["verdicts"] == verdicts
    assert all(set(r) == {"section", "benchmark", "value", "unit", "note"} for r in data["rows"])
