"""Sweeps: grid keys, the atomic results store, and resuming through serial, process-pool and Dask executors."""

import importlib.util
import json
import math
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from unfoldtheory.sweep import (
    Grid,
    ResultStore,
    StoreWarning,
    SweepError,
    cell_key,
    executor_for,
    function_name,
    run_sweep,
)

ROOT = Path(__file__).resolve().parents[1]
FAIL_ON: set[int] = set()
CALLS: list[dict] = []


def square(x, offset=0):
    return {"square": x * x + offset}


def counted_square(x, offset=0):
    CALLS.append({"x": x, "offset": offset})
    return square(x, offset)


def flaky_square(x):
    if x in FAIL_ON:
        raise ArithmeticError(f"cell {x} fails on purpose")
    return square(x)


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.glob("*.json"))}


# --- grid and keys ------------------------------------------------------------------------------------------------

def test_grid_is_the_product_of_its_axes_and_scalars_are_fixed():
    grid = Grid(depth=[2, 4, 8], sparsity=np.array([0.1, 0.2]), seed=range(3), steps=300, model="ALISTA")
    cells = list(grid)
    assert len(grid) == len(cells) == 3 * 2 * 3
    assert {(c["depth"], c["sparsity"], c["seed"]) for c in cells} == {(d, s, r) for d in (2, 4, 8) for s in (0.1, 0.2)
                                                                        for r in range(3)}
    assert all(c["steps"] == 300 and c["model"] == "ALISTA" for c in cells)
    assert all(type(c["sparsity"]) is float for c in cells)  # numpy scalars become plain JSON values
    assert len({cell_key(c) for c in cells}) == len(cells)


def test_cell_keys_do_not_depend_on_axis_order():
    a = {cell_key(c) for c in Grid(depth=[1, 2], seed=[0, 1])}
    b = {cell_key(c) for c in Grid(seed=[1, 0], depth=[2, 1])}
    assert a == b


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                         st.text(max_size=12))
cells = st.dictionaries(st.text(min_size=1, max_size=10), json_scalars, min_size=1, max_size=4)


@given(cells, cells)
def test_cell_keys_are_safe_file_names_and_equal_exactly_for_equal_cells(a, b):
    for cell in (a, b):
        key = cell_key(cell)
        assert all(ch.isalnum() or ch in "._=,+-" for ch in key) and not key.startswith(".")
    same = json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert (cell_key(a) == cell_key(b)) == same


@pytest.mark.parametrize(("axes", "message"), [
    ({}, "at least one axis"),
    ({"depth": []}, "axis 'depth' is empty"),
    ({"depth": [2, 2]}, "lists 2 twice"),
    ({"sparsity": [0.1, math.nan]}, "non-finite"),
    ({"model": [object()]}, "grid values must be"),
])
def test_grid_rejects_bad_axes(axes, message):
    with pytest.raises(ValueError, match=message):
        Grid(**axes)


# --- the store --------------------------------------------------------------------------------------------------

def test_store_round_trips_a_record_and_rejects_unsafe_keys(tmp_path):
    store = ResultStore(tmp_path / "cells")
    key = cell_key({"x": 3})
    saved = store.save(key, "m.f", {"x": 3}, {"value": np.float64(1.5), "per_layer": np.arange(3)}, 0.25, "host:1")
    assert saved == store.load(key)
    assert saved["result"] == {"value": 1.5, "per_layer": [0, 1, 2]}
    assert store.done() == {key} and key in store and len(store) == 1
    assert [p.name for p in (tmp_path / "cells").iterdir()] == [f"{key}.json"]  # no temporary files left
    with pytest.raises(KeyError, match="not in the results store"):
        store.load(cell_key({"x": 4}))
    with pytest.raises(ValueError, match="not a safe file name"):
        store.path("../escape")
    with pytest.raises(ValueError, match="cannot be stored as JSON"):
        store.save(cell_key({"x": 5}), "m.f", {"x": 5}, {"value": object()})
    assert store.done() == {key}


def test_unreadable_record_is_not_done_and_is_replaced(tmp_path):
    store = ResultStore(tmp_path)
    run_sweep(square, Grid(x=[1, 2]), store, progress=False)
    broken = store.path(cell_key({"x": 2}))
    broken.write_text("{ not json")
    with pytest.warns(StoreWarning, match="not a readable sweep record"):
        assert store.done() == {cell_key({"x": 1})}
    with pytest.raises(ValueError, match="not a readable sweep record"):
        store.load(cell_key({"x": 2}))
    with pytest.warns(StoreWarning):
        records = run_sweep(square, Grid(x=[1, 2]), store, progress=False)
    assert [r["result"]["square"] for r in records] == [1, 4]
    assert store.load(cell_key({"x": 2}))["result"] == {"square": 4}


