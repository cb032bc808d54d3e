"""``dastrax bench --extend``: persisting a persisted superrun after one subrun is added.

For N in 10, 100, 1000: N + 1 tiny subruns (2 chunks × 100 ``peaks`` rows, 244 kB) are
made in one call; the superrun of the first N is defined and persisted; then it is
extended by the last subrun and persisted again — that second persist is timed
(``extend``), next to persisting a superrun of that one subrun alone (``alone``). The
extension writes only the new rows (the old copy's chunk files are hard-linked into the
new group), so its cost should not depend on N.

Examples
--------
>>> report = run_extend("/tmp/ext", sizes=(10, 100))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time

from dastrax.bench import setup as bench

__all__ = ["EXTEND_TARGETS", "run_extend"]

SIZES = (10, 100, 1000)
#: (what, max ratio)
EXTEND_TARGETS = [
    ("extend at the largest N / extend at the smallest", 2.0),
    ("extend / alone", 1.5),
]


def _timed(fn, *args, **kwargs) -> float:
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


def run_extend(storage_dir: str, sizes=SIZES, echo=print) -> dict:
    """Run the extension benchmark in ``storage_dir``; the report.

    Returns
    -------
    dict
        ``{"sizes": {N: {"persist": s, "extend": s, "alone": s}}, "targets": [...]}``.
    """
    out: dict = {}
    for n in sizes:
        params = {
            "storage": os.path.join(storage_dir, f"extend-{n}"),
            "subruns": n + 1,
            "chunks": bench.TINY_CHUNKS,
            "rows_per_chunk": bench.TINY_ROWS // bench.TINY_CHUNKS,
        }
        st = bench.context(params)
        ids = [str(i) for i in range(n + 1)]
        st.make(ids, bench.TARGET)
        bench.write_run_documents(st, params, ids)
        name = f"_ext{n}"
        st.define_run(name, ids[:n], overwrite=True)
        first = _timed(st.persist_superrun, name, bench.TARGET, overwrite=True)
        st.extend_superrun(name, [ids[n]])
        extend = _timed(st.persist_superrun, name, bench.TARGET)
        rows = len(st.get_array(name, bench.TARGET, columns=["time"]))
        st.define_run(f"_one{n}", [ids[n]], overwrite=True)
        alone = _timed(st.persist_superrun, f"_one{n}", bench.TARGET, overwrite=True)
        out[n] = {"persist": first, "extend": extend, "alone": alone, "rows": rows}
        echo(
            f"  N={n:>5}: persist {first:7.3f} s; after adding 1 subrun: {extend:6.3f} s "
            f"(that subrun alone: {alone:6.3f} s); {rows} rows"
        )
    lo, hi = min(out), max(out)
    targets = [
        {
            "what": EXTEND_TARGETS[0][0],
            "value": round(out[hi]["extend"] / out[lo]["extend"], 3),
            "target": EXTEND_TARGETS[0][1],
        },
        {
            "what": EXTEND_TARGETS[1][0] + f" (N={hi})",
            "value": round(out[hi]["extend"] / out[hi]["alone"], 3),
            "target": EXTEND_TARGETS[1][1],
        },
    ]
    for t in targets:
        t["met"] = t["value"] <= t["target"]
        echo(
            f"  {t['what']}: {t['value']} (target <= {t['target']}): "
            f"{'met' if t['met'] else 'MISSED'}"
        )
    return {"sizes": out, "targets": targets}
