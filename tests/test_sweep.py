"""Sweeps on a real Dask LocalCluster (2 worker processes): failures, resume, tables, notebooks, CLI, plots."""
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import cloudpickle
import pandas as pd
import pytest

from diffviz import atomic, cli
from diffviz import sweep as sw
from diffviz.journal import Journal, journal_path, read_journal
from diffviz.sweeps_examples import EXAMPLES, diffusion_time, initialization, phase_transition

# Functions defined here travel to the workers by value, whatever sys.path the workers have.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

ROOT = Path(__file__).resolve().parents[1]
NO_SCHEDULER = "tcp://127.0.0.1:9"  # nothing listens here: a sweep with nothing to run must not connect


def flaky(x, calls_dir):
    """Leave one file per call; fail for x == 3 while calls_dir/fail exists."""
    calls = Path(calls_dir)
    (calls / f"call-{x}-{uuid.uuid4().hex}").touch()
    if x == 3 and (calls / "fail").exists():
        raise ValueError("x=3 is not allowed")
    return {"square": x * x, "half": x / 2}


def n_calls(calls_dir, x=None) -> int:
    return len(list(Path(calls_dir).glob("call-*" if x is None else f"call-{x}-*")))


@pytest.fixture(scope="module")
def scheduler():
    """Address of the LocalCluster `sweep` builds by default, 2 worker processes, shared by this module's tests.

    The context manager closes the client and the cluster even when a test fails.
    """
    with sw._dask_client(None, None, 2) as client:
        yield client.scheduler.address


# --- grids, keys, rows (no cluster) -----------------------------------------------------------------------

def test_expand_grid_order_dedupe_and_keys():
    points = sw.expand_grid({"a": [1, 2], "b": ["u", "v"], "c": 0.5})
    assert points == [{"a": 1, "b": "u", "c": 0.5}, {"a": 1, "b": "v", "c": 0.5},
                      {"a": 2, "b": "u", "c": 0.5}, {"a": 2, "b": "v", "c": 0.5}]
    assert sw.point_key({"a": 1, "b": "u"}) == sw.point_key({"b": "u", "a": 1.0})  # order- and 1 == 1.0-proof
    assert sw.point_key({"a": 1}) != sw.point_key({"a": True}) != sw.point_key({"a": "1"})
    assert len(sw.point_key({"a": 1})) == 16
    assert sw.expand_grid([{"a": 1}, {"a": 1.0}, {"a": 2}]) == [{"a": 1}, {"a": 2}]
    with pytest.raises(ValueError, match="reserved"):
        sw.expand_grid({"status": [1]})
    with pytest.raises(ValueError, match="no values"):
        sw.expand_grid({"a": []})
    with pytest.raises(ValueError, match="a number or a string"):
        sw.expand_grid({"a": [[1, 2]]})


def test_run_point_in_process_and_name_clash():
    tgt = sw.resolve_target(lambda x: x + 0.5)
    res = sw.run_point(tgt, {"x": 1}, "k")
    assert res["status"] == "ok" and res["figures"] == {"value": 1.5} and res["error"] is None
    bad = sw.run_point(sw.resolve_target(lambda x: object()), {"x": 1}, "k")
    assert bad["status"] == "error" and bad["error"].startswith("TypeError: a sweep function must return")
    row = sw._row({"x": 1}, {"figures": {"x": 2, "status": 3, "y": 4}, "elapsed_s": 0.1, "error": None,
                             "status": "ok", "key": "k"})
    assert row == {"x": 1, "out_x": 2, "out_status": 3, "y": 4, "elapsed_s": 0.1, "error": None,
                   "status": "ok", "key": "k"}


def test_resolve_target_errors(tmp_path):
    assert sw.resolve_target("diffusion-time").default_grid == EXAMPLES["diffusion-time"].grid
    with pytest.raises(ValueError, match="unknown sweep target"):
        sw.resolve_target("no-such-example")
    with pytest.raises(ValueError, match="cannot import"):
        sw.resolve_target("diffviz.no_such_module:f")
    with pytest.raises(ValueError, match="does not exist"):
        sw.resolve_target(tmp_path / "missing.ipynb")
    with pytest.raises(ValueError, match="grid is required"):
        sw.sweep(flaky, None, progress=False)
    with pytest.raises(ValueError, match="Parquet or CSV"):
        sw.sweep(flaky, {"x": [1], "calls_dir": ["."]}, tmp_path / "out.xlsx", progress=False)


