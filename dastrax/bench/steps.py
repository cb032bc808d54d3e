"""``dastrax bench``: how fast dastrax loads and persists superruns, next to the limit.

It makes a superrun of ``--subruns`` subruns of ``--chunks`` chunks of ``--rows-per-chunk``
``peaks`` rows (the :mod:`dastrax.testing.plugins` plugins, rows of about 1.2 kB), then times each
step **in a fresh Python process** (page cache warm, Python memory fresh) and reports its
peak RSS:

- ``open_*``: opening the superrun lazily (``get_dataset``, metadata only);
- ``load_*``: loading it into numpy (``get_array``), unstored and stored;
- ``persist``: ``persist_superrun``;
- ``load_two_columns``: two scalar columns of the stored superrun;
- the limits: a plain ``dask.array.from_zarr(...).compute()`` of the same zarr arrays
  (``fromzarr_*``), a plain read of the chunk files (``read_*``) and a plain dask write
  to zarr (``da.store`` of in-memory rows into arrays with the persisted store's codecs
  and chunks, what ``to_zarr`` does; ``to_zarr``). The limit of persisting is
  ``fromzarr_subruns + to_zarr``.

``--scaling`` times making (all in one ``make`` call), opening and persisting superruns of
many tiny subruns (two chunks of 100 rows each), with the targets for 1000 and 10 000.

Examples
--------
::

    dastrax bench --small --json bench.json
    python -m dastrax.bench --subruns 10 --chunks 10 --rows-per-chunk 20000
    python -m dastrax.bench --scaling
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import click

from dastrax.cli.env import CONTEXT_SETTINGS, with_env
from dastrax.load import openindex
from dastrax.storage._limits import from_zarr_limit, store_limit, zarr_version

__all__ = ["bench_command", "run_bench", "run_scaling"]

from dastrax.bench.setup import (
    FULL,
    SCALING_N,
    SMALL,
    SMALL_SCALING_N,
    STEP_MARK,
    SUPERRUN,
    TARGET,
    TINY_CHUNKS,
    TINY_ROWS,
    TWO_COLUMNS,
    context,
    make_data,
)

# (step, limit it is compared with, or a tuple of limits that add up)
TARGETS = [
    # (name, step, limit steps, max ratio, what)
    ("load stored", "load_stored", ("fromzarr_stored",), 1.25, "time"),
    ("load stored / load unstored", "load_stored", ("load_unstored",), 1.0, "time"),
    ("load unstored", "load_unstored", ("fromzarr_subruns",), 1.5, "time"),
    ("persist", "persist", ("fromzarr_subruns", "to_zarr"), 2.0, "time"),
    ("two columns / full load", "load_two_columns", ("load_stored",), 1 / 20, "time"),
]


# --------------------------------------------------------------------------------------
# steps (each run in a fresh process by `run_step`)
# --------------------------------------------------------------------------------------
def _groups(st, stored: bool, params: dict) -> list[str]:
    """Paths of the zarr groups a load of the superrun reads."""
    root = st.storage[0].url
    if stored:
        return [os.path.join(root, str(st.key_for(SUPERRUN, TARGET)))]
    ids = [str(i) for i in range(params["subruns"])]
    return [os.path.join(root, str(st.key_for(r, TARGET))) for r in ids]


def _field_names(st) -> list[str]:
    return list(st._registry.plugin(TARGET, "0").dtype.names)


def _chunk_files(group: str, names) -> list[str]:
    out: list[str] = []
    for name in names:
        for base, _dirs, files in os.walk(os.path.join(group, name, "c")):
            out.extend(os.path.join(base, f) for f in files)
    return sorted(out)


def _nbytes(arrays) -> int:
    if isinstance(arrays, dict):
        arrays = arrays.values()
    return int(sum(a.nbytes for a in arrays))


def step_open(st, params, stored):
    t0 = time.perf_counter()
    ds = st.get_dataset(SUPERRUN, TARGET)
    seconds = time.perf_counter() - t0
    blocks = ds["time"].data.numblocks[0]
    nbytes = int(sum(v.nbytes for v in ds.data_vars.values()))
    return {"seconds": seconds, "bytes": nbytes, "blocks": blocks, "stored": stored}


def step_load(st, params, stored, columns=None):
    t0 = time.perf_counter()
    arr = st.get_array(SUPERRUN, TARGET, columns=columns)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "bytes": int(arr.nbytes), "rows": len(arr), "stored": stored}


def step_persist(st, params):
    key = str(st.key_for(SUPERRUN, TARGET))
    frontend = st.storage[0]
    if frontend.has(key):
        frontend.delete(key)
    t0 = time.perf_counter()
    st.persist_superrun(SUPERRUN, TARGET)
    seconds = time.perf_counter() - t0
    meta = st.get_metadata(SUPERRUN, TARGET)
    rows = int(sum(c["n"] for c in meta["chunks"]))
    nbytes = rows * st._registry.plugin(TARGET, "0").dtype.itemsize
    return {"seconds": seconds, "bytes": nbytes, "rows": rows, "chunks": len(meta["chunks"])}


def step_fromzarr(st, params, stored):
    """The limit of a load: a plain ``from_zarr(...).compute()`` of the same arrays."""
    groups = _groups(st, stored, params)
    result = from_zarr_limit([f"{g}/{n}" for g in groups for n in _field_names(st)])
    return {**result, "stored": stored}


def step_read(st, params, stored):
    """A plain read of every chunk file of the same arrays (bytes only, one thread)."""
    files = _chunk_files_of(st, params, stored)
    t0 = time.perf_counter()
    total = 0
    for path in files:
        with open(path, "rb") as f:
            total += len(f.read())
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "bytes": total, "files": len(files), "stored": stored}


def step_read_area(st, params, stored):
    """The floor of ``get_array(columns=["area"])``: open and read (no checksum, no
    decompression) every chunk file of the columns it loads — ``area`` and the ones
    giving each row's time and end — one after another, as plain Python does."""
    names = ["time", "length", "dt", "area"]
    files = [f for g in _groups(st, stored, params) for f in _chunk_files(g, names)]
    t0 = time.perf_counter()
    total = 0
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            total += len(os.read(fd, 1 << 30))
        finally:
            os.close(fd)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "bytes": total, "files": len(files), "stored": stored}


