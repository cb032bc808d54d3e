"""``dastrax runs``: the runs and superruns of the storage."""

from __future__ import annotations

import click

from dastrax.cli.env import CONTEXT_SETTINGS, with_env
from dastrax.cli.group import check_storage, cli, echo_table
from dastrax.ui.display import format_livetime


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "-a",
    "--available",
    multiple=True,
    metavar="TYPE",
    help="Add a column TYPE_available: is TYPE stored for the run (repeatable).",
)
@click.option("--mode", "run_mode", help="Only runs of this mode (glob pattern).")
@click.option("--tag", "include_tags", multiple=True, help="Only runs with this tag (glob).")
@click.option("--exclude-tag", "exclude_tags", multiple=True, help="Leave out runs with this tag.")
@with_env()
def runs(env, available, run_mode, include_tags, exclude_tags):
    """List runs and superruns (the select_runs table).

    \b
    Examples:
      dastrax runs
      dastrax runs -a peaks -a peak_classification
      dastrax runs --tag demo --storage s3://bucket/dastrax
    """
    check_storage(env.ctx)
    table = env.ctx.select_runs(
        available=available,
        run_mode=run_mode,
        include_tags=list(include_tags) or None,
        exclude_tags=list(exclude_tags) or None,
    )
    if table.empty:
        click.echo(f"no runs in {env.where()}")
        return
    seconds = table["livetime"].dt.total_seconds()
    table = table.assign(livetime=seconds.map(format_livetime))
    echo_table(table.set_index("name"))
