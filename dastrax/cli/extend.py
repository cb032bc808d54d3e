"""``dastrax extend``: more subruns for a superrun (a new version)."""

from __future__ import annotations

import click

from dastrax.cli.env import CONTEXT_SETTINGS, with_env
from dastrax.cli.group import cli, read_rows, spec_from_args
from dastrax.ui.display import format_livetime


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.argument("runs_args", metavar="[RUN | RUN:START-END]...", nargs=-1)
@click.option("--rows", "rows_file", metavar="FILE", help="CSV or parquet rows, as for define.")
@click.option("--from-run", help="The run all --rows come from (when they have no run_id).")
@with_env()
def extend(env, name, runs_args, rows_file, from_run):
    """Add subruns to superrun NAME (as `define` takes them; they must not overlap it).

    A persisted superrun keeps its stored chunks; the next `persist` appends the new
    rows. On an IcechunkRepository the extension is a new version.

    \b
    Examples:
      dastrax extend _kr_feb 3 4
      dastrax extend _minbias --rows more_events.csv
    """
    if rows_file and runs_args:
        raise click.UsageError("give either RUN arguments or --rows, not both")
    if not rows_file and not runs_args:
        raise click.UsageError("give the new subruns: RUN or RUN:START-END, or --rows FILE")
    data = read_rows(rows_file) if rows_file else spec_from_args(runs_args)
    doc = env.ctx.extend_superrun(name, data, from_run=from_run)
    click.echo(
        f"extended superrun {name}: {len(doc['sub_run_spec'])} subruns, start {doc['start']} "
        f"ns, end {doc['end']} ns, livetime {format_livetime(doc['livetime'])}"
    )
