"""``dastrax demo``: demo runs, a superrun of them, persisted."""

from __future__ import annotations

import time

import click
import dask
import numpy as np

from dastrax.cli.env import CONTEXT_SETTINGS, with_env
from dastrax.cli.group import cli, mb, stored_summary
from dastrax.ui.display import format_livetime

DEMO_RUNS = ("0", "1", "2")
DEMO_SUPERRUN = "_demo"
DEMO_TARGETS = ("peaks", "peak_classification")


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--chunk-target-size-mb",
    type=float,
    help="Chunk size of the persisted superrun (default from the configuration).",
)
@click.option("--progress/--no-progress", default=None, help="Show progress bars.")
@with_env("chunk_target_size_mb", "progress")
def demo(env, chunk_target_size_mb, progress):
    """Make demo runs, define the superrun _demo, open it lazily, persist it.

    Makes peaks and peak_classification (the dummy plugins of dastrax.testutils) for
    runs 0, 1 and 2, writes their run documents, defines the superrun _demo of all
    three, opens it lazily as an xarray.Dataset, persists it as a run of its own and
    checks that the stored superrun reads back the same rows as its subruns. Running it
    again reuses what is stored.

    \b
    Examples:
      dastrax demo
      dastrax demo --storage /tmp/demo --scheduler local-cluster
      dastrax demo --set n_chunks=50 --chunk-target-size-mb 0.1
    """
    from dastrax.testing.plugins import PeakClassification, Peaks, Records

    ctx = env.ctx
    ctx.register([Records, Peaks, PeakClassification])
    settings = env.settings
    click.echo(f"dastrax demo: storage {env.where()}, scheduler {settings.scheduler}")

    t_start = time.perf_counter()
    base = dict(ctx.config)
    spacing = None
    for i, run_id in enumerate(DEMO_RUNS):
        ctx.set_config({"time_offset": 0})
        cfg = {**ctx.show_config("records").set_index("option")["current"], **ctx.config}
        span = max(1, int(cfg["n_chunks"]) * int(cfg["chunk_ns"]))
        spacing = spacing or 2 * span
        offset = i * spacing
        ctx.set_config({"time_offset": offset})
        ctx.make(run_id, list(DEMO_TARGETS), progress=progress)
        doc = {
            "start": offset,
            "end": offset + span,
            "mode": "demo",
            "source": "none",
            "tags": ["demo"],
            "comments": ["made by dastrax demo"],
        }
        if _run_doc(ctx, run_id) != {**doc, "name": run_id, "livetime": span / 1e9}:
            ctx.write_run_metadata(run_id, doc)  # (a rerun rewrites nothing it made)
    ctx.set_config({"time_offset": base.get("time_offset", 0)})
    click.echo(
        f"made       {', '.join(DEMO_TARGETS)} of runs {', '.join(DEMO_RUNS)} "
        f"({time.perf_counter() - t_start:.2f} s)"
    )

    # overwrite: if the subruns were rewritten with other times, the superrun is refreshed
    doc = ctx.define_run(DEMO_SUPERRUN, list(DEMO_RUNS), overwrite=True)
    click.echo(
        f"superrun   {DEMO_SUPERRUN} = {' + '.join(DEMO_RUNS)}: start {doc['start']} ns, "
        f"end {doc['end']} ns, livetime {format_livetime(doc['livetime'])} (the sum of its "
        "subruns')"
    )

    ds = ctx.get_dataset(DEMO_SUPERRUN, list(DEMO_TARGETS))
    kind = ds.attrs["data_kind"]
    blocks = len(ds["time"].data.chunks[0])
    click.echo(
        f"lazy       xarray.Dataset of {ds.sizes[kind]} {kind} rows, {len(ds.data_vars)} "
        f"variables, {blocks} dask blocks per variable, subruns {ds.attrs['subruns']}"
    )
    subrun, area = dask.compute(ds["subrun"].data, ds["area"].data)
    counts = np.bincount(subrun, minlength=len(ds.attrs["subruns"]))
    sums = np.bincount(subrun, weights=area, minlength=len(ds.attrs["subruns"]))
    click.echo(
        "per subrun "
        + ", ".join(
            f"{s}: {n} rows, mean area {total / max(n, 1):.3g}"
            for s, n, total in zip(ds.attrs["subruns"], counts.tolist(), sums.tolist())
        )
    )

    size = settings.chunk_target_size_mb
    already = all(ctx.is_stored(DEMO_SUPERRUN, t) for t in DEMO_TARGETS)
    t0 = time.perf_counter()
    ctx.persist_superrun(
        DEMO_SUPERRUN, list(DEMO_TARGETS), chunk_target_size_mb=size, progress=progress
    )
    elapsed = time.perf_counter() - t0
    rows, chunks, nbytes, keys = stored_summary(ctx, DEMO_SUPERRUN, DEMO_TARGETS)
    how = "already stored" if already else f"written in {elapsed:.2f} s"
    click.echo(
        f"persisted  {', '.join(keys)}: {rows} rows in {chunks} chunk{'s' * (chunks != 1)}, "
        f"{mb(nbytes)} ({how})"
    )

    cols = ["area", "type"]
    stored = ctx.get_array(DEMO_SUPERRUN, list(DEMO_TARGETS), columns=cols, progress=False)
    subruns = ctx.get_array(list(DEMO_RUNS), list(DEMO_TARGETS), columns=cols, progress=False)
    same = len(stored) == len(subruns) and all(
        np.array_equal(stored[f], subruns[f]) for f in ("time", "area", "type")
    )
    if not same:
        raise click.ClickException(
            f"the stored superrun {DEMO_SUPERRUN} does not read back the rows of its subruns "
            f"({len(stored)} vs {len(subruns)} rows); delete {env.where()} and run again"
        )
    click.echo(f"check      the stored superrun reads back the same {len(stored)} rows")
    click.echo(
        f"done in {time.perf_counter() - t_start:.2f} s. Next: dastrax runs; "
        f"dastrax info {DEMO_SUPERRUN} peaks; or in Python: "
        f"dastrax.Context.from_config(storage={ctx.storage[0].url!r})"
    )


def _run_doc(ctx, run_id: str) -> dict | None:
    """The run document of ``run_id`` (its demo fields), or None if there is none."""
    from dastrax.errors import RunMetadataNotAvailable

    try:
        doc = ctx.run_metadata(run_id)
    except RunMetadataNotAvailable:
        return None
    keys = ("name", "start", "end", "livetime", "mode", "source", "tags", "comments")
    return {k: doc.get(k) for k in keys}
