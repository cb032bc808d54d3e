"""Soak test (issues 13 and 22): three real processes do random makes, loads, superrun
definitions, redefinitions (``overwrite=True``), extensions, persists and deletes over one
storage for a bounded time, while one of them is killed with SIGKILL and restarted at
random — on each backend: a local directory, a ``ZarrDirectory`` on the S3 API server
(moto) and an ``IcechunkRepository`` on that server. ``DASTRAX_SOAK_SECONDS`` sets the time
per backend (default 12 s in CI; e.g. 90 by hand), counted from when the three workers
have imported dastrax, and longer where they have not yet done a few operations
(``MIN_OPERATIONS``). After every step the worker checks an invariant:

- every row loaded is right: ``time``, ``channel``, ``length``, ``dt`` and ``area`` follow the
  formula of ``dastrax.testutils`` (API.md) for the run's offset and the options asked for;
  a superrun gives exactly its spec's rows of its subruns, cut to the ranges;
- data reported stored (``is_stored``) loads complete and right;
- every exception is a ``dastrax.DastraxError``, and none is ``CorruptData`` (nothing here
  damages stored bytes: data deleted by a redefinition must not be reported damaged).

Only the public API is used. Workers are this file run as a script (``python test_soak.py
worker ...``); each writes its figures to a JSON file; the test adds them up and prints them.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pytest

SECONDS = float(os.environ.get("DASTRAX_SOAK_SECONDS", "12"))
#: operations the workers do at least: the soak goes on past SECONDS, 3 s at a time, until
#: they have (up to 5 x SECONDS). On the object stores an operation takes seconds (moto
#: answers the hundreds of requests of a make one by one) and a killed worker imports
#: dastrax again: on the loaded machine 12 s gave 3 to 6 operations there.
MIN_OPERATIONS = {"local": 21, "s3": 5, "icechunk": 5}
N_CHUNKS, RECS, CHUNK_NS = 4, 40, 1000
SPAN = N_CHUNKS * CHUNK_NS
OFFSETS = {"0": 0, "1": 10_000, "2": 20_000, "3": 30_000}
BONUSES = (0, 1, 2)
TARGETS = ("peaks", "peak_classification")
SUPERRUNS = ("_s0", "_s1")
SPECS = (
    ["0", "1"],
    {"1": [(10_000, 12_000)], "2": "all"},
    ["2", "3"],
    {"0": [(500, 3_500)], "3": [(31_000, 34_000)]},
)
CONFIG = {"n_chunks": N_CHUNKS, "recs_per_chunk": RECS, "chunk_ns": CHUNK_NS}
CONFIG |= {"n_channels": 2, "waveform_length": 4}


# -- the formula ---------------------------------------------------------------------------
def expected(run_id: str, bonus: int) -> dict[str, np.ndarray]:
    """Columns of ``peaks`` of ``run_id`` by the testutils formula (API.md)."""
    j = np.arange(RECS)
    starts = OFFSETS[run_id] + CHUNK_NS * np.arange(N_CHUNKS)
    time_ = (starts[:, None] + (j[None, :] * CHUNK_NS) // RECS).ravel()
    channel = np.tile(j, N_CHUNKS)
    return {"time": time_, "channel": channel, "area": np.full(len(time_), 1.0 + bonus)}


def expected_superrun(spec, bonus: int) -> dict[str, np.ndarray]:
    parts = []
    spec = dict.fromkeys(spec, "all") if isinstance(spec, list) else spec
    for run_id in sorted(spec, key=lambda r: OFFSETS[r]):
        cols = expected(run_id, bonus)
        ranges = spec[run_id]
        if ranges == "all":
            ranges = [(OFFSETS[run_id], OFFSETS[run_id] + SPAN)]
        keep = np.zeros(len(cols["time"]), bool)
        for s, e in ranges:
            keep |= (cols["time"] >= s) & (cols["time"] + 1 <= e)
        parts.append({k: v[keep] for k, v in cols.items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def wrong_rows(rows: np.ndarray, want: dict[str, np.ndarray], target: str) -> str | None:
    """Why ``rows`` are not ``want``, or None."""
    if len(rows) != len(want["time"]):
        return f"{len(rows)} rows, expected {len(want['time'])}"
    if not np.array_equal(rows["time"], want["time"]):
        return "wrong times"
    if not (np.all(rows["length"] == 1) and np.all(rows["dt"] == 1)):
        return "wrong length/dt"
    if target == "peaks":
        if not np.array_equal(rows["channel"], want["channel"]):
            return "wrong channels"
        if not np.array_equal(rows["area"], want["area"].astype(np.float32)):
            return f"wrong areas {np.unique(rows['area'])} (want {want['area'][:1]})"
    elif not np.array_equal(rows["type"], 1 + want["channel"] % 2):
        return "wrong types"
    return None


def _canonical(spec) -> dict:
    spec = dict.fromkeys(spec, "all") if isinstance(spec, list) else spec
    return {r: v if v == "all" else [list(p) for p in v] for r, v in spec.items()}


# -- a worker ------------------------------------------------------------------------------
def _frontend(storage: str):
    """The storage a worker uses: a local path, or a JSON spec ``{"kind": "s3" |
    "icechunk", "url", "options"}``."""
    import dastrax

    if not storage.startswith("{"):
        return dastrax.ZarrDirectory(storage)
    spec = json.loads(storage)
    if spec["kind"] == "icechunk":
        return dastrax.IcechunkRepository(spec["url"], storage_options=spec["options"])
    return dastrax.ZarrDirectory(spec["url"], storage_options=spec["options"])


def _context(storage: str, bonus: int):
    from dastrax.testutils import PeakClassification, Peaks, Records

    import dastrax

    class PerRunRecords(Records):
        """Records whose ``time_offset`` comes from the run (per-run defaults)."""

        time_offset = dastrax.Option(
            default=0, default_per_run=list(OFFSETS.items()), track=False, type=int
        )

    st = dastrax.Context(
        storage=[_frontend(storage)],
        register=[PerRunRecords, Peaks, PeakClassification],
        progress=False,
        use_per_run_defaults=True,
        chunk_target_size_mb=0.002,
    )
    st.set_config({**CONFIG, "bonus_area": bonus})
    return st


class Worker:
    def __init__(self, storage: str, out: str, seed: int, go: str):
        self.storage, self.out, self.go = storage, out, go
        self.rng = random.Random(seed)
        self.figures = {"operations": {}, "checks": 0, "racy": 0, "errors": {}, "failures": []}

    def count(self, table: str, key: str) -> None:
        self.figures[table][key] = self.figures[table].get(key, 0) + 1

    def fail(self, what: str) -> None:
        self.figures["failures"].append(what)
        self.save()

    def save(self) -> None:
        tmp = f"{self.out}.tmp"
        with open(tmp, "w") as f:
            json.dump(self.figures, f)
        os.replace(tmp, self.out)

    # invariants
    def check_run(self, st, run_id, target, bonus, rows=None) -> None:
        self.figures["checks"] += 1
        if rows is None:
            if not st.is_stored(run_id, target):
                return
            rows = st.get_array(run_id, target)
        why = wrong_rows(rows, expected(run_id, bonus), target)
        if why:
            self.fail(f"{target} of run {run_id} (bonus {bonus}): {why}")

    def check_superrun(self, st, name, target, bonus, load: bool) -> None:
        from dastrax.errors import RunMetadataNotAvailable

        self.figures["checks"] += 1
        try:
            before = st.run_metadata(name)["sub_run_spec"]
        except RunMetadataNotAvailable:
            return
        stored = st.is_stored(name, target)
        if not (load or stored):
            return
        rows = st.get_array(name, target)
        try:
            after = st.run_metadata(name)["sub_run_spec"]
        except RunMetadataNotAvailable:
            after = None
        why = wrong_rows(rows, expected_superrun(before, bonus), target)
        if why is None:
            return
        if before != after or any(
            wrong_rows(rows, expected_superrun(s, bonus), target) is None for s in SPECS
        ):
            self.figures["racy"] += 1  # redefined during the load: rows of another spec
            return
        self.fail(f"{target} of {name} {before} (bonus {bonus}, stored={stored}): {why}")

    # operations
    def step(self) -> None:
        rng = self.rng
        bonus = rng.choice(BONUSES)
        st = _context(self.storage, bonus) if rng.random() < 0.2 else self.contexts[bonus]
        run_id, target, name = rng.choice(list(OFFSETS)), rng.choice(TARGETS), rng.choice(SUPERRUNS)
        op = rng.choice(
            ["make", "load", "define", "redefine", "extend", "persist", "load_superrun", "delete"]
        )
        self.count("operations", op)
        if op == "make":
            st.make(run_id, target)
            if not st.is_stored(run_id, target):
                self.fail(f"{target} of run {run_id} not stored after make")
            self.check_run(st, run_id, target, bonus)
        elif op == "load":
            self.check_run(st, run_id, target, bonus, st.get_array(run_id, target))
        elif op in ("define", "redefine"):
            spec = rng.choice(SPECS)
            doc = st.define_run(name, spec, overwrite=op == "redefine")
            if doc["sub_run_spec"] != _canonical(spec) and op == "redefine":
                self.fail(f"define_run({name}, {spec}, overwrite=True) gave {doc['sub_run_spec']}")
            self.check_superrun(st, name, target, bonus, load=False)
        elif op == "extend":
            from dastrax.errors import RunMetadataNotAvailable

            try:
                spec = st.run_metadata(name)["sub_run_spec"]
            except RunMetadataNotAvailable:
                spec = None
            new = [r for r in OFFSETS if spec is not None and r not in spec]
            if new:
                doc = st.extend_superrun(name, [rng.choice(new)])
                if not set(spec) < set(doc["sub_run_spec"]):
                    self.fail(f"extend_superrun({name}) gave {doc['sub_run_spec']} from {spec}")
            self.check_superrun(st, name, target, bonus, load=False)
        elif op == "delete":  # a stored group, through the storage's public API
            run = name if rng.random() < 0.5 else run_id
            st.storage[0].delete(str(st.key_for(run, target)))
            if run == run_id:
                self.check_run(st, run_id, target, bonus)
            else:
                self.check_superrun(st, name, target, bonus, load=False)
        elif op == "persist":
            st.persist_superrun(name, target)
            self.check_superrun(st, name, target, bonus, load=False)
        else:
            self.check_superrun(st, name, target, bonus, load=True)

    def deadline(self) -> float:
        """The end of the soak (the test may put it later)."""
        with open(self.go) as f:
            return float(f.read())

    def run(self) -> None:
        from dastrax import DastraxError

        self.contexts = {b: _context(self.storage, b) for b in BONUSES}
        self.save()  # ready (the test starts the clock when the first three are)
        while not os.path.exists(self.go):
            time.sleep(0.05)
        while time.time() < self.deadline():
            try:
                self.step()
            except DastraxError as e:
                self.count("errors", type(e).__name__)
                if type(e).__name__ == "InvalidRequest":
                    self.fail(f"InvalidRequest on a valid request: {str(e)[:300]}")
                if type(e).__name__ == "CorruptData":  # nothing here damages bytes
                    self.fail(f"CorruptData on undamaged storage: {str(e)[:300]}")
            except Exception as e:  # noqa: BLE001 - what the soak test looks for
                self.fail(f"non-dastrax {type(e).__name__}: {e}\n{traceback.format_exc()}")
            self.save()


# -- the test ------------------------------------------------------------------------------
def _seed(storage: Path) -> None:
    st = _context(str(storage), 0)
    for run_id, offset in OFFSETS.items():
        st.write_run_metadata(run_id, {"start": offset, "end": offset + SPAN})


def _start(storage, out, seed, go) -> subprocess.Popen:
    args = [sys.executable, __file__, "worker", str(storage), str(out), str(seed), str(go)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[2])] + sys.path))
    return subprocess.Popen(
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )


def _wait_ready(procs: list[subprocess.Popen], outs: list[Path]) -> None:
    """Wait until every worker has imported dastrax and made its contexts (its figures
    file is there): the soak's seconds are seconds of operations, not of imports."""
    limit = time.time() + 120
    while not all(out.exists() for out in outs):
        for proc in procs:
            if proc.poll() is not None:
                err = proc.stderr.read().decode()[-2000:]
                raise AssertionError(f"a worker exited at its start:\n{err}")
        assert time.time() < limit, "the workers did not start in 120 s"
        time.sleep(0.05)