# --- running and resuming -----------------------------------------------------------------------------------------

def test_serial_sweep_resumes_without_rerunning_or_touching_finished_cells(tmp_path):
    CALLS.clear()
    first = run_sweep(counted_square, Grid(x=[0, 1, 2], offset=1), tmp_path, progress=False)
    assert [r["result"]["square"] for r in first] == [1, 2, 5]
    assert all(r["function"] == function_name(counted_square) for r in first)
    before = snapshot(tmp_path)
    CALLS.clear()
    # a larger grid: only the new cells run, the old files are not rewritten
    second = run_sweep(counted_square, Grid(x=[0, 1, 2, 3, 4], offset=1), tmp_path, progress=False)
    assert sorted(c["x"] for c in CALLS) == [3, 4]
    assert second[:3] == first
    assert [r["result"]["square"] for r in second] == [x * x + 1 for x in range(5)]
    after = snapshot(tmp_path)
    assert {k: after[k] for k in before} == before
    # a changed fixed parameter is a different cell
    CALLS.clear()
    run_sweep(counted_square, Grid(x=[0], offset=2), tmp_path, progress=False)
    assert CALLS == [{"x": 0, "offset": 2}]


def test_a_failing_cell_is_not_recorded_and_is_retried(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "FAIL_ON", {2})
    with pytest.raises(SweepError, match=r"(?s)1 cell\(s\) failed.*'x': 2.*fails on purpose") as info:
        run_sweep(flaky_square, Grid(x=range(4)), tmp_path, progress=False)
    assert isinstance(info.value.__cause__, ArithmeticError)
    assert list(info.value.failures) == [cell_key({"x": 2})]
    store = ResultStore(tmp_path)
    assert store.done() == {cell_key({"x": x}) for x in (0, 1, 3)}  # the others were written
    before = snapshot(tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "FAIL_ON", set())
    records = run_sweep(flaky_square, Grid(x=range(4)), tmp_path, progress=False)
    assert [r["result"]["square"] for r in records] == [0, 1, 4, 9]
    after = snapshot(tmp_path)
    assert {k: after[k] for k in before} == before


def test_a_store_of_another_function_is_refused(tmp_path):
    run_sweep(square, Grid(x=[1]), tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"holds a result of .*square, but this sweep runs .*counted_square"):
        run_sweep(counted_square, Grid(x=[1]), tmp_path, progress=False)


def test_process_pool_gives_the_serial_results(tmp_path):
    grid = Grid(x=range(6), offset=[0, 3])
    serial = run_sweep(square, grid, tmp_path / "serial", progress=False)
    with executor_for("processes", workers=2) as pool:
        pooled = run_sweep(square, grid, tmp_path / "pool", pool, progress=False)
    assert [r["result"] for r in pooled] == [r["result"] for r in serial]
    assert [r["cell"] for r in pooled] == [r["cell"] for r in serial]
    assert all(r["worker"] != serial[0]["worker"] for r in pooled)  # they ran in other processes


def test_executor_for_rejects_unknown_schedulers():
    with pytest.raises(ValueError, match="scheduler 'cluster' is not known"):
        executor_for("cluster")
    with pytest.raises(ValueError, match="workers"):
        executor_for("processes", workers=0)
    with pytest.raises(ValueError, match="executor must be"):
        run_sweep(square, Grid(x=[1]), "unused-store", executor=3.5)


# --- Dask -----------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
                                       protocol="tcp", host="127.0.0.1")
    yield cluster
    cluster.close()


def test_dask_client_gives_the_serial_results(tmp_path, dask_cluster):
    distributed = pytest.importorskip("distributed")
    grid = Grid(x=range(5))
    serial = run_sweep(square, grid, tmp_path / "serial", progress=False)
    with distributed.Client(dask_cluster.scheduler_address) as client:
        dask = run_sweep(square, grid, tmp_path / "dask", client, progress=False)
    assert [r["result"] for r in dask] == [r["result"] for r in serial]


SCRIPT = """
import sys
import time
import uuid
from pathlib import Path

from unfoldtheory.sweep import Grid, run_sweep

ADDRESS, STORE, MARKERS, BLOCK = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
FAST, CELLS = {fast}, {cells}


def cell(x):
    (MARKERS / f"{{x}}-{{uuid.uuid4().hex}}").touch()
    deadline = time.monotonic() + 60
    while x >= FAST and BLOCK.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return {{"square": x * x}}


if __name__ == "__main__":
    run_sweep(cell, Grid(x=range(CELLS)), STORE, executor=ADDRESS, progress=False)
"""


