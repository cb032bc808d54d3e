"""One of two racing writers: for each round, wait for the other, then commit.

Usage: race.py URL OPTIONS_JSON SYNC_DIR NAME ROUNDS MODE
MODE "key": both commit the same key; "runs": each writes its own run document.
Prints one line per round: "ok" or "conflict".
"""

import json
import os
import sys
import time

import numpy as np

from dastrax.errors import WriteConflict
from dastrax.storage import IcechunkRepository

url, options, sync, name, rounds, mode = sys.argv[1:]
repo = IcechunkRepository(url, storage_options=json.loads(options))
dtype = np.dtype([("time", np.int64), ("endtime", np.int64), ("value", np.float64)])

for i in range(int(rounds)):
    data = np.zeros(100, dtype)
    data["time"] = np.arange(100) + 1000 * i
    data["endtime"] = data["time"] + 1
    data["value"] = i
    writer = repo.writer(f"r{i}-peaks-race", dtype, data_kind="peaks")
    writer = writer.append(data[:50], 1000 * i, 1000 * i + 50, run_id=f"r{i}")
    writer = writer.append(data[50:], 1000 * i + 50, 1000 * i + 100, run_id=f"r{i}")
    open(os.path.join(sync, f"{i}-{name}"), "w").close()
    while len([f for f in os.listdir(sync) if f.startswith(f"{i}-")]) < 2:
        time.sleep(0.001)
    try:
        if mode == "key":
            writer.commit({"run_id": f"r{i}", "data_type": "peaks", "data_kind": "peaks"})
        else:
            repo.write_run_metadata(f"{name}-{i}", {"start": i, "end": i + 1, "by": name})
        print("ok", flush=True)
    except WriteConflict:
        print("conflict", flush=True)
