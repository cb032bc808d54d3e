"""``run_allow``: a plugin that allows superruns, computed once over a superrun's joined
subruns, next to computing it per subrun and concatenating (issue 15).

10 subruns of 10 chunks of 2 000 ``peaks`` rows (244 MB) are made and stored first
(untimed). Then, for a per-row plugin (``SuperrunPeakClassification``) and a whole-run
plugin (``IntegralMinusMean``: two passes over the join):

- ``join``: ``get_array(superrun, target)`` — computed over the join, from the stored peaks;
- ``concat``: ``make(subruns, target)`` then ``get_array(superrun, target, combining=True)``.

The join's page cache is warmed by one untimed join first. ``ratio`` = join / concat
(target: at most 1.2).

Examples
--------
>>> report = run_allow("/tmp/allow")  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from dastrax.bench import setup as bench
from dastrax.testing.plugins import IntegralMinusMean, SuperrunPeakClassification

__all__ = ["ALLOW_TARGET", "run_allow"]

PARAMS = {"subruns": 10, "chunks": 10, "rows_per_chunk": 2_000}
#: join / concat at most this
ALLOW_TARGET = 1.2


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run_allow(storage_dir: str, echo: Callable[[str], None] = print, params=None) -> dict:
    """Time computing allowing plugins over a superrun's join against per subrun and
    concatenating; returns ``{target: {"join": s, "concat": s, "ratio": r, "rows": n,
    "same_rows": bool}, "peaks_mb": MB}``."""
    p = {"storage": str(storage_dir), **PARAMS, **(params or {})}
    st = bench.context(p)
    st.register([SuperrunPeakClassification, IntegralMinusMean])
    cfg = bench.plugin_config(p["chunks"], p["rows_per_chunk"])
    ids = [str(i) for i in range(p["subruns"])]
    st.make(ids, "peaks")
    span = p["chunks"] * cfg["chunk_ns"]
    for i, run_id in enumerate(ids):
        start = i * cfg["run_spacing"]
        st.write_run_metadata(run_id, {"start": start, "end": start + span})
    st.define_run("_allow", ids, overwrite=True)
    peaks_mb = sum(c["nbytes"] for r in ids for c in st.get_metadata(r, "peaks")["chunks"])
    report: dict = {"peaks_mb": round(peaks_mb / 1e6, 1)}
    for target in ("peak_classification", "integral_minus_mean"):
        st.get_array("_allow", target)  # warm: the stored peaks read once
        t_join, over = _timed(lambda t=target: st.get_array("_allow", t))
        t_make, _ = _timed(lambda t=target: st.make(ids, t))
        t_load, concat = _timed(lambda t=target: st.get_array("_allow", t, combining=True))
        same = bool(len(over) == len(concat) and np.array_equal(over["time"], concat["time"]))
        row = {
            "join": round(t_join, 3),
            "concat": round(t_make + t_load, 3),
            "concat_make": round(t_make, 3),
            "concat_load": round(t_load, 3),
            "ratio": round(t_join / (t_make + t_load), 3),
            "rows": len(over),
            "same_rows": same,
        }
        report[target] = row
        echo(
            f"{target}: join {row['join']:.3f} s, per subrun + concatenation "
            f"{row['concat']:.3f} s (make {row['concat_make']:.3f} + load "
            f"{row['concat_load']:.3f}), ratio {row['ratio']:.2f} (target <= {ALLOW_TARGET})"
        )
    return report
