"""``dastrax define``: a superrun of whole runs, time ranges or rows of a table."""

from __future__ import annotations

import click

from dastrax.cli.env import CONTEXT_SETTINGS, with_env
from dastrax.cli.group import cli, read_rows, shorten, spec_from_args
from dastrax.ui.display import format_livetime


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.argument("runs_args", metavar="[RUN | RUN:START-END]...", nargs=-1)
@click.option(
    "--rows",
    "rows_file",
    metavar="FILE",
    help="CSV or parquet file of rows with time and endtime (or length and dt) and run_id "
    "(or --from-run): the superrun is the union of their intervals.",
)
@click.option("--from-run", help="The run all --rows come from (when they have no run_id).")
@click.option(
    "--overwrite", is_flag=True, help="Redefine an existing superrun (deletes its stored data)."
)
@with_env()
def define(env, name, runs_args, rows_file, from_run, overwrite):
    """Define superrun NAME from runs, time ranges of runs, or rows of a file.

    NAME must start with '_'. A RUN is taken whole; RUN:START-END takes the time range
    [START, END) in ns since the epoch (repeat it for several ranges of one run).

    \b
    Examples:
      dastrax define _kr_feb 0 1 2
      dastrax define _middle 1:22-26 2:40-45 2:47-49
      dastrax define _minbias --rows events.csv          # columns time, endtime, run_id
      dastrax define _minbias --rows events.csv --from-run 2
    """
    if rows_file and runs_args:
        raise click.UsageError("give either RUN arguments or --rows, not both")
    if rows_file:
        data = read_rows(rows_file)
    elif runs_args:
        data = spec_from_args(runs_args)
    else:
        raise click.UsageError("give the subruns: RUN or RUN:START-END arguments, or --rows FILE")
    doc = env.ctx.define_run(name, data, from_run=from_run, overwrite=overwrite)
    table = env.ctx.superrun_summary(name)
    n = len(table)
    click.echo(
        f"defined superrun {name}: {n} subrun{'s' * (n != 1)} "
        f"({shorten(', '.join(table['run_id']))}), start {doc['start']} ns, end "
        f"{doc['end']} ns, livetime {format_livetime(doc['livetime'])}"
    )
