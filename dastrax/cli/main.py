"""The ``dastrax`` command line: demo, runs, define, info, make, persist, bench.

Every subcommand takes ``--storage``, ``--scheduler``, ``--config``, ``--set`` and
``--debug``; settings come from the packaged defaults, then the configuration file
(``--config`` or ``$DASTRAX_CONFIG``), then the flags. Errors print one line to stderr
and exit non-zero (a traceback only with ``--debug``).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import sys
import time

import click
import dask
import numpy as np

from dastrax import __version__
from dastrax.cli.env import CONTEXT_SETTINGS, with_env
from dastrax.errors import DastraxError, advice_language
from dastrax.ui.display import format_livetime

__all__ = ["cli", "main"]

DEMO_RUNS = ("0", "1", "2")
DEMO_SUPERRUN = "_demo"
DEMO_TARGETS = ("peaks", "peak_classification")


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


# --------------------------------------------------------------------------------------
# formatting helpers
# --------------------------------------------------------------------------------------
def _mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:.3g} MB"


def _stored_summary(ctx, run_id: str, targets) -> tuple[int, int, int, list[str]]:
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


def _check_storage(ctx) -> None:
    """Read commands on a storage location that does not exist fail (naming it)."""
    errors = []
    for f in ctx.storage:
        try:
            f.check_exists()
            return
        except DastraxError as e:
            errors.append(str(e))
    raise DastraxError("; ".join(errors) or "no storage configured")


def _echo_table(df) -> None:
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 50):
        click.echo(df.to_string())


# --------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------
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

    Makes peaks and peak_classification (the dummy plugins of dastrax.testing.plugins) for
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
    rows, chunks, nbytes, keys = _stored_summary(ctx, DEMO_SUPERRUN, DEMO_TARGETS)
    how = "already stored" if already else f"written in {elapsed:.2f} s"
    click.echo(
        f"persisted  {', '.join(keys)}: {rows} rows in {chunks} chunk{'s' * (chunks != 1)}, "
        f"{_mb(nbytes)} ({how})"
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


# --------------------------------------------------------------------------------------
# runs
# --------------------------------------------------------------------------------------
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
    _check_storage(env.ctx)
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
    _echo_table(table.set_index("name"))


# --------------------------------------------------------------------------------------
# define
# --------------------------------------------------------------------------------------
_RUN_RANGE = re.compile(r"(?P<run>[^:\s]+)(?::(?P<start>\d+)-(?P<end>\d+))?")


def _spec_from_args(runs_args) -> list | dict:
    spec: dict[str, object] = {}
    for item in runs_args:
        m = _RUN_RANGE.fullmatch(item)
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
            if ranges == "all":
                raise click.BadParameter(
                    f"run {run!r} given whole and with time ranges", param_hint="RUN"
                )
            ranges.append((int(m["start"]), int(m["end"])))
    if all(v == "all" for v in spec.values()):
        return list(spec)
    return spec


def _read_rows(path: str):
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
        data = _read_rows(rows_file)
    elif runs_args:
        data = _spec_from_args(runs_args)
    else:
        raise click.UsageError("give the subruns: RUN or RUN:START-END arguments, or --rows FILE")
    doc = env.ctx.define_run(name, data, from_run=from_run, overwrite=overwrite)
    table = env.ctx.superrun_summary(name)
    n = len(table)
    click.echo(
        f"defined superrun {name}: {n} subrun{'s' * (n != 1)} "
        f"({_shorten(', '.join(table['run_id']))}), start {doc['start']} ns, end "
        f"{doc['end']} ns, livetime {format_livetime(doc['livetime'])}"
    )


def _jsonable(x):
    return x.tolist() if hasattr(x, "tolist") else str(x)


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + " ..."


# --------------------------------------------------------------------------------------
# extend, versions
# --------------------------------------------------------------------------------------
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
    data = _read_rows(rows_file) if rows_file else _spec_from_args(runs_args)
    doc = env.ctx.extend_superrun(name, data, from_run=from_run)
    click.echo(
        f"extended superrun {name}: {len(doc['sub_run_spec'])} subruns, start {doc['start']} "
        f"ns, end {doc['end']} ns, livetime {format_livetime(doc['livetime'])}"
    )


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
    _echo_table(table.set_index("version"))


# --------------------------------------------------------------------------------------
# info
# --------------------------------------------------------------------------------------
@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("run_id", metavar="RUN")
@click.argument("data_type", metavar="[TYPE]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the document as JSON.")
@click.option(
    "--chunks",
    "max_chunks",
    type=int,
    default=10,
    show_default=True,
    help="Show at most this many rows of the chunk table.",
)
@with_env()
def info(env, run_id, data_type, as_json, max_chunks):
    """Show a run's document, or with TYPE the stored metadata of that data.

    \b
    Examples:
      dastrax info 0
      dastrax info _demo                  # superruns also list their subruns
      dastrax info _demo peaks            # key, lineage, compressor, chunk table
      dastrax info 0 peaks --json
    """
    ctx = env.ctx
    _check_storage(ctx)
    if data_type is None:
        doc = ctx.run_metadata(run_id)
        if as_json:
            click.echo(json.dumps(doc, indent=2, default=_jsonable))
            return
        from dastrax.ui.display import format_time

        for key in ("name", "start", "end"):
            value = doc[key]
            extra = f"  ({format_time(value)})" if key != "name" else ""
            click.echo(f"{key:<10} {value}{extra}")
        click.echo(f"{'livetime':<10} {format_livetime(doc['livetime'])}")
        for key in ("mode", "source", "tags", "comments"):
            click.echo(f"{key:<10} {doc.get(key)}")
        others = sorted(
            set(doc)
            - {
                "name",
                "start",
                "end",
                "livetime",
                "mode",
                "source",
                "tags",
                "comments",
                "sub_run_spec",
            }
        )
        for key in others:
            click.echo(f"{key:<10} {doc[key]}")
        keys = {k for f in ctx.storage for k in f.keys(f"{run_id}-") if k.count("-") == 2}
        stored = sorted({k.split("-")[1] for k in keys})
        click.echo(f"{'stored':<10} {', '.join(stored) or 'nothing'}")
        if "sub_run_spec" in doc:
            from dastrax.runs.superruns import spec_summary
            from dastrax.ui.display import superrun_table

            summary = spec_summary(doc)
            click.echo(
                f"{'spec':<10} {summary['subruns']} subruns, {summary['windows']} time windows "
                f"(whole runs: {sum(v == 'all' for v in summary['per_run'].values())})"
            )
            click.echo("subruns:")
            table = superrun_table(ctx, run_id).drop(columns=["ranges"])
            _echo_table(table if len(table) <= max_chunks else table.head(max_chunks))
            if len(table) > max_chunks:
                click.echo(f"... ({len(table) - max_chunks} more; --chunks N shows more)")
        return

    meta = ctx.get_metadata(run_id, data_type)
    if as_json:
        click.echo(json.dumps(meta, indent=2, default=str))
        return
    chunks = meta["chunks"]
    rows = sum(int(c["n"]) for c in chunks)
    nbytes = sum(int(c["nbytes"]) for c in chunks)
    fields = ", ".join(
        name + (f"[{','.join(map(str, shape))}]" if shape else "")
        for name, _title, _base, shape in meta["dtype"]
    )
    click.echo(f"{'key':<20} {meta['key']}")
    click.echo(f"{'data kind':<20} {meta['data_kind']}")
    click.echo(f"{'lineage hash':<20} {meta['lineage_hash']}")
    lineage = "; ".join(f"{dt}: {v[0]} {v[1]} {v[2]}" for dt, v in meta["lineage"].items())
    click.echo(f"{'lineage':<20} {lineage}")
    click.echo(f"{'fields':<20} {fields}")
    click.echo(f"{'compressor':<20} {meta.get('compressor')}")
    click.echo(f"{'chunk target size':<20} {meta.get('chunk_target_size_mb')} MB")
    click.echo(f"{'rows':<20} {rows}")
    click.echo(f"{'chunks':<20} {len(chunks)}")
    click.echo(f"{'size (uncompressed)':<20} {_mb(nbytes)}")
    if meta.get("subruns"):
        click.echo(f"{'subruns':<20} {', '.join(meta['subruns'])}")
    if chunks:
        import pandas as pd

        table = pd.DataFrame(chunks).set_index("chunk_i")
        cols = [c for c in ("start", "end", "n", "nbytes", "subruns") if c in table]
        table = table[cols]
        if "subruns" in table:
            table["subruns"] = [",".join(s) if s else "" for s in table["subruns"]]
        shown = table if len(table) <= max_chunks else table.head(max_chunks)
        click.echo("chunk table" + ("" if shown is table else f" (first {max_chunks})") + ":")
        _echo_table(shown)


# --------------------------------------------------------------------------------------
# make
# --------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------
# persist
# --------------------------------------------------------------------------------------
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
    rows, chunks, nbytes, keys = _stored_summary(ctx, name, targets)
    for key in keys:
        click.echo(f"stored {key}")
    if already:
        click.echo(
            f"already stored: {rows} rows in {chunks} chunks, {_mb(nbytes)}; pass --overwrite "
            "to write it again"
        )
        return
    rate = nbytes / 1e6 / elapsed if elapsed > 0 else float("inf")
    click.echo(
        f"persisted {name}: {rows} rows in {chunks} chunk{'s' * (chunks != 1)} "
        f"(target {settings.chunk_target_size_mb:g} MB), {_mb(nbytes)} in {elapsed:.2f} s "
        f"= {rate:.3g} MB/s"
    )


# --------------------------------------------------------------------------------------
# import
# --------------------------------------------------------------------------------------
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
        source, _writable(dest), runs=list(runs_) or None, progress=env.settings.progress
    )
    click.echo(report.summary())
    if not report.ok:
        raise click.exceptions.Exit(1)


def _writable(frontends):
    for f in frontends:
        if not f.readonly:
            return f
    raise DastraxError("no writable storage: give --storage DEST")


# --------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------
def _one_line(text: str) -> str:
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
