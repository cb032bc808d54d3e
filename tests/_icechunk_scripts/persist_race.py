"""One of two processes persisting the same superruns into one IcechunkRepository: for
each round, wait until both are ready, then persist_superrun(_sr<i>) at the same instant.

Usage: persist_race.py URL OPTIONS_JSON SYNC_DIR NAME ROUNDS
Prints one line per round: "ok" or "conflict" (dastrax.WriteConflict).
"""

import json
import os
import sys
import time

from dastrax.testutils import Peaks, Records

import dastrax

url, options, sync, name, rounds = sys.argv[1:]
st = dastrax.Context(
    storage=dastrax.IcechunkRepository(url, storage_options=json.loads(options)),
    register=[Records, Peaks],
    progress=False,
)
for i in range(int(rounds)):
    st.key_for(f"_sr{i}", "peaks")  # everything read before the start line
    open(os.path.join(sync, f"{i}-{name}"), "w").close()
    while len([f for f in os.listdir(sync) if f.startswith(f"{i}-")]) < 2:
        time.sleep(0.001)
    try:
        st.persist_superrun(f"_sr{i}", "peaks", make=False)
        print("ok", flush=True)
    except dastrax.WriteConflict:
        print("conflict", flush=True)
