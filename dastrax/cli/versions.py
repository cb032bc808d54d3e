"""``dastrax versions``: a superrun's versions."""

from __future__ import annotations

import click

from dastrax.cli.env import CONTEXT_SETTINGS, with_env
from dastrax.cli.group import cli, echo_table


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
@with_env()
def versions(env, name, as_json):
    """List the versions of superrun NAME (an IcechunkRepository keeps every definition,
    redefinition and extension); load one with version=N or the run id NAME@N.

    \b
    Examples:
      dastrax versions _kr_feb --storage icechunk:///data/xenon/repo
    """
    table = env.ctx.superrun_versions(name)
    if as_json:
        click.echo(table.to_json(orient="records", date_format="iso", indent=2))
        return
    table = table.assign(subruns=[", ".join(s) for s in table["subruns"]])
    table = table.assign(stored=[", ".join(s) or "-" for s in table["stored"]])
    echo_table(table.set_index("version"))