def test_write_table_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    sw.write_table(pd.DataFrame({"a": [1], "status": ["ok"], "key": ["k"]}), path)

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(sw.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        sw.write_table(pd.DataFrame({"a": [2], "status": ["ok"], "key": ["k"]}), path)
    assert sw.read_table(path)["a"].tolist() == [1]
    assert os.listdir(tmp_path) == ["t.csv"]


# --- sweeps on the cluster --------------------------------------------------------------------------------

def test_failure_is_recorded_resume_skips_and_retry(scheduler, tmp_path, monkeypatch):
    calls = tmp_path / "calls"
    calls.mkdir()
    (calls / "fail").touch()
    out = tmp_path / "res.parquet"
    writes = []
    real_write = sw.write_table
    monkeypatch.setattr(sw, "write_table", lambda table, path: writes.append(len(table)) or real_write(table, path))

    grid = {"x": [1, 2, 3], "calls_dir": [str(calls)]}
    table = sw.sweep(flaky, grid, out, scheduler=scheduler, save_every=1, progress=False)
    assert table["x"].tolist() == [1, 2, 3]
    assert table["status"].tolist() == ["ok", "ok", "error"]
    assert table["error"].tolist()[:2] == [None, None]
    assert table["error"].iloc[2] == "ValueError: x=3 is not allowed"
    assert table["square"].tolist()[:2] == [1, 4] and pd.isna(table["square"].iloc[2])
    assert (table["elapsed_s"] >= 0).all()
    assert table["key"].tolist() == [sw.point_key(p) for p in sw.expand_grid(grid)]
    assert list(table.columns) == ["x", "calls_dir", "square", "half", "elapsed_s", "error", "status", "key"]
    assert n_calls(calls) == 3
    assert writes == [1, 2, 3]  # saved after every point (save_every=1)

    # Same out, one more point: only x = 4 runs; x = 3 stays failed without retry_failed.
    grid["x"] = [1, 2, 3, 4]
    table = sw.sweep(flaky, grid, out, scheduler=scheduler, progress=False)
    assert n_calls(calls) == 4 and n_calls(calls, 4) == 1
    assert table["status"].tolist() == ["ok", "ok", "error", "ok"]

    # Nothing left to run: no cluster is contacted at all.
    again = sw.sweep(flaky, grid, out, scheduler=NO_SCHEDULER, progress=False)
    pd.testing.assert_frame_equal(again, table)

    # retry_failed re-runs only the failed point, which now succeeds.
    (calls / "fail").unlink()
    table = sw.sweep(flaky, grid, out, scheduler=scheduler, retry_failed=True, progress=False)
    assert n_calls(calls) == 5 and n_calls(calls, 3) == 2
    assert (table["status"] == "ok").all() and table["error"].isna().all()
    assert table["square"].tolist() == [1, 4, 9, 16]
    pd.testing.assert_frame_equal(sw.read_table(out), table)


def test_example_by_dotted_name_csv_parquet_round_trip(scheduler, tmp_path):
    grid = {"sigma_T": [2.0, 80.0], "steps": [10], "init": ["prior", "exact"]}
    csv = tmp_path / "init.csv"
    table = sw.sweep("diffviz.sweeps_examples:initialization", grid, csv, scheduler=scheduler, progress=False)
    assert len(table) == 4 and (table["status"] == "ok").all()
    for _, row in table.iterrows():  # the workers computed what a direct call computes
        direct = initialization(sigma_T=row["sigma_T"], steps=int(row["steps"]), init=row["init"])
        assert row["kl"] == direct["kl"] and row["var_out"] == direct["var_out"]
    pq = tmp_path / "init.parquet"
    sw.write_table(table, pq)
    for path in (csv, pq):
        pd.testing.assert_frame_equal(sw.read_table(path), table, check_dtype=False)
    # The CSV is a valid resume file: nothing is re-run.
    pd.testing.assert_frame_equal(sw.sweep("diffviz.sweeps_examples:initialization", grid, csv,
                                           scheduler=NO_SCHEDULER, progress=False), sw.read_table(csv))


NOTEBOOK = '''\
# %% [markdown]
# A throwaway notebook for the sweep test.

# %% tags=["parameters"]
a = 1
FIGURES_PATH = None

# %%
from diffviz.record import record, set_path

set_path(FIGURES_PATH)
if a < 0:
    raise ValueError(f"a must be positive, got {a}")
record("double", 2 * a)
record("a_seen", a)
'''


def test_notebook_sweep_injects_parameters_and_gathers_figures(scheduler, tmp_path):
    nb = tmp_path / "nb.py"
    nb.write_text(textwrap.dedent(NOTEBOOK))
    out = tmp_path / "nb.csv"
    table = sw.sweep(nb, {"a": [7, -1]}, out, scheduler=scheduler, progress=False)
    ok, bad = table.iloc[0], table.iloc[1]
    assert ok["status"] == "ok" and ok["double"] == 14 and ok["a_seen"] == 7
    assert bad["status"] == "error" and bad["error"] == "ValueError: a must be positive, got -1"
    executed = tmp_path / "nb_notebooks" / ok["key"] / "nb.ipynb"
    assert executed.is_file() and "a = 7" in executed.read_text()  # papermill's injected-parameters cell



@pytest.mark.parametrize("grid, message", [
    ({"A": [1, 2]}, "unknown parameter 'A' (did you mean 'a'?): the parameters cell of nb.py declares a, "
                    "FIGURES_PATH"),
    ([{"a": 1}, {"a": "x"}], "a must be an int (its default in nb.py is 1), got 'x'"),
    ({"a": [1], "import os; X": [1]}, "parameter names must be Python identifiers, got 'import os; X'"),
])
def test_notebook_sweep_refuses_bad_grids_before_any_point(tmp_path, grid, message):
    nb = tmp_path / "nb.py"
    nb.write_text(textwrap.dedent(NOTEBOOK))
    with pytest.raises(ValueError) as err:  # NO_SCHEDULER: refused before connecting to a cluster
        sw.sweep(nb, grid, tmp_path / "nb.csv", scheduler=NO_SCHEDULER, progress=False)
    assert message in str(err.value)
    assert not (tmp_path / "nb.csv").exists() and not (tmp_path / "nb_notebooks").exists()


def test_cli_notebook_sweep_refuses_bad_grid_keys_and_values(tmp_path, capsys):
    nb = tmp_path / "nb.py"
    nb.write_text(textwrap.dedent(NOTEBOOK))
    for grid, message in [("A=1,2", "unknown parameter 'A' (did you mean 'a'?)"),
                          ("a=1,maybe", "a must be an int (its default in nb.py is 1), got 'maybe'")]:
        rc = cli.main(["sweep", str(nb), "--grid", grid, "--out", str(tmp_path / "nb.csv"),
                       "--scheduler", NO_SCHEDULER, "--no-progress"])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("diffviz sweep: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "nb.csv").exists()
    # values of a string parameter stay text
    assert cli.build_grid(None, None, ["D=0,cpu", "a=1"], like={"D": "auto", "a": 1}) == {"D": ["0", "cpu"],
                                                                                            "a": [1]}

# --- command line -----------------------------------------------------------------------------------------

def test_cli_parsing_helpers(capsys):
    assert [cli.parse_value(v) for v in ["3", "0.5", "1e-3", "true", "None", "vp", '"7"']] == \
        [3, 0.5, 0.001, True, None, "vp", "7"]
    assert cli.parse_grid_arg("T=0.2, 1") == ("T", [0.2, 1])
    with pytest.raises(ValueError, match="NAME=V1,V2"):
        cli.parse_grid_arg("T")
    assert cli.build_grid({"T": [1], "lam": [4]}, None, ["T=2,3"]) == {"T": [2, 3], "lam": [4]}
    assert cli.main(["sweep", "--list"]) == 0
    assert "diffusion-time" in capsys.readouterr().out
    assert cli.main(["sweep", "no-such-example", "--out", "x.csv"]) == 2


def test_cli_sweep_subprocess(scheduler, tmp_path):
    out = tmp_path / "dt.parquet"
    cmd = [sys.executable, "-m", "diffviz.cli", "sweep", "diffusion-time", "--grid", "T=0.5,1",
           "--grid", "lam=4", "--grid", "eps2=0.01", "--out", str(out), "--scheduler", scheduler, "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "2 points, 2 ok, 0 failed" in proc.stdout
    table = sw.read_table(out)
    assert table["T"].tolist() == [0.5, 1.0] and (table["status"] == "ok").all()
    assert table["bound"].tolist() == [diffusion_time(T, lam=4, eps2=0.01)["bound"] for T in (0.5, 1.0)]


# --- examples and plots (in process) ----------------------------------------------------------------------

def test_examples_behave_as_the_theory_says():
    bounds = [diffusion_time(T, lam=4.0, eps2=0.01)["bound"] for T in (0.2, 0.6, 1.0)]
    assert bounds[1] < bounds[0] and bounds[1] < bounds[2]  # an interior optimal horizon
    exact = [initialization(7.0, steps, "exact")["kl"] for steps in (30, 300)]
    assert exact[1] < exact[0]  # discretization error falls with steps
    assert initialization(2.0, 1000, "prior")["kl"] > initialization(2.0, 1000, "exact")["kl"]
    few = phase_transition(d=1000, steps=10, schedule="uniform", kind="vp", n=200)
    dil = phase_transition(d=1000, steps=10, schedule="dilated", kind="vp", n=200)
    # VP with uniform steps loses the mode weight p = 0.7; the dilated schedule keeps it (5 standard errors).
    se = (0.7 * 0.3 / 200) ** 0.5
    assert abs(dil["p_hat"] - 0.7) < 5 * se < abs(few["p_hat"] - 0.7)


def test_plots_headless():
    table = pd.DataFrame([{"T": T, "eps2": e, **diffusion_time(T, eps2=e), "status": "ok"}
                          for T in (0.2, 0.5, 1.0) for e in (0.01, 0.1)])
    fig = sw.plot_sweep(table, x="T", y="bound", color="eps2")
    assert len(fig.data) == 2 and list(fig.data[0].x) == [0.2, 0.5, 1.0]
    assert len(sw.plot_sweep(table, x="T", y="bound", facet="eps2").data) == 2
    heat = sw.heatmap_sweep(table, x="T", y="eps2", z="bound")
    assert heat.data[0].z.shape == (2, 3)
    with pytest.raises(ValueError, match="several rows share"):
        sw.plot_sweep(table, x="T", y="bound")
    assert len(sw.plot_sweep(table, x="T", y="bound", agg="mean").data[0].x) == 3
    with pytest.raises(ValueError, match="not in the sweep table"):
        sw.heatmap_sweep(table, x="T", y="lam", z="bound")


def test_cli_sweep_writes_the_plots_it_is_asked_for(scheduler, tmp_path, capsys):
    out = tmp_path / "dt.csv"
    argv = ["sweep", "diffusion-time", "--grid", "T=0.2,0.6,1", "--grid", "lam=4", "--grid", "eps2=0.01,0.1",
            "--out", str(out), "--scheduler", scheduler, "--no-progress",
            "--plot", "bound:T:eps2", "--plot", "heatmap:bound:T:eps2"]
    assert cli.main(argv) == 0
    lines = tmp_path / "dt.bound_T_eps2.html"
    heat = tmp_path / "dt.heatmap_bound_T_eps2.html"
    assert lines.is_file() and heat.is_file()
    text = lines.read_text(encoding="utf-8")
    assert "plotly" in text and "eps2 = 0.01" in text and "eps2 = 0.1" in text
    assert '"type":"heatmap"' in heat.read_text(encoding="utf-8").replace(" ", "")
    assert str(lines) in capsys.readouterr().out


@pytest.mark.parametrize("spec", ["bound", "heatmap:bound:T", "a:b:c:d:e", "bound::T"])
def test_cli_sweep_rejects_a_malformed_plot_before_running(spec, tmp_path, capsys):
    out = tmp_path / "never.csv"
    assert cli.main(["sweep", "diffusion-time", "--out", str(out), "--plot", spec]) == 2
    assert "--plot must be FIGURE:X" in capsys.readouterr().err and not out.exists()


def test_plot_naming_a_missing_column_is_refused(tmp_path):
    table = pd.DataFrame([{"T": 0.5, "bound": 1.0, "status": "ok"}])
    with pytest.raises(ValueError, match=r"no column \['kl'\]"):
        cli.write_plot(table, "kl:T", str(tmp_path / "t.csv"))


# --- saving: kills, signals, unwritable out, unreachable scheduler ------------------------------------------

GATED = '''\
import time
import uuid
from pathlib import Path


def gated(x, calls_dir):
    """Leave one file per call; x = 0 returns at once, the others wait (at most 60 s) for calls_dir/go."""
    calls = Path(calls_dir)
    (calls / f"call-{x}-{uuid.uuid4().hex}").touch()
    deadline = time.monotonic() + 60
    while x and not (calls / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return {"half": x / 2}
'''


@pytest.fixture
def gated_sweep(scheduler, tmp_path, monkeypatch):
    """(command, grid, out, calls): `diffviz sweep` of a module whose points x > 0 block until calls/go exists.

    The module is importable here, in the command (PYTHONPATH) and on the shared cluster's workers (uploaded);
    calls/go is made at the end.
    """
    from distributed import Client

    module = f"gated_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(GATED)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    with Client(scheduler, timeout=30) as client:
        client.upload_file(str(tmp_path / f"{module}.py"))
    calls = tmp_path / "calls"
    calls.mkdir()
    out = tmp_path / "res.csv"
    grid = {"x": [0, 1], "calls_dir": [str(calls)]}  # two workers: both points start at once, x = 1 blocks
    cmd = [sys.executable, "-m", "diffviz.cli", "sweep", f"{module}:gated", "--grid", "x=0,1",
           "--grid", f'calls_dir="{calls}"', "--out", str(out), "--scheduler", scheduler, "--no-progress"]
    try:
        yield cmd, grid, out, calls
    finally:
        (calls / "go").touch()  # frees the workers still running a blocked point


def _start_and_wait_for_a_journal_row(cmd, journal, timeout=180.0):
    """Start `cmd` (its own session: our signals reach it alone) and return it once `journal` holds a row."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    while not read_journal(journal):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"no row in {journal} (exit status {proc.returncode}):\n{out}\n{err[-3000:]}")
        time.sleep(0.05)
    return proc


@pytest.mark.slow
def test_sigkill_loses_no_finished_point_and_the_rerun_resumes(gated_sweep, scheduler):
    cmd, grid, out, calls = gated_sweep
    journal = journal_path(out)
    proc = _start_and_wait_for_a_journal_row(cmd, journal)
    proc.kill()  # SIGKILL: no handler runs, nothing is saved on the way out
    proc.communicate(timeout=60)
    assert not out.exists()  # the table is due only after 10 points (save_every)...
    assert [r["x"] for r in read_journal(journal)] == [0]  # ...but the finished point is in the journal
    (calls / "go").touch()
    table = sw.sweep(cmd[4], grid, out, scheduler=scheduler, progress=False)
    assert n_calls(calls, 0) == 1  # x = 0 did not run again
    assert table["x"].tolist() == [0, 1] and (table["status"] == "ok").all()
    assert table["half"].tolist() == [0.0, 0.5]
    assert not journal.exists()  # compacted into the table
    pd.testing.assert_frame_equal(sw.read_table(out), table)


@pytest.mark.slow
@pytest.mark.parametrize("signum, status, word", [(signal.SIGTERM, 143, "terminated"),
                                                  (signal.SIGINT, 130, "interrupted")], ids=["SIGTERM", "SIGINT"])
def test_sigterm_and_ctrl_c_save_the_finished_points(gated_sweep, signum, status, word):
    cmd, grid, out, calls = gated_sweep
    proc = _start_and_wait_for_a_journal_row(cmd, journal_path(out))
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    (calls / "go").touch()
    assert proc.returncode == status, err[-3000:]
    assert f"diffviz sweep: {word}; the points done are saved in {out}" in err
    table = sw.read_table(out)
    assert table["x"].tolist() == [0] and table["status"].tolist() == ["ok"]
    assert not journal_path(out).exists()


def test_rows_in_the_journal_of_a_killed_run_are_not_run_again(scheduler, tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()
    grid = {"x": [1, 2, 3], "calls_dir": [str(calls)]}
    reference = sw.sweep(flaky, grid, tmp_path / "reference.parquet", scheduler=scheduler, progress=False)
    # What a run killed after two points leaves: their rows in the journal, the third cut short, no table.
    out = tmp_path / "res.parquet"
    journal = Journal(journal_path(out))
    tgt = sw.resolve_target(flaky)
    for point in sw.expand_grid(grid)[:2]:
        journal.append(sw._row(point, sw.run_point(tgt, point, sw.point_key(point))))
    journal.close()
    with open(journal.path, "ab") as fh:
        fh.write(b'{"x":3,"calls_dir":"')
    assert n_calls(calls) == 5
    table = sw.sweep(flaky, grid, out, scheduler=scheduler, progress=False)
    assert n_calls(calls, 1) == 2 and n_calls(calls, 2) == 2 and n_calls(calls, 3) == 2  # only x = 3 ran again
    pd.testing.assert_frame_equal(table.drop(columns="elapsed_s"), reference.drop(columns="elapsed_s"))
    pd.testing.assert_frame_equal(sw.read_table(out), table)
    assert not journal.path.exists()


def test_a_journal_alone_becomes_the_table_without_a_cluster(tmp_path):
    grid = {"x": [1, 2], "calls_dir": [str(tmp_path)]}
    out = tmp_path / "res.csv"
    journal = Journal(journal_path(out))
    tgt = sw.resolve_target(flaky)
    for point in sw.expand_grid(grid):
        journal.append(sw._row(point, sw.run_point(tgt, point, sw.point_key(point))))
    journal.close()
    table = sw.sweep(flaky, grid, out, scheduler=NO_SCHEDULER, progress=False)  # nothing to run: no connection
    assert table["square"].tolist() == [1, 4] and (table["status"] == "ok").all()
    assert not journal.path.exists()
    pd.testing.assert_frame_equal(sw.read_table(out), table, check_dtype=False)


@pytest.mark.parametrize("case", ["parent is a file", "out is a folder", "folder refuses new files"])
def test_unwritable_out_is_refused_before_any_point_runs(case, scheduler, tmp_path, monkeypatch):
    calls = tmp_path / "calls"
    calls.mkdir()
    out = tmp_path / "res.csv"
    if case == "parent is a file":
        (tmp_path / "notes.txt").write_text("x")
        out = tmp_path / "notes.txt" / "res.csv"
    elif case == "out is a folder":
        out.mkdir()
    else:  # root ignores permission bits: refuse files in tmp_path where they are made
        real = atomic.tempfile.mkstemp

        def refuse(*args, dir=None, **kwargs):
            if dir is not None and Path(dir) == tmp_path:
                raise PermissionError(13, "Permission denied")
            return real(*args, dir=dir, **kwargs)

        monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    with pytest.raises(ValueError, match=r"^out (must be a file|'.*' cannot be written)") as info:
        sw.sweep(flaky, {"x": [1, 2], "calls_dir": [str(calls)]}, out, scheduler=scheduler, progress=False)
    assert str(out) in str(info.value)
    assert n_calls(calls) == 0


def test_cli_refuses_an_unwritable_out_in_one_line_before_connecting(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    out = tmp_path / "notes.txt" / "dt.csv"
    start = time.monotonic()
    assert cli.main(["sweep", "diffusion-time", "--grid", "T=0.5", "--out", str(out),
                     "--scheduler", NO_SCHEDULER, "--no-progress"]) == 2
    assert time.monotonic() - start < 20  # no attempt to reach the scheduler first
    err = capsys.readouterr().err
    assert err.startswith(f"diffviz sweep: out {str(out)!r} cannot be written") and err.count("\n") == 1


@pytest.mark.parametrize("address", [NO_SCHEDULER, "localhost"])
def test_cli_unreachable_scheduler_is_a_quick_one_line_error(address, tmp_path, capsys):
    out = tmp_path / "dt.csv"
    start = time.monotonic()
    assert cli.main(["sweep", "diffusion-time", "--grid", "T=0.5", "--out", str(out),
                     "--scheduler", address, "--no-progress"]) == 2
    assert time.monotonic() - start < 20  # Dask's own default connect timeout is 30 s; ours is 5 s
    err = capsys.readouterr().err
    assert err.startswith("diffviz sweep: scheduler") and repr(address) in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()
