"""A writer that imports dastrax first and then waits for its request, for the
kill-at-a-random-moment test (a fresh interpreter takes a second or two to import
dastrax; the test starts the next writer while one runs).

``python waiting_writer.py`` prints ``ready``, reads one JSON line from stdin —
``{"storage", "name", "targets", "overwrite", "chunk_target_size_mb", "config"}`` — prints
``started``, persists the superrun as asked and prints ``done``.
"""

from __future__ import annotations

import json
import sys

from dastrax.testutils import PeakClassification, Peaks, Records

import dastrax


def main() -> None:
    print("ready", flush=True)
    req = json.loads(sys.stdin.readline())
    st = dastrax.Context(
        storage=[dastrax.ZarrDirectory(req["storage"])],
        register=[Records, Peaks, PeakClassification],
        config=req.get("config") or {},
        progress=False,
    )
    print("started", flush=True)
    st.persist_superrun(
        req["name"],
        req["targets"],
        req.get("chunk_target_size_mb"),
        overwrite=req.get("overwrite", False),
    )
    print("done", flush=True)


if __name__ == "__main__":
    main()
