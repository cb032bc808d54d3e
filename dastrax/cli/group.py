"""The ``dastrax`` click group (its commands are registered by the modules of
:mod:`dastrax.cli`, one a command) and the helpers the commands share."""

from __future__ import annotations

import importlib
import importlib.util
import re

import click

from dastrax import __version__
from dastrax.cli.env import CONTEXT_SETTINGS
from dastrax.errors import DastraxError


class DastraxGroup(click.Group):
    """A group whose ``bench`` subcommand is imported only when used."""

    lazy_commands = {"bench": ("dastrax.bench", "bench_command")}

    def list_commands(self, ctx):
        names = set(super().list_commands(ctx))
        for name, (module, _attr) in self.lazy_commands.items():
            if importlib.util.find_spec(module) is not None:
                names.add(name)
        return sorted(names)

    def get_command(self, ctx, cmd_name):
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None or cmd_name not in self.lazy_commands:
            return cmd
        module_name, attr = self.lazy_commands[cmd_name]
        if importlib.util.find_spec(module_name) is None:
            return None
        module = importlib.import_module(module_name)
        return getattr(module, attr, None)


@click.group(cls=DastraxGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="dastrax")
@click.option(
    "--debug",
    is_flag=True,
    expose_value=False,
    help="Show the full traceback of an error (for any subcommand).",
)
def cli():
    """dastrax: superruns of strax-style detector data on dask, zarr and xarray.

    \b
    Start here (makes demo runs, defines and persists the superrun _demo in
    ./dastrax_data, on dask's threaded scheduler):
      dastrax demo
      dastrax runs
      dastrax info _demo peaks

    \b
    Settings: packaged defaults < configuration file (--config FILE or
    $DASTRAX_CONFIG) < flags (--storage, --scheduler, ...). Every subcommand takes
    --storage, --scheduler, --config, --set OPTION=VALUE and --debug.
    Run 'dastrax COMMAND --help' for the options and examples of a command.
    """


def mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:.3g} MB"


def stored_summary(ctx, run_id: str, targets) -> tuple[int, int, int, list[str]]:
    """rows, chunks, uncompressed bytes (summed over targets), keys of stored data."""
    from dastrax.storage import dtype_from_json

    rows = chunks = nbytes = 0
    keys = []
    for t in targets:
        meta = ctx.get_metadata(run_id, t)
        keys.append(meta["key"])
        rows = sum(int(c["n"]) for c in meta["chunks"])
        chunks = len(meta["chunks"])
        nbytes += rows * dtype_from_json(meta["dtype"]).itemsize
    return rows, chunks, nbytes, keys


def check_storage(ctx) -> None:
    """Read commands on a storage location that does not exist fail (naming it)."""
    errors = []
    for f in ctx.storage:
        try:
            f.check_exists()
            return
        except DastraxError as e:
            errors.append(str(e))
    raise DastraxError("; ".join(errors) or "no storage configured")


def echo_table(df) -> None:
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 50):
        click.echo(df.to_string())


def writable(frontends):
    for f in frontends:
        if not f.readonly:
            return f
    raise DastraxError("no writable storage: give --storage DEST")


RUN_RANGE = re.compile(r"(?P<run>[^:\s]+)(?::(?P<start>\d+)-(?P<end>\d+))?")


def spec_from_args(
    runs_args: tuple[str, ...],
) -> list[str] | dict[str, str | list[tuple[int, int]]]:
    """A superrun definition from ``RUN`` and ``RUN:START-END`` arguments."""
    spec: dict[str, str | list[tuple[int, int]]] = {}
    for item in runs_args:
        m = RUN_RANGE.fullmatch(item)
        if m is None:
            raise click.BadParameter(
                f"{item!r}: give RUN or RUN:START-END (ns integers)", param_hint="RUN"
            )
        run = m["run"]
        if m["start"] is None:
            if run in spec:
                raise click.BadParameter(f"run {run!r} given more than once", param_hint="RUN")
            spec[run] = "all"
        else:
            ranges = spec.setdefault(run, [])
            if isinstance(ranges, str):
                raise click.BadParameter(
                    f"run {run!r} given whole and with time ranges", param_hint="RUN"
                )
            ranges.append((int(m["start"]), int(m["end"])))
    if all(v == "all" for v in spec.values()):
        return list(spec)
    return spec


def read_rows(path: str):
    import pandas as pd

    lower = path.lower()
    try:
        if lower.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except ImportError as e:
        raise click.ClickException(f"cannot read {path}: {e}") from None
    except (OSError, ValueError) as e:
        raise click.ClickException(f"cannot read rows from {path}: {e}") from None


def jsonable(x):
    return x.tolist() if hasattr(x, "tolist") else str(x)


def shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + " ..."
