"""``dastrax import``: strax's data directories copied into dastrax storage."""

from __future__ import annotations

import click

from dastrax.cli.env import CONTEXT_SETTINGS, with_env
from dastrax.cli.group import cli, writable
from dastrax.errors import DastraxError


@cli.command("import", context_settings=CONTEXT_SETTINGS)
@click.argument("strax_dir", metavar="STRAX_DIR")
@click.option("--run", "runs_", multiple=True, metavar="RUN", help="Only these runs (repeatable).")
@click.option("--progress/--no-progress", default=None, help="Show progress.")
@with_env("progress")
def import_(env, strax_dir, runs_, progress):
    """Convert strax data (a strax DataDirectory) into dastrax storage.

    Every stored data type of every run, strax-stored superruns (their chunks' subruns
    kept) and the run documents are copied into --storage, each group verified row by
    row after it is written. Resumable: what is already converted (and verified) is
    skipped, so a killed import is simply run again. Prints what could not be converted
    and why, and exits non-zero if anything failed.

    \b
    Examples:
      dastrax import /data/xenon/strax_data --storage /data/xenon/dastrax
      dastrax import ./strax_data --run 000000 --run 000001
    """
    from dastrax.storage.strax.directory import StraxDirectory
    from dastrax.write.strax_import import import_strax

    source = StraxDirectory(strax_dir)
    source.check_exists()
    if source.is_dastrax_storage():
        raise DastraxError(
            f"{strax_dir} is dastrax storage already, not a strax data directory: there is "
            f"nothing to import; read it as it is with --storage {strax_dir}"
        )
    dest = env.ctx.storage
    report = import_strax(
        source, writable(dest), runs=list(runs_) or None, progress=env.settings.progress
    )
    click.echo(report.summary())
    if not report.ok:
        raise click.exceptions.Exit(1)
