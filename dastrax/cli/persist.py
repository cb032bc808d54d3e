"""``dastrax persist``: a superrun rechunked and written to storage."""

from __future__ import annotations

import time

import click

from dastrax.cli.env import CONTEXT_SETTINGS, with_env
from dastrax.cli.group import cli, mb, stored_summary


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.option(
    "-t",
    "--target",
    "targets",
    multiple=True,
    required=True,
    metavar="TYPE",
    help="Data type to persist (repeatable; all of one data kind).",
)
@click.option(
    "--chunk-target-size-mb",
    type=float,
    help="Uncompressed MB per stored chunk (default from the configuration).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Write it again even if stored (e.g. to rechunk); the stored copy is replaced only "
    "once the new one is complete.",
)
@click.option(
    "--make/--no-make",
    "make_missing",
    default=False,
    show_default=True,
    help="Make missing subrun data first. By default a batch job refuses, naming the "
    "lineages that are stored (e.g. made with other --set options).",
)
@click.option("--progress/--no-progress", default=None, help="Show a progress bar.")
@with_env("chunk_target_size_mb", "progress")
def persist(env, name, targets, chunk_target_size_mb, overwrite, make_missing, progress):
    """Rechunk superrun NAME's TYPE data and store it as a run of its own.

    A batch job: the superrun's rows are rechunked to the chunk target size and
    streamed to storage (with a progress bar: dask's locally, distributed's on a
    cluster). Prints rows, chunks and MB/s. Missing subrun data is made only with --make.

    \b
    Examples:
      dastrax persist _demo -t peaks -t peak_classification
      dastrax persist _demo -t peaks --chunk-target-size-mb 50 --overwrite
      dastrax persist _kr_feb -t peaks --make --scheduler local-cluster
      dastrax persist _kr_feb -t peaks --scheduler tcp://scheduler:8786
    """
    ctx = env.ctx
    settings = env.settings
    targets = list(dict.fromkeys(targets))
    already = not overwrite and all(ctx.is_stored(name, t) for t in targets)
    t0 = time.perf_counter()
    ctx.persist_superrun(
        name,
        targets,
        chunk_target_size_mb=settings.chunk_target_size_mb,
        progress=settings.progress,
        overwrite=overwrite,
        make=make_missing,
    )
    elapsed = time.perf_counter() - t0
    rows, chunks, nbytes, keys = stored_summary(ctx, name, targets)
    for key in keys:
        click.echo(f"stored {key}")
    if already:
        click.echo(
            f"already stored: {rows} rows in {chunks} chunks, {mb(nbytes)}; pass --overwrite "
            "to write it again"
        )
        return
    rate = nbytes / 1e6 / elapsed if elapsed > 0 else float("inf")
    click.echo(
        f"persisted {name}: {rows} rows in {chunks} chunk{'s' * (chunks != 1)} "
        f"(target {settings.chunk_target_size_mb:g} MB), {mb(nbytes)} in {elapsed:.2f} s "
        f"= {rate:.3g} MB/s"
    )
