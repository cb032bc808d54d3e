"""``dastrax make``: plugins computed into storage."""

from __future__ import annotations

import time

import click

from dastrax.cli.env import CONTEXT_SETTINGS, with_env
from dastrax.cli.group import cli


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("run_ids", metavar="RUN...", nargs=-1, required=True)
@click.option(
    "-t",
    "--target",
    "targets",
    multiple=True,
    required=True,
    metavar="TYPE",
    help="Data type to make (repeatable).",
)
@click.option(
    "--write-superruns/--no-write-superruns",
    default=None,
    help="Also persist superruns among RUN (context option write_superruns).",
)
@click.option(
    "--make/--no-make",
    "make_missing",
    default=True,
    show_default=True,
    help="With --no-make, the subruns' data of superruns among RUN must be stored already "
    "(an error names the lineages that are stored); regular runs are made either way.",
)
@click.option("--progress/--no-progress", default=None, help="Show progress bars.")
@with_env("write_superruns", "progress")
def make(env, run_ids, targets, write_superruns, make_missing, progress):
    """Make and store TYPE for each RUN (what is missing; all runs in parallel).

    For a superrun, its subruns' data is made (and with --write-superruns the superrun
    is persisted too).

    \b
    Examples:
      dastrax make 0 1 2 -t peaks
      dastrax make 0 -t peaks -t peak_classification --set bonus_area=42
      dastrax make _demo -t peaks --write-superruns --scheduler local-cluster
    """
    ctx = env.ctx
    t0 = time.perf_counter()
    if not make_missing:
        for run_id in run_ids:
            if run_id.startswith("_"):
                ctx.get_dataset(run_id, list(targets), make=False)  # raises if missing
    ctx.make(list(run_ids), list(targets))
    elapsed = time.perf_counter() - t0
    for run_id in run_ids:
        for t in targets:
            state = (
                "stored"
                if ctx.is_stored(run_id, t)
                else "not stored (superrun: loads from subruns)"
            )
            click.echo(f"{run_id:<12} {t:<24} {ctx.key_for(run_id, t)}  {state}")
    click.echo(f"done in {elapsed:.2f} s")