def _chunk_files_of(st, params, stored):
    names = _field_names(st)
    return [f for g in _groups(st, stored, params) for f in _chunk_files(g, names)]


def step_to_zarr(st, params):
    """The write limit of persisting: a plain dask write (``da.store``, chunks aligned) of
    the superrun's rows, in memory (read before the clock starts), into arrays with the
    persisted store's codecs and chunks."""
    src = _groups(st, True, params)[0]
    out_dir = tempfile.mkdtemp(prefix="to_zarr-", dir=params["storage"])
    try:
        return store_limit(src, _field_names(st), out_dir, st.context_config["compressor"])
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def _task_bound(ds) -> int:
    """The most tasks issue 19 allows a lazy load's graph: (fields + 2) x
    ceil(bytes / array.chunk-size) + 4 x fields + 64."""
    import dask
    from dask.utils import parse_bytes

    fields = len(ds.data_vars)
    nbytes = int(sum(v.nbytes for v in ds.data_vars.values()))
    limit = parse_bytes(dask.config.get("array.chunk-size"))
    return (fields + 2) * -(-nbytes // limit) + 4 * fields + 64


def _warm_up() -> None:
    """The imports a first reduction makes (dask's and xarray's reductions, flox), paid
    before the clock starts: the steps time the work, not the imports."""
    import dask.array as da
    import numpy as np
    import xarray as xr

    ds = xr.Dataset(
        {"a": ("x", da.ones(4, chunks=2))}, coords={"s": ("x", np.array([0, 0, 1, 1]))}
    ).set_xindex("s")
    ds.a.sum().compute()
    ds.a.groupby("s").mean().compute()


def step_sum(st, params, stored):
    """``ds.area.sum()`` of the lazy superrun (the compute, after the open)."""
    _warm_up()
    t0 = time.perf_counter()
    ds = st.get_dataset(SUPERRUN, TARGET)
    opened = time.perf_counter() - t0
    t0 = time.perf_counter()
    total = float(ds.area.sum().compute())
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "open_seconds": opened,
        "sum": total,
        "tasks": len(ds.__dask_graph__()),
        "task_bound": _task_bound(ds),
        "stored": stored,
    }


