"""Notebook niceties: a superrun's subruns as a table, an HTML view, and a timeline plot.

Examples
--------
>>> from dastrax.ui.display import superrun_table, SuperrunView, plot_superrun
>>> superrun_table(st, "_demo")                       # doctest: +SKIP
>>> SuperrunView(st, "_demo", ["peaks"])               # doctest: +SKIP
>>> plot_superrun(st, "_demo")                         # doctest: +SKIP
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import pandas as pd

from dastrax.core.names import validate_superrun_name

__all__ = ["SuperrunView", "context_html", "format_livetime", "plot_superrun", "superrun_table"]

#: time units for plot axes, largest first: (name, ns per unit)
_UNITS = (("d", 86_400e9), ("h", 3_600e9), ("min", 60e9), ("s", 1e9), ("ms", 1e6), ("µs", 1e3))


def _targets(ctx, targets) -> list[str]:
    if targets is None:
        return sorted(ctx._registry.plugins)
    return [targets] if isinstance(targets, str) else list(targets)


def superrun_table(ctx, name: str, targets: Sequence[str] | None = None) -> pd.DataFrame:
    """A superrun's flattened subruns, one row each, in time order.

    The index (``subrun``) is the value of the ``subrun`` coordinate that rows of that
    subrun carry in loaded data. Columns: ``run_id``; ``whole`` (the whole run, or time
    ranges of it); ``n_ranges`` and ``ranges`` (``[(start, end), ...]`` in ns);
    ``start``/``end`` (hull of the ranges, ns); ``livetime`` (seconds: the run's livetime
    for a whole run, else the summed range durations); and ``<target>_stored`` per target
    (default: every registered data type), true where the subrun's data of the current
    lineage is stored. ``df.attrs`` holds the superrun's ``name``, ``start``, ``end`` and
    ``livetime``.

    Examples
    --------
    >>> superrun_table(st, "_demo")[["run_id", "start", "end", "livetime"]]  # doctest: +SKIP
    """
    validate_superrun_name(name)
    doc = ctx.run_metadata(name)
    flat = ctx._catalog.flat(name)
    targets = _targets(ctx, targets)
    rows = []
    for sub, ranges in flat:
        sub_doc = ctx.run_metadata(sub)
        whole = isinstance(ranges, str)
        if whole:
            pairs = [(int(sub_doc["start"]), int(sub_doc["end"]))]
            livetime = float(sub_doc["livetime"])
        else:
            pairs = [(int(s), int(e)) for s, e in ranges]
            livetime = sum(e - s for s, e in pairs) / 1e9
        row = {
            "run_id": sub,
            "whole": whole,
            "n_ranges": len(pairs),
            "ranges": pairs,
            "start": pairs[0][0],
            "end": pairs[-1][1],
            "livetime": livetime,
        }
        for t in targets:
            row[f"{t}_stored"] = ctx.is_stored(sub, t)
        rows.append(row)
    columns = ["run_id", "whole", "n_ranges", "ranges", "start", "end", "livetime"]
    df = pd.DataFrame(rows, columns=columns + [f"{t}_stored" for t in targets])
    df.index.name = "subrun"
    df.attrs.update(
        {
            "name": name,
            "start": int(doc["start"]),
            "end": int(doc["end"]),
            "livetime": float(doc["livetime"]),
        }
    )
    return df


def format_time(ns: int) -> str:
    """ns since the epoch as a UTC timestamp string (ns precision when needed)."""
    ts = pd.Timestamp(int(ns), unit="ns", tz="UTC")
    text = ts.isoformat()
    return text.replace("+00:00", " UTC")


def format_livetime(seconds: float) -> str:
    """A livetime (or any duration) as dastrax shows it everywhere: in seconds, four
    significant digits: ``'3e-08 s'``, ``'90 s'``, ``'7200 s'``.

    Examples
    --------
    >>> format_livetime(3e-8), format_livetime(7200.0)
    ('3e-08 s', '7200 s')
    """
    return f"{float(seconds):.4g} s"


def _axis_unit(span_ns: float) -> tuple[str, float]:
    for unit, scale in _UNITS:
        if span_ns >= 2 * scale:
            return unit, scale
    return "ns", 1.0


class SuperrunView:
    """A superrun at a glance: its document, its subruns and what is stored.

    Shown as text by ``repr`` and as HTML (with a timeline of the subruns' ranges) in
    notebooks. ``targets`` are the data types whose storage is reported (default: every
    registered data type).

    Examples
    --------
    >>> st.show_superrun("_demo", ["peaks"])                # doctest: +SKIP
    """

    def __init__(self, ctx, name: str, targets: Sequence[str] | None = ()):
        targets = _targets(ctx, targets or None)
        self.name = name
        self.targets = targets
        self.table = superrun_table(ctx, name, targets)
        self.document = ctx.run_metadata(name)
        #: per target: whether the superrun itself is persisted (its own store)
        self.persisted = {t: ctx.is_stored(name, t) for t in targets}

    # -- text ---------------------------------------------------------------------------
    def _summary(self) -> str:
        doc = self.document
        n = len(self.table)
        return (
            f"superrun {self.name}: {n} subrun{'s' if n != 1 else ''}, "
            f"{format_time(doc['start'])} – {format_time(doc['end'])}, "
            f"livetime {format_livetime(float(doc['livetime']))}"
        )

    def _persisted_text(self) -> str:
        if not self.persisted:
            return "persisted: (no targets)"
        return "persisted: " + ", ".join(
            f"{t} {'yes' if ok else 'no'}" for t, ok in self.persisted.items()
        )

    def __repr__(self) -> str:
        table = self.table.drop(columns=["ranges"]).to_string()
        return f"<{self._summary()}>\n{self._persisted_text()}\n{table}"

    # -- html ---------------------------------------------------------------------------
    def _timeline_svg(self, width: int = 640, row: int = 18) -> str:
        t0, t1 = int(self.document["start"]), int(self.document["end"])
        span = max(t1 - t0, 1)
        left, n = 90, len(self.table)
        height = row * n + 6
        scale = (width - left - 10) / span
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'role="img" aria-label="timeline of {html.escape(self.name)}">'
        ]
        for i, (_, r) in enumerate(self.table.iterrows()):
            y = 3 + i * row
            parts.append(
                f'<text x="{left - 6}" y="{y + row - 6}" text-anchor="end" font-size="11" '
                f'font-family="monospace">{html.escape(str(r["run_id"]))}</text>'
            )
            colour = f"hsl({(i * 67) % 360}, 55%, 50%)"
            for s, e in r["ranges"]:
                x = left + (s - t0) * scale
                w = max((e - s) * scale, 1.0)
                parts.append(
                    f'<rect x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="{row - 5}" '
                    f'fill="{colour}"><title>{html.escape(str(r["run_id"]))}: '
                    f"[{s}, {e}) ns</title></rect>"
                )
        parts.append("</svg>")
        return "".join(parts)

    def _repr_html_(self) -> str:
        doc = self.document
        persisted = "".join(
            f"<li><code>{html.escape(t)}</code>: {'stored' if ok else 'not stored'}</li>"
            for t, ok in self.persisted.items()
        )
        table = self.table.assign(
            ranges=[", ".join(f"[{s}, {e})" for s, e in r) for r in self.table["ranges"]]
        ).to_html(classes="dastrax-superrun", border=0)
        return (
            '<div class="dastrax-superrun-view">'
            f"<h4>superrun <code>{html.escape(self.name)}</code></h4>"
            f"<p>{len(self.table)} subruns · {html.escape(format_time(doc['start']))} – "
            f"{html.escape(format_time(doc['end']))} · livetime "
            f"{html.escape(format_livetime(float(doc['livetime'])))}</p>"
            f"{self._timeline_svg()}"
            f"<p>persisted as a run of its own:</p><ul>{persisted}</ul>"
            f"{table}</div>"
        )


def plot_superrun(ctx, name: str, ax=None):
    """Plot superrun ``name``'s subruns on a time line (one row per subrun); needs
    matplotlib (``pip install 'dastrax[plot]'``). Returns the matplotlib ``Axes``.

    Examples
    --------
    >>> ax = plot_superrun(st, "_demo")                     # doctest: +SKIP
    >>> ax.figure.savefig("demo.png")                       # doctest: +SKIP
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            "plot_superrun needs matplotlib: install it with pip install 'dastrax[plot]'"
        ) from None
    table = superrun_table(ctx, name, targets=[])
    t0, t1 = table.attrs["start"], table.attrs["end"]
    unit, scale = _axis_unit(t1 - t0)
    if ax is None:
        _fig, ax = plt.subplots(figsize=(8, 1.2 + 0.35 * len(table)))
    for i, (_, r) in enumerate(table.iterrows()):
        bars = [((s - t0) / scale, (e - s) / scale) for s, e in r["ranges"]]
        ax.broken_barh(bars, (i - 0.4, 0.8), color=f"C{i % 10}")
    ax.set_yticks(range(len(table)), labels=list(table["run_id"]))
    ax.set_ylim(len(table) - 0.5, -0.5)
    ax.set_ylabel("subrun")
    ax.set_xlabel(f"time since {format_time(t0)} [{unit}]")
    ax.set_title(
        f"superrun {name}: {len(table)} subruns, "
        f"livetime {format_livetime(table.attrs['livetime'])}"
    )
    return ax


