"""``dastrax info``: a run's document, or what is stored of one of its data types."""

from __future__ import annotations

import json

import click

from dastrax.cli.env import CONTEXT_SETTINGS, with_env
from dastrax.cli.group import check_storage, cli, echo_table, jsonable, mb
from dastrax.core.lineage import DataKey
from dastrax.ui.display import format_livetime


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
    check_storage(ctx)
    if data_type is None:
        doc = ctx.run_metadata(run_id)
        if as_json:
            click.echo(json.dumps(doc, indent=2, default=jsonable))
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
        stored = sorted({DataKey.parse(k).data_type for k in keys})
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
            echo_table(table if len(table) <= max_chunks else table.head(max_chunks))
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
    click.echo(f"{'size (uncompressed)':<20} {mb(nbytes)}")
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
        echo_table(shown)