def step_cluster(st, params, stored):
    """On a fresh 2-worker ``LocalCluster`` (processes): ``ds.area.sum()`` and the
    per-subrun mean ``ds.area.groupby("subrun").mean()`` (labels not computed first),
    checked against numpy's per-subrun means."""
    import numpy as np
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        cst = context(params, client=client)
        _warm_up()
        t0 = time.perf_counter()
        ds = cst.get_dataset(SUPERRUN, TARGET)
        opened = time.perf_counter() - t0
        t0 = time.perf_counter()
        total = float(ds.area.sum().compute())
        seconds = time.perf_counter() - t0
        out = {"seconds": seconds, "open_seconds": opened, "sum": total, "stored": stored}
        if not stored:
            t0 = time.perf_counter()
            means = ds.area.groupby("subrun").mean().compute()
            out["groupby_seconds"] = time.perf_counter() - t0
            area = ds.area.values.astype(np.float64)
            codes = ds.subrun.values
            want = np.bincount(codes, area) / np.bincount(codes)
            got = means.values
            out["groupby_equal"] = bool(
                np.array_equal(means.subrun.values, np.arange(len(want)))
                and np.allclose(got, want, rtol=1e-6)
            )
    return out


#: steps of ``--scaling`` only
SCALING_ONLY = {
    "open_indexed",
    "sum_unstored",
    "sum_stored",
    "area_unstored",
    "area_stored",
    "files_area_unstored",
    "cluster_unstored",
    "cluster_stored",
    "load_big",
}


def step_load_big(st, params):
    """All columns of the persisted superrun of 10 big subruns with the same bytes."""
    big = dict(params, **_big_sizes(params), storage=params["storage"] + "-big")
    return step_load(context(big), big, True)