def _set_deadline(go: Path, deadline: float) -> None:
    go.with_suffix(".tmp").write_text(repr(deadline))
    os.replace(go.with_suffix(".tmp"), go)


def _operations(outs: list[Path]) -> int:
    """Operations the workers have done so far (by their figures files)."""
    return sum(
        sum(json.loads(out.read_text())["operations"].values()) for out in outs if out.exists()
    )


def _add(total: dict, figures: dict) -> None:
    for table in ("operations", "errors"):
        for k, v in figures[table].items():
            total[table][k] = total[table].get(k, 0) + v
    total["checks"] += figures["checks"]
    total["racy"] += figures["racy"]
    total["failures"] += figures["failures"]


@pytest.fixture(params=["local", "s3", "icechunk"])
def soak_storage(request, tmp_path) -> str:
    """Where the workers soak: a local path, or the JSON spec of a frontend on the S3
    API server (see :func:`_frontend`)."""
    if request.param == "local":
        return str(tmp_path / "data")
    server = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    url = f"{bucket}/repo" if request.param == "icechunk" else f"{bucket}/data"
    return json.dumps({"kind": request.param, "url": url, "options": server.storage_options})


def test_soak(soak_storage, tmp_path, capsys):
    storage = soak_storage
    backend = "local" if not storage.startswith("{") else json.loads(storage)["kind"]
    _seed(storage)
    rng = random.Random(int(os.environ.get("DASTRAX_SOAK_SEED", "13")))
    go = tmp_path / "go"  # the deadline, written once every worker has imported dastrax
    outs = [tmp_path / f"worker{i}-0.json" for i in range(3)]
    procs = [_start(storage, outs[i], rng.randrange(10**9), go) for i in range(3)]
    _wait_ready(procs, outs)
    start = time.time()
    deadline = start + SECONDS
    _set_deadline(go, deadline)
    kills, incarnation, stderr, enough = 0, 0, [], False
    next_kill = time.time() + rng.uniform(3, 8)
    while time.time() < deadline:
        time.sleep(0.2)
        if not enough and time.time() >= deadline - 1:  # (before the workers see it pass)
            enough = _operations(outs) >= MIN_OPERATIONS[backend]
            if not enough and deadline < start + 5 * SECONDS:
                deadline += 3
                _set_deadline(go, deadline)
        if time.time() >= next_kill and time.time() < deadline - 3:
            os.killpg(procs[0].pid, signal.SIGKILL)
            procs[0].wait()
            kills += 1
            incarnation += 1
            outs.append(tmp_path / f"worker0-{incarnation}.json")
            procs[0] = _start(storage, outs[-1], rng.randrange(10**9), go)
            next_kill = time.time() + rng.uniform(2, 6)
    for proc in procs:
        try:
            _out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _out, err = proc.communicate()
            stderr.append(f"worker {proc.pid} hung past the deadline:\n{err.decode()[-2000:]}")
            continue
        if proc.returncode != 0:
            stderr.append(f"worker {proc.pid} exited {proc.returncode}:\n{err.decode()[-2000:]}")

    total = {"operations": {}, "checks": 0, "racy": 0, "errors": {}, "failures": []}
    for out in outs:
        if out.exists():
            _add(total, json.loads(out.read_text()))

    # a final check over everything stored, from a fresh process's point of view
    final = Worker(str(storage), str(tmp_path / "final.json"), 0, "")
    for bonus in BONUSES:
        st = _context(str(storage), bonus)
        for target in TARGETS:
            for run_id in OFFSETS:
                final.check_run(st, run_id, target, bonus)
            for name in SUPERRUNS:
                final.check_superrun(st, name, target, bonus, load=False)
    _add(total, final.figures)

    figures = {
        "seconds": round(deadline - start, 1),
        "processes": 3,
        "operations": sum(total["operations"].values()),
        "by_operation": total["operations"],
        "kills": kills,
        "checks": total["checks"],
        "racy_loads": total["racy"],
        "dastrax_errors": total["errors"],
        "failures": len(total["failures"]),
    }
    with capsys.disabled():
        print(f"\nsoak figures ({backend}): {json.dumps(figures)}")
        shown = sorted(total["failures"], key=lambda f: f.startswith("CorruptData"))
        for failure in shown[:10]:
            print(f"soak failure: {failure}")
    assert not stderr, "\n".join(stderr)
    assert not total["failures"], total["failures"][:10]
    assert kills >= 1 or SECONDS < 12
    assert figures["operations"] >= MIN_OPERATIONS[backend]
    assert figures["checks"] > 20


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    _storage, _out, _seed_arg, _go = sys.argv[2:6]
    Worker(_storage, _out, int(_seed_arg), _go).run()
