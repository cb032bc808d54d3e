"""`dastrax bench --small`: a smoke test of the benchmark (no timing thresholds)."""

from __future__ import annotations

import json
import subprocess
import sys

from dastrax.bench.steps import SCALING_ONLY, STEPS, TINY_ROWS


def _run(args, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "dastrax.bench", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _positive(step: dict, name: str) -> None:
    for field in ("seconds", "peak_rss_mb", "bytes"):
        assert step[field] > 0, f"{name}: {field} = {step[field]}"


def test_bench_small_reports_every_step(tmp_path):
    report_file = tmp_path / "bench.json"
    storage = tmp_path / "data"
    proc = _run(["--small", "--storage", str(storage), "--json", str(report_file)], tmp_path)
    report = json.loads(report_file.read_text())
    assert set(report["steps"]) == set(STEPS) - SCALING_ONLY
    for name, step in report["steps"].items():
        _positive(step, name)
        assert step["samples"] and all(s > 0 for s in step["samples"])
        assert step["cpu_seconds"] >= 0
    # the loads return the superrun's rows; the two-column load is narrower
    steps = report["steps"]
    assert steps["load_stored"]["rows"] == steps["load_unstored"]["rows"] == 3 * 4 * 2_000
    assert steps["load_two_columns"]["bytes"] < steps["load_stored"]["bytes"]
    assert steps["open_unstored"]["blocks"] == 1  # 29 MB of rows: one block (by bytes)
    assert {t["target"] for t in report["targets"]} >= {"load stored", "persist"}
    for t in report["targets"]:
        assert "met" in t
    # the table names every step, with a ratio to its limit
    assert "load stored superrun (get_array)" in proc.stdout
    assert "× fromzarr_stored" in proc.stdout and "× load_unstored" in proc.stdout
    # the data stays where it was asked to go
    assert any(p.name.startswith("_bench-peaks-") for p in storage.iterdir())


def test_bench_scaling_small(tmp_path):
    report_file = tmp_path / "scaling.json"
    args = ["--scaling", "--scaling-sizes", "3", "--no-cluster", "--json", str(report_file)]
    proc = _run(args, tmp_path)
    scaling = json.loads(report_file.read_text())["scaling"]
    assert set(scaling) == {"3"}
    row = scaling["3"]
    assert row["subruns"] == 3 and row["make_seconds"] > 0
    for name in ("open_unstored", "persist", "open_stored", "load_stored", "load_big"):
        _positive(row[name], name)
    # one block for 3 tiny subruns (bytes, not stored chunks), and a graph within bounds
    assert row["open_unstored"]["blocks"] == 1
    assert row["sum_unstored"]["tasks"] <= row["sum_unstored"]["task_bound"]
    # the same sums unstored and persisted (the cluster steps: test_cluster.py)
    want = 3 * TINY_ROWS  # area is 1 a row
    for name in ("sum_unstored", "sum_stored"):
        assert row[name]["sum"] == want, name
    assert row["area_unstored"]["rows"] == row["area_stored"]["rows"] == want
    assert row["load_big"]["rows"] == row["load_stored"]["rows"] == want
    # the floor of the unstored get_array(area): its 4 columns' chunk files, read
    assert row["files_area_unstored"]["files"] == 3 * 4
    assert row["files_area_unstored"]["bytes"] > 0
    assert "(floor) reading its files" in proc.stdout
    # the table and the targets
    assert "| sum, threads |" in proc.stdout and "load all, 10 big subruns" in proc.stdout
    assert "graph tasks / bound" in proc.stdout
