"""The ``dastrax`` command line: demo, runs, define, info, make, persist, bench.

Every subcommand takes ``--storage``, ``--scheduler``, ``--config``, ``--set`` and
``--debug``; settings come from the packaged defaults, then the configuration file
(``--config`` or ``$DASTRAX_CONFIG``), then the flags. Errors print one line to stderr
and exit non-zero (a traceback only with ``--debug``).
"""

from __future__ import annotations

import os
import sys

import click

# the command modules register their commands on the group when imported
from dastrax.cli import define, demo, extend, import_strax, info, make, persist, runs, versions  # noqa: F401
from dastrax.cli.group import cli
from dastrax.errors import DastraxError, advice_language

__all__ = ["cli", "main"]


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (the ``dastrax`` entry point)."""
    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args or os.environ.get("DASTRAX_DEBUG", "") not in ("", "0")
    command = next((a for a in args if not a.startswith("-")), None)
    try:
        with advice_language("cli", command):  # errors advise flags, not keywords
            result = cli.main(args=args, prog_name="dastrax", standalone_mode=False)
    except click.UsageError as e:
        if debug:
            raise
        hint = ""
        if e.ctx is not None:
            hint = f" (see '{e.ctx.command_path} --help')"
        click.echo(f"dastrax: error: {_one_line(e.format_message())}{hint}", err=True)
        return e.exit_code
    except click.ClickException as e:
        if debug:
            raise
        click.echo(f"dastrax: error: {_one_line(e.format_message())}", err=True)
        return e.exit_code
    except (click.Abort, KeyboardInterrupt):
        click.echo("dastrax: interrupted", err=True)
        return 130
    except DastraxError as e:
        if debug:
            raise
        click.echo(f"dastrax: error: {_one_line(e)}", err=True)
        return 1
    except Exception as e:  # noqa: BLE001 - one line unless --debug
        if debug:
            raise
        click.echo(
            f"dastrax: error: {type(e).__name__}: {_one_line(e)} (run with --debug for the "
            "traceback)",
            err=True,
        )
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
