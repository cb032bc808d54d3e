"""kill -9 at a random moment of a persist (issue 22): every trial leaves a valid state.

A writer persists superrun ``_sr`` (two targets of one kind) in one of three ways — its
first persist, a persist with ``overwrite=True`` over a stored copy, and the persist of
an extended superrun (whose old copy it links and then discards) — and is killed with
SIGKILL after a random delay, uniform over the time a whole persist takes (each writer a
process forked from one that imported dastrax once, ``_crash_scripts/waiting_writer.py``:
a trial does not pay a fresh interpreter's import). After each kill the state is checked:

- each target reported stored (``is_stored``) loads exactly the superrun's rows;
- every listed key opens and its ``time`` column reads whole (no ``CorruptData``);
- the persist run again succeeds with the right rows, and then, swept, nothing
  temporary is left.

20 trials in CI; ``DASTRAX_KILL_TRIALS=100`` runs more by hand (``DASTRAX_KILL_SEED``
picks the moments). The figures are printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from _crash_scripts import helpers
from _crash_scripts.helpers import TARGETS, assert_rows

import dastrax

TRIALS = int(os.environ.get("DASTRAX_KILL_TRIALS", "20"))
SEED = int(os.environ.get("DASTRAX_KILL_SEED", "22"))
#: 6 chunks of 250 rows: 1500 peaks (about 2 MB) a run; three runs
CONFIG = {"n_chunks": 6, "recs_per_chunk": 250, "chunk_ns": 1000}
SIZE_MB = 0.5
OFFSETS = {"0": 0, "1": 100_000, "2": 200_000}
SPAN = 6_000
SCENARIOS = ("first", "overwrite", "extend")
WRITER = Path(__file__).parents[1] / "_crash_scripts" / "waiting_writer.py"


def _context(root, run_id="0"):
    st = helpers.make_context(root)
    st.set_config({**CONFIG, "time_offset": OFFSETS[run_id]})
    return st


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """One seeded directory per scenario, and the superrun's rows after the persist."""
    base = tmp_path_factory.mktemp("kill-seeds")
    root = base / "first"
    rows = {}
    for run_id, offset in OFFSETS.items():
        st = _context(root, run_id)
        st.make(run_id, TARGETS)
        for t in TARGETS:
            rows[run_id, t] = st.get_array(run_id, t)
        st.write_run_metadata(run_id, {"start": offset, "end": offset + SPAN})
    st = _context(root)
    st.define_run("_sr", ["0", "1"])
    shutil.copytree(root, base / "overwrite")
    _context(base / "overwrite").persist_superrun("_sr", TARGETS, SIZE_MB)
    shutil.copytree(base / "overwrite", base / "extend")
    _context(base / "extend").extend_superrun("_sr", ["2"])
    want = {
        "first": {t: np.concatenate([rows["0", t], rows["1", t]]) for t in TARGETS},
        "extend": {t: np.concatenate([rows[r, t] for r in OFFSETS]) for t in TARGETS},
    }
    want["overwrite"] = want["first"]
    return base, want