def test_a_killed_dask_sweep_resumes_with_only_the_missing_cells(tmp_path, dask_cluster):
    """Cells x >= FAST block while BLOCK exists: the first run stores exactly the fast cells, then is killed."""
    fast, cells = 4, 8
    script = tmp_path / "sweep_script.py"
    script.write_text(textwrap.dedent(SCRIPT.format(fast=fast, cells=cells)))
    store_dir, markers, block = tmp_path / "store", tmp_path / "markers", tmp_path / "block"
    markers.mkdir()
    block.touch()
    argv = [sys.executable, str(script), dask_cluster.scheduler_address, str(store_dir), str(markers), str(block)]
    first = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while len(list(store_dir.glob("*.json"))) < fast:
        assert first.poll() is None, first.communicate()[0].decode()
        assert time.monotonic() < deadline, "the first run stored too few cells in 60 s"
        time.sleep(0.02)
    first.kill()
    first.wait()
    stored = snapshot(store_dir)
    assert set(stored) == {f"{cell_key({'x': x})}.json" for x in range(fast)}
    block.unlink()  # lets the orphaned blocked cells on the cluster finish

    second = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stdout + second.stderr

    after = snapshot(store_dir)
    assert {k: after[k] for k in stored} == stored  # finished cells untouched (bytes and mtime)
    calls = [int(p.name.split("-")[0]) for p in markers.iterdir()]
    assert all(calls.count(x) == 1 for x in range(fast))  # finished cells never ran again
    assert all(calls.count(x) >= 1 for x in range(fast, cells))
    records = ResultStore(store_dir).records()
    assert len(records) == cells
    assert sorted((r["cell"]["x"], r["result"]["square"]) for r in records) == [(x, x * x) for x in range(cells)]
    assert {r["function"] for r in records} == {"__main__.cell"}


# --- the real cell and the study ----------------------------------------------------------------------------------

TINY = {"m": 6, "n": 10, "steps": 8, "test_samples": 40, "batch_size": 16}


def test_train_cell_is_reproducible_and_reports_what_it_measured():
    from unfoldtheory.sweep.cells import train_cell  # here, so that process-pool workers importing this file skip torch

    a = train_cell(2, 0.3, 30, 1, **TINY)
    b = train_cell(2, 0.3, 30, 1, **TINY)
    assert {k: v for k, v in a.items() if k != "train_seconds"} == {k: v for k, v in b.items() if k != "train_seconds"}
    assert a["gap_db"] == pytest.approx(a["test_nmse_db"] - a["train_nmse_db"])
    assert all(math.isfinite(a[k]) for k in ("test_nmse_db", "train_nmse_db", "ista_nmse_db"))
    assert a["parameters"] == 2 * 2  # ALISTA: a step and a threshold per layer
    fresh = train_cell(2, 0.3, None, 1, **TINY)
    assert fresh["train_nmse_db"] is None and fresh["gap_db"] is None
    assert fresh["ista_nmse_db"] == a["ista_nmse_db"]  # same problem and test set, ISTA is not trained
    with pytest.raises(ValueError, match="not a sparse-recovery model"):
        train_cell(2, 0.3, 30, 1, model="LearnedRPCA", **TINY)


def test_depth_study_summarises_its_stored_cells(tmp_path):
    spec = importlib.util.spec_from_file_location("sweep_depth", ROOT / "studies" / "sweep_depth.py")
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    argv = ["--scheduler", "serial", "--out", str(tmp_path), "--depths", "1", "2", "--sparsities", "0.3", "--seeds", "0", "1",
            "--m", "6", "--n", "10", "--steps", "4", "--train-samples", "20", "--quiet"]
    assert study.main(argv) == 0
    rows = json.loads((tmp_path / "table.json").read_text())
    cells = [json.loads(p.read_text()) for p in (tmp_path / "cells").glob("*.json")]
    assert len(cells) == 4 and len(rows) == 2
    for row in rows:
        nmse = [c["result"]["test_nmse_db"] for c in cells if c["cell"]["depth"] == row["depth"]]
        assert row["seeds"] == 2
        assert row["test NMSE mean (dB)"] == pytest.approx(np.mean(nmse))
        assert row["test NMSE std (dB)"] == pytest.approx(np.std(nmse))
    assert (tmp_path / "nmse_vs_depth.png").stat().st_size > 0 and (tmp_path / "nmse_vs_depth.pdf").stat().st_size > 0