def context_repr(ctx) -> str:
    """``repr`` of a context: its storage, data types and scheduler."""
    plugins = ", ".join(sorted(ctx._registry.plugins)) or "none"
    where = ", ".join(f.url for f in ctx.storage) or "no storage"
    return f"<dastrax.Context storage=[{where}] data types=[{plugins}] {ctx._scheduler}>"


def context_html(ctx) -> str:
    """An HTML summary of a context: storage, plugins, scheduler and options."""
    storage = "".join(
        f"<li><code>{html.escape(f.url)}</code>{' (read-only)' if f.readonly else ''}</li>"
        for f in ctx.storage
    )
    plugins = "".join(
        f"<tr><td><code>{html.escape(dt)}</code></td><td>{html.escape(cls.__name__)}</td>"
        f"<td>{html.escape(str(cls.__version__))}</td>"
        f"<td>{html.escape(ctx._registry.data_kind(dt))}</td></tr>"
        for dt, cls in sorted(ctx._registry.plugins.items())
    )
    scheduler = repr(ctx._scheduler)
    options = ", ".join(f"{k}={v!r}" for k, v in ctx.context_config.items() if k != "scheduler")
    return (
        '<div class="dastrax-context"><b>dastrax.Context</b>'
        f"<p>storage:</p><ul>{storage or '<li>none</li>'}</ul>"
        "<table><tr><th>data type</th><th>plugin</th><th>version</th><th>data kind</th></tr>"
        f"{plugins}</table>"
        f"<p>scheduler: <code>{html.escape(scheduler)}</code><br>"
        f"options: <code>{html.escape(options)}</code></p></div>"
    )