class Writers:
    """One writer process (``_crash_scripts/waiting_writer.py``) that imports dastrax once
    and forks a fresh writer for each persist (a fresh interpreter takes seconds of CPU to
    import dastrax: most of a trial's time). The writers' errors go to ``log``."""

    def __init__(self, log: Path):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(WRITER.parents[1]), *sys.path]))
        self.log = log
        with open(log, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(WRITER)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env=env,
            )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert self._next(120) == "ready", self._errors()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put("")

    def _next(self, timeout: float) -> str:
        return self.lines.get(timeout=timeout)

    def _errors(self) -> str:
        return self.log.read_text()[-3000:]

    def run(self, storage, scenario: str, delay: float) -> dict:
        """Persist in a forked writer; SIGKILL it ``delay`` seconds after it started,
        unless it finished first."""
        req = {
            "storage": str(storage),
            "name": "_sr",
            "targets": TARGETS,
            "overwrite": scenario == "overwrite",
            "chunk_target_size_mb": SIZE_MB,
            "config": CONFIG,
        }
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        started = self._next(60)
        assert started.startswith("started "), started + self._errors()
        t0 = time.monotonic()
        try:
            ended = self._next(delay)
        except queue.Empty:
            with contextlib.suppress(ProcessLookupError):  # (it ended at that moment)
                os.killpg(int(started.split()[1]), signal.SIGKILL)
            ended = self._next(60)
        seconds = time.monotonic() - t0
        assert ended.startswith("exit "), ended + self._errors()
        code = int(ended.split()[1])
        killed = code == -signal.SIGKILL
        if not killed and code != 0:
            raise AssertionError(f"the writer failed ({code}):\n{self._errors()}")
        return {"killed": killed, "seconds": seconds}

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def check_state(storage, want: dict) -> list[str]:
    """What is wrong with the state a killed persist left (nothing: [])."""
    bad = []
    st = _context(storage)
    frontend = st.storage[0]
    try:
        for t in TARGETS:
            if st.is_stored("_sr", t):
                got = st.get_array("_sr", t)
                if len(got) != len(want[t]) or not np.array_equal(got["time"], want[t]["time"]):
                    bad.append(f"{t} of _sr is stored with {len(got)} wrong rows")
        for key in frontend.keys(""):  # every committed key
            group = frontend.find(key)
            n = int(group.meta["n_rows"])
            if len(group.read("time", 0, n)) != n:
                bad.append(f"{key} reads short")
    except dastrax.DastraxError as e:
        bad.append(f"{type(e).__name__}: {e}")
    return bad


def rerun_and_check(storage, scenario: str, want: dict) -> None:
    st = _context(storage)
    st.persist_superrun("_sr", TARGETS, SIZE_MB, overwrite=scenario == "overwrite")
    for t in TARGETS:
        assert st.is_stored("_sr", t)
        assert_rows(st.get_array("_sr", t), want[t])
    frontend = dastrax.ZarrDirectory(str(storage))
    frontend.sweep()
    assert frontend.temporary_paths() == [], frontend.temporary_paths()


def test_kill_at_a_random_moment_of_a_persist(seeds, tmp_path, capsys):
    base, want = seeds
    rng = random.Random(SEED)
    writers = Writers(tmp_path / "writers.log")
    try:
        # how long a whole persist takes, per scenario (not killed)
        duration = {}
        for scenario in SCENARIOS:
            storage = tmp_path / f"calibrate-{scenario}"
            shutil.copytree(base / scenario, storage)
            result = writers.run(storage, scenario, 120)
            assert not result["killed"], result
            duration[scenario] = result["seconds"]
            assert check_state(storage, want[scenario]) == []
        figures = {"trials": 0, "killed": 0, "finished": 0, "invalid": 0}
        by_scenario = dict.fromkeys(SCENARIOS, 0)
        failures = []
        for i in range(TRIALS):
            scenario = SCENARIOS[i % len(SCENARIOS)]
            storage = tmp_path / f"trial-{i}"
            shutil.copytree(base / scenario, storage)
            delay = rng.uniform(0, 1.1 * duration[scenario])
            result = writers.run(storage, scenario, delay)
            figures["trials"] += 1
            by_scenario[scenario] += 1
            figures["killed" if result["killed"] else "finished"] += 1
            bad = check_state(storage, want[scenario])
            if bad:
                figures["invalid"] += 1
                failures.append(f"trial {i} ({scenario}, killed at {delay:.3f} s): {bad}")
            rerun_and_check(storage, scenario, want[scenario])
            shutil.rmtree(storage)
    finally:
        writers.close()
    with capsys.disabled():
        seconds = {k: round(v, 3) for k, v in duration.items()}
        print(
            f"\nkill figures: {json.dumps(figures)} by scenario {by_scenario}, persist {seconds} s"
        )
    assert not failures, failures
    assert figures["killed"] >= TRIALS // 2
