"""Writers for the kill-at-a-random-moment test: one process imports dastrax once (a fresh
interpreter takes seconds of CPU for that) and forks a writer process for each request.

``python waiting_writer.py`` prints ``ready``, then for each JSON line read from stdin —
``{"storage", "name", "targets", "overwrite", "chunk_target_size_mb", "config"}`` — forks
a child that persists the superrun as asked, in a process group of its own, prints
``started <pid>`` (the child's pid and process group, to kill), waits for the child and
prints ``exit <code>`` (``-9``: killed by SIGKILL). The children write errors to this
process's stderr; they never touch stdout.

The parent only imports: it starts no thread of its own and runs no dastrax code, so
every child starts as a fresh writer would, with dastrax imported.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
import warnings

from dastrax.testutils import PeakClassification, Peaks, Records

import dastrax


def persist(req: dict) -> None:
    st = dastrax.Context(
        storage=[dastrax.ZarrDirectory(req["storage"])],
        register=[Records, Peaks, PeakClassification],
        config=req.get("config") or {},
        progress=False,
    )
    st.persist_superrun(
        req["name"],
        req["targets"],
        req.get("chunk_target_size_mb"),
        overwrite=req.get("overwrite", False),
    )


def child(req: dict) -> None:
    code = 1
    try:
        os.setpgid(0, 0)
        persist(req)
        code = 0
    except BaseException:  # noqa: BLE001 - reported to the test through the exit code
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    # the only threads here are native pools started by imports (numpy's BLAS, pyarrow's),
    # which reinitialise in a forked child; Python warns at every fork of a process with
    # threads
    warnings.filterwarnings("ignore", r".*multi-threaded.*fork", DeprecationWarning)
    print("ready", flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            child(req)
        with contextlib.suppress(OSError):  # (the child sets it too: whichever runs first)
            os.setpgid(pid, pid)
        print(f"started {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {os.waitstatus_to_exitcode(status)}", flush=True)


if __name__ == "__main__":
    main()