def _big_sizes(params) -> dict:
    rows = params["subruns"] * params["chunks"] * params["rows_per_chunk"]
    return {"subruns": 10, "chunks": 10, "rows_per_chunk": max(1, rows // 100)}


STEPS = {
    "sum_unstored": lambda st, p: step_sum(st, p, False),
    "sum_stored": lambda st, p: step_sum(st, p, True),
    "area_unstored": lambda st, p: step_load(st, p, False, ["area"]),
    "area_stored": lambda st, p: step_load(st, p, True, ["area"]),
    "cluster_unstored": lambda st, p: step_cluster(st, p, False),
    "cluster_stored": lambda st, p: step_cluster(st, p, True),
    "load_big": step_load_big,
    "open_unstored": lambda st, p: step_open(st, p, False),
    "open_indexed": lambda st, p: step_open(st, p, False),
    "load_unstored": lambda st, p: step_load(st, p, False),
    "fromzarr_subruns": lambda st, p: step_fromzarr(st, p, False),
    "read_subruns": lambda st, p: step_read(st, p, False),
    "files_area_unstored": lambda st, p: step_read_area(st, p, False),
    "to_zarr": step_to_zarr,
    "persist": step_persist,
    "open_stored": lambda st, p: step_open(st, p, True),
    "load_stored": lambda st, p: step_load(st, p, True),
    "fromzarr_stored": lambda st, p: step_fromzarr(st, p, True),
    "read_stored": lambda st, p: step_read(st, p, True),
    "load_two_columns": lambda st, p: step_load(st, p, True, TWO_COLUMNS),
}

DESCRIPTIONS = {
    "open_unstored": "open unstored superrun (get_dataset)",
    "open_indexed": "open it again, from the open index (get_dataset)",
    "load_unstored": "load unstored superrun (get_array)",
    "fromzarr_subruns": "limit: from_zarr().compute() of subruns",
    "read_subruns": "limit: read subrun chunk files",
    "to_zarr": "limit: plain da.store to zarr (same codecs)",
    "persist": "persist_superrun",
    "open_stored": "open stored superrun (get_dataset)",
    "load_stored": "load stored superrun (get_array)",
    "fromzarr_stored": "limit: from_zarr().compute() of stored",
    "read_stored": "limit: read stored chunk files",
    "load_two_columns": "load two columns of stored superrun",
}


def _step_main(argv: list[str]) -> None:
    """Child side: ``python -m dastrax.bench _step NAME PARAMS_JSON``."""
    name, params = argv[0], json.loads(argv[1])
    st = context(params)
    import psutil

    rss_before = psutil.Process().memory_info().rss
    cpu0 = time.process_time()
    result = STEPS[name](st, params)
    result["cpu_seconds"] = time.process_time() - cpu0
    result["rss_before_mb"] = rss_before / 1e6
    result["peak_rss_mb"] = peak_rss() / 1e6
    print(STEP_MARK + json.dumps(result), flush=True)


def peak_rss() -> int:
    """This process's peak resident memory in bytes.

    ``VmHWM`` of ``/proc/self/status`` where there is one: ``ru_maxrss`` survives
    ``execve`` on Linux, so a child would report its parent's size at the fork.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_step(name: str, params: dict, env: dict | None = None) -> dict:
    """Run step ``name`` in a fresh Python process (``env``: environment variables to
    set there); its measurements."""
    env = {**os.environ, **(env or {})}
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join([here, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    proc = subprocess.run(
        [sys.executable, "-m", "dastrax.bench", "_step", name, json.dumps(params)],
        capture_output=True,
        text=True,
        env=env,
    )
    for line in proc.stdout.splitlines():
        if line.startswith(STEP_MARK):
            return json.loads(line[len(STEP_MARK) :])
    raise click.ClickException(
        f"bench step {name} failed (exit code {proc.returncode}):\n{proc.stderr[-4000:]}"
    )


# --------------------------------------------------------------------------------------
# the runs
# --------------------------------------------------------------------------------------
def _best(samples: list[dict]) -> dict:
    best = dict(min(samples, key=lambda s: s["seconds"]))
    best["samples"] = [s["seconds"] for s in samples]
    best["peak_rss_mb"] = max(s["peak_rss_mb"] for s in samples)
    if best["seconds"] > 0 and best.get("bytes"):
        best["mb_per_s"] = best["bytes"] / 1e6 / best["seconds"]
    return best


def run_bench(params: dict, repeat: int = 1, echo=print) -> dict:
    """Make the data (if needed) and time every step; the report as a dict."""
    echo(
        f"dastrax bench: {params['subruns']} subruns x {params['chunks']} chunks x "
        f"{params['rows_per_chunk']} rows of {TARGET} in {params['storage']}"
    )
    made = make_data(params)
    echo(f"  data ready in {made:.1f} s")
    order = [
        ["read_subruns"],
        ["open_unstored", "load_unstored", "fromzarr_subruns"] * repeat,
        ["persist", "to_zarr"] * repeat,
        ["read_stored"],
        ["open_stored", "load_stored", "fromzarr_stored", "load_two_columns"] * repeat,
    ]
    samples: dict[str, list[dict]] = {}
    for name in [s for group in order for s in group]:
        result = run_step(name, params)
        samples.setdefault(name, []).append(result)
        echo(f"  {name:<18} {result['seconds']:8.3f} s  peak RSS {result['peak_rss_mb']:7.0f} MB")
    steps = {name: _best(s) for name, s in samples.items()}
    report = {
        "params": params,
        "repeat": repeat,
        "make_seconds": made,
        "machine": _machine(),
        "steps": steps,
    }
    report["targets"] = _check_targets(steps)
    return report


def _check_targets(steps: dict) -> list[dict]:
    out = []
    for label, step, limits, max_ratio, _what in TARGETS:
        if step not in steps or any(x not in steps for x in limits):
            continue
        limit = sum(steps[x]["seconds"] for x in limits)
        ratio = steps[step]["seconds"] / limit if limit > 0 else float("inf")
        out.append(
            {
                "target": label,
                "step": step,
                "limit": "+".join(limits),
                "ratio": ratio,
                "max_ratio": max_ratio,
                "met": ratio <= max_ratio,
            }
        )
    if "load_stored" in steps:
        s = steps["load_stored"]
        ratio = s["peak_rss_mb"] / (s["bytes"] / 1e6)
        out.append(
            {
                "target": "load stored peak RSS / result size",
                "step": "load_stored",
                "ratio": ratio,
                "max_ratio": 1.3,
                "met": ratio <= 1.3,
            }
        )
    if "persist" in steps:
        rss = steps["persist"]["peak_rss_mb"]
        out.append(
            {
                "target": "persist peak RSS <= 1000 MB",
                "step": "persist",
                "value_mb": rss,
                "met": rss <= 1000,
            }
        )
    return out


def _machine() -> dict:
    import dask
    import numpy

    from dastrax import __version__

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "dastrax": __version__,
        "dask": dask.__version__,
        "zarr": zarr_version(),
        "numpy": numpy.__version__,
    }


def run_scaling(base: dict, sizes, echo=print, cluster: bool = True) -> dict:
    """Superruns of N tiny subruns (TINY_CHUNKS chunks, TINY_ROWS rows each), unstored
    and persisted side by side, each step in a fresh process: make (in one call), the
    first open with no cache of earlier opens, the lazy graph's size, ``get_array`` of
    one column, ``ds.area.sum()`` on threads and on a 2-worker ``LocalCluster``, the
    per-subrun mean there, persisting, and loading all columns of the persisted copy
    next to a persisted superrun of 10 big subruns with the same bytes."""
    out = {}
    cold = {openindex.INDEX_ENV: "0"}  # no cache of earlier opens
    for n in sizes:
        params = dict(
            base,
            subruns=n,
            chunks=TINY_CHUNKS,
            rows_per_chunk=TINY_ROWS // TINY_CHUNKS,
            storage=os.path.join(base["storage"], f"scaling-{n}"),
        )
        timings: dict = {}
        made = make_data(params, timings)
        # (0 when an earlier run made them: --storage kept)
        row = {"subruns": n, "make_seconds": timings.get("make", made)}
        steps = ["open_unstored", "area_unstored", "files_area_unstored", "sum_unstored"]
        steps += ["cluster_unstored"] if cluster else []
        steps += ["persist", "open_stored", "area_stored", "sum_stored"]
        steps += ["cluster_stored"] if cluster else []
        steps += ["load_stored"]
        for name in steps:
            result = run_step(name, params, cold)
            row[name] = result
            row[f"{name}_per_subrun_ms"] = result["seconds"] / n * 1e3
            echo(f"  N={n:>6} {name:<17} {result['seconds']:8.3f} s")
        big = dict(params, **_big_sizes(params), storage=params["storage"] + "-big")
        make_data(big)
        run_step("persist", big, cold)
        row["load_big"] = run_step("load_big", params, cold)
        echo(f"  N={n:>6} {'load_big':<17} {row['load_big']['seconds']:8.3f} s")
        out[str(n)] = row
    return out


# --------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------
LIMIT_OF: dict[str, list[tuple[str, ...]]] = {
    "load_unstored": [("fromzarr_subruns",)],
    "persist": [("fromzarr_subruns", "to_zarr")],
    "load_stored": [("fromzarr_stored",), ("load_unstored",)],
    "load_two_columns": [("load_stored",)],
}


def format_table(report: dict) -> str:
    """The steps as a Markdown table: seconds, MB/s, peak RSS, ratio to the limit."""
    steps = report["steps"]
    lines = [
        "| step | seconds | MB/s | peak RSS (MB) | ratio to limit |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for name in STEPS:
        if name not in steps:
            continue
        s = steps[name]
        mbs = f"{s['mb_per_s']:.0f}" if "mb_per_s" in s and not name.startswith("open") else ""
        ratios = []
        for limits in LIMIT_OF.get(name, []):
            if all(x in steps for x in limits):
                limit = sum(steps[x]["seconds"] for x in limits)
                ratios.append(f"{s['seconds'] / limit:.2f} × {' + '.join(limits)}")
        ratio = "; ".join(ratios)
        lines.append(
            f"| {DESCRIPTIONS[name]} | {s['seconds']:.3f} | {mbs} | {s['peak_rss_mb']:.0f} | "
            f"{ratio} |"
        )
    return "\n".join(lines)


def format_targets(report: dict) -> str:
    lines = []
    for t in report.get("targets", []):
        mark = "met" if t["met"] else "MISSED"
        if "ratio" in t:
            lines.append(
                f"- {t['target']}: {t['ratio']:.3f} (target <= {t['max_ratio']:.3g}) {mark}"
            )
        else:
            lines.append(f"- {t['target']}: {t['value_mb']:.0f} MB {mark}")
    return "\n".join(lines)


def _sec(row: dict, step: str, key: str = "seconds") -> float:
    return float((row.get(step) or {}).get(key, float("nan")))


def scaling_targets(row: dict, rows: dict) -> list[tuple[str, float, float, bool]]:
    """Issue 19's targets for one size: ``(what, measured, at most, met)``."""
    out = []
    n = row["subruns"]
    s = row.get("sum_unstored") or {}
    if s:
        out.append(
            ("graph tasks / bound", s["tasks"], s["task_bound"], s["tasks"] <= s["task_bound"])
        )
    pairs = [
        ("get_array(area): unstored / persisted", "area_unstored", "area_stored", 3.0),
        # (not a target: the floor of the line above — its files read, nothing else)
        (
            "(floor) reading its files / persisted get_array(area)",
            "files_area_unstored",
            "area_stored",
            float("inf"),
        ),
        ("ds.area.sum() threads / get_array(area)", "sum_unstored", "area_unstored", 1.5),
        ("ds.area.sum() cluster: unstored / persisted", "cluster_unstored", "cluster_stored", 3.0),
        ("load all columns: persisted / 10 big subruns", "load_stored", "load_big", 1.2),
    ]
    for label, a, b, limit in pairs:
        if a in row and b in row:
            ratio = _sec(row, a) / _sec(row, b)
            out.append((label, ratio, limit, ratio <= limit))
    c = row.get("cluster_unstored") or {}
    if "groupby_seconds" in c:
        ratio = c["groupby_seconds"] / c["seconds"]
        out.append(("groupby('subrun').mean() / sum, cluster", ratio, 2.0, ratio <= 2.0))
        out.append(
            ("groupby means equal numpy's", float(c["groupby_equal"]), 1.0, c["groupby_equal"])
        )
    first = {5000: 0.25, 10_000: 0.5}.get(n)
    if first is not None:
        v = _sec(row, "open_unstored")
        out.append(("first open, no cache (s)", v, first, v <= first))
    small = rows.get(str(n // 10))
    if small is not None and small.get("make_seconds"):
        ratio = row["make_seconds"] / small["make_seconds"]
        out.append((f"make {n} / make {n // 10}", ratio, 12.0, ratio <= 12.0))
    return out


SCALING_COLUMNS = [
    ("first open", "open_unstored", "seconds"),
    ("get_array(area)", "area_unstored", "seconds"),
    ("its chunk files read (floor)", "files_area_unstored", "seconds"),
    ("sum, threads", "sum_unstored", "seconds"),
    ("sum, cluster", "cluster_unstored", "seconds"),
    ("groupby mean, cluster", "cluster_unstored", "groupby_seconds"),
    ("persist", "persist", "seconds"),
    ("open persisted", "open_stored", "seconds"),
    ("get_array(area) persisted", "area_stored", "seconds"),
    ("sum persisted, threads", "sum_stored", "seconds"),
    ("sum persisted, cluster", "cluster_stored", "seconds"),
    ("load all persisted", "load_stored", "seconds"),
    ("load all, 10 big subruns", "load_big", "seconds"),
]


def format_scaling(scaling: dict) -> str:
    """The scaling rows side by side (seconds), then issue 19's targets per size."""
    sizes = list(scaling)
    lines = [
        "| step | " + " | ".join(f"{scaling[n]['subruns']} subruns" for n in sizes) + " |",
        "| --- |" + " ---: |" * len(sizes),
        "| make in one call | "
        + " | ".join(f"{scaling[n]['make_seconds']:.1f}" for n in sizes)
        + " |",
        "| graph tasks (bound) | "
        + " | ".join(
            f"{_sec(scaling[n], 'sum_unstored', 'tasks'):.0f} "
            f"({_sec(scaling[n], 'sum_unstored', 'task_bound'):.0f})"
            for n in sizes
        )
        + " |",
    ]
    for label, step, key in SCALING_COLUMNS:
        cells = [_sec(scaling[n], step, key) for n in sizes]
        lines.append(f"| {label} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
    lines.append("")
    for n in sizes:
        for what, value, limit, met in scaling_targets(scaling[n], scaling):
            mark = "met" if met else "MISSED"
            size = scaling[n]["subruns"]
            if limit == float("inf"):  # a floor, for reading the line above it
                lines.append(f"- {size} subruns: {what}: {value:.3g}")
                continue
            lines.append(f"- {size} subruns: {what}: {value:.3g} (target <= {limit:g}) {mark}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------
@click.command("bench", context_settings=CONTEXT_SETTINGS)
@click.option("--subruns", type=int, default=None, help="subruns of the superrun [10]")
@click.option("--chunks", type=int, default=None, help="chunks of each subrun [10]")
@click.option("--rows-per-chunk", type=int, default=None, help="peaks rows a chunk [20000]")
@click.option("--small", is_flag=True, help="a small, quick preset (for CI)")
@click.option("--scaling", is_flag=True, help="time opening and persisting 100..10 000 subruns")
@click.option("--scaling-sizes", default=None, help="comma-separated subrun counts for --scaling")
@click.option(
    "--cluster/--no-cluster",
    default=True,
    show_default=True,
    help="--scaling: also time the lazy superrun on a 2-worker LocalCluster",
)
@click.option(
    "--minbias", is_flag=True, help="minimum-bias superruns and selections against the naive way"
)
@click.option("--extend", "extend_", is_flag=True, help="persisting after adding one subrun")
@click.option("--repeat", type=int, default=1, show_default=True, help="runs of each step; best")
@click.option("--json", "json_file", default=None, help="write the report to this JSON file")
@with_env()
def bench_command(
    env,
    subruns,
    chunks,
    rows_per_chunk,
    small,
    scaling,
    scaling_sizes,
    cluster,
    minbias,
    extend_,
    repeat,
    json_file,
):
    """Time loading and persisting a superrun, each step in a fresh process, next to the
    read/write limit (plain zarr + dask), and print a table of seconds, MB/s, peak RSS
    and ratios.

    Takes the options of every command: --storage (default here: a temporary
    directory, removed afterwards), --scheduler, --config / $DASTRAX_CONFIG (compressor,
    chunk_target_size_mb, [config] plugin options) and --set OPTION=VALUE (plugin
    options, not the sizes).

    \b
    Examples:
      dastrax bench --small
      dastrax bench --repeat 3 --json bench.json
      dastrax bench --scaling
      dastrax bench --minbias
      dastrax bench --extend
    """
    settings = env.settings
    preset = SMALL if small else FULL
    sizes = dict(
        subruns=subruns or preset["subruns"],
        chunks=chunks or preset["chunks"],
        rows_per_chunk=rows_per_chunk or preset["rows_per_chunk"],
    )
    given = env.overrides.get("storage")
    temporary = given is None
    root = tempfile.mkdtemp(prefix="dastrax-bench-") if temporary else os.path.abspath(given)
    os.makedirs(root, exist_ok=True)
    scheduler = "threads" if settings.scheduler == "auto" else settings.scheduler
    params = dict(
        sizes,
        storage=root,
        scheduler=scheduler,
        context_config={
            "compressor": settings.compressor,
            "chunk_target_size_mb": settings.chunk_target_size_mb,
        },
        plugin_options=dict(settings.config),
    )
    try:
        if minbias:
            from dastrax.bench.minbias import run_minbias

            click.echo("dastrax bench --minbias")
            report = run_minbias(root, echo=click.echo, small=small)
        elif extend_:
            from dastrax.bench.extend import run_extend

            click.echo("dastrax bench --extend")
            ns = (10, 100) if small else (10, 100, 1000)
            report = run_extend(root, sizes=ns, echo=click.echo)
        elif scaling:
            if scaling_sizes:
                ns = [int(x) for x in scaling_sizes.split(",") if x.strip()]
            else:
                ns = list(SMALL_SCALING_N if small else SCALING_N)
            click.echo(f"dastrax bench --scaling: superruns of {ns} subruns of {TINY_ROWS} rows")
            table = run_scaling(params, ns, echo=click.echo, cluster=cluster)
            report = {"params": params, "machine": _machine(), "scaling": table}
            click.echo("")
            click.echo(format_scaling(table))
        else:
            report = run_bench(params, repeat=max(1, repeat), echo=click.echo)
            click.echo("")
            click.echo(format_table(report))
            click.echo("")
            if sizes != FULL:
                click.echo(
                    "(the targets are set for the full size: --subruns 10 --chunks 10 "
                    "--rows-per-chunk 20000; smaller runs show fixed costs)"
                )
            click.echo(format_targets(report))
        if json_file:
            with open(json_file, "w") as f:
                json.dump(report, f, indent=1, default=str)
            click.echo(f"report written to {json_file}")
    finally:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)


def main(argv=None) -> None:
    """``python -m dastrax.bench``: a step in a child process, or the bench command."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_step"]:
        _step_main(argv[1:])
    else:
        bench_command(argv)
