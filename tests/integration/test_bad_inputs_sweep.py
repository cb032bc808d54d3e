"""A sweep of the public API with generated bad inputs (hypothesis): run ids, superrun
specs, time ranges, selections, columns, options and configuration values. Whatever
comes in, a call either succeeds or raises a ``dastrax.DastraxError``, and a call that
fails leaves the storage directory exactly as it was (every file's name, size and
mtime). Calls that would write when they succeed are given inputs that cannot all be
valid, or are undone after a success (a written run document deleted)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import make_context
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as hs

import dastrax

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    database=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),  # no shrinking: the time budget
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = hs.one_of(
    hs.none(),
    hs.booleans(),
    hs.integers(min_value=-(2**70), max_value=2**70),
    hs.floats(allow_nan=True, allow_infinity=True),
    hs.text(max_size=12),
    hs.binary(max_size=6),
    hs.sampled_from(["0", "1", "_sr", "peaks", "records", "", " ", "-", "../x", "a/b", "_"]),
)
values = hs.recursive(
    scalars,
    lambda inner: hs.one_of(
        hs.lists(inner, max_size=3),
        hs.tuples(inner, inner),
        hs.dictionaries(hs.text(max_size=6), inner, max_size=3),
    ),
    max_leaves=6,
)
run_ids = hs.one_of(values, hs.sampled_from(["0", "1", "_sr", "_nope", "nope", "0" * 200]))
targets = hs.one_of(values, hs.sampled_from(["peaks", "records", "peak_classification", "nope"]))
time_ranges = hs.one_of(
    values,
    hs.tuples(
        hs.one_of(hs.integers(), hs.floats(), hs.text(max_size=3)),
        hs.one_of(hs.integers(), hs.floats(), hs.text(max_size=3)),
    ),
)
selections = hs.one_of(values, hs.text(max_size=30), hs.lists(hs.text(max_size=12), max_size=3))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Runs 0 and 1 (peaks stored, run documents) and superrun _sr = 0 + 1."""
    root = tmp_path_factory.mktemp("sweep") / "data"
    st = make_context(root)
    for i, run_id in enumerate(["0", "1"]):
        st.set_config({"time_offset": 20 * i})
        st.make(run_id, "peaks")
        st.write_run_metadata(run_id, {"start": 20 * i, "end": 20 * i + 10})
    st.define_run("_sr", ["0", "1"])
    return root


def files(root) -> dict:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else ()
        for p in root.rglob("*")
    }


def call(root, fn, undo=None):
    """``fn(st)`` on a fresh context: it succeeds or raises a DastraxError; if it raises,
    nothing in ``root`` changed; if it succeeds, ``undo(st)`` (if given) undoes it."""
    before = files(root)
    st = make_context(root)
    try:
        fn(st)
    except dastrax.DastraxError:
        assert files(root) == before
        return
    if undo is not None:
        undo(st)


@SETTINGS
@given(run_id=run_ids, target=targets, time_range=time_ranges, selection=selections)
def test_loads(root, run_id, target, time_range, selection):
    def load(st):
        st.get_array(run_id, target, time_range=time_range, selection=selection, make=False)

    call(root, load)


@SETTINGS
@given(run_id=run_ids, target=targets, columns=values, seconds=values, keep=values)
def test_load_options(root, run_id, target, columns, seconds, keep):
    def load(st):
        st.get_df(run_id, target, columns=columns, seconds_range=seconds, make=False)
        st.get_array("0", "peaks", keep_columns=keep, progress=keep)

    call(root, load)


@SETTINGS
@given(run_id=run_ids, target=targets)
def test_lookups(root, run_id, target):
    def look(st):
        st.is_stored(run_id, target)
        st.key_for(run_id, target)
        st.run_metadata(run_id)

    call(root, look)
    call(root, lambda st: st.get_metadata(run_id, target))


@SETTINGS
@given(name=hs.one_of(run_ids, hs.text(max_size=8).map(lambda s: "_" + s)), spec=values)
def test_define_run(root, name, spec):
    call(
        root,
        lambda st: st.define_run(name, spec),
        undo=lambda st: st.storage[0].delete_run_metadata(name),
    )


@SETTINGS
@given(
    name=hs.sampled_from(["_sr", "_nope", "sr", "0"]),
    target=targets,
    size=hs.one_of(
        hs.floats(max_value=0),
        hs.just(math.nan),
        hs.just(math.inf),
        hs.text(max_size=4),
        hs.lists(hs.integers(), max_size=2),
    ),
)
def test_persist_with_bad_sizes(root, name, target, size):
    call(root, lambda st: st.persist_superrun(name, target, chunk_target_size_mb=size))


@SETTINGS
@given(doc=values, extra=hs.dictionaries(hs.text(max_size=6), values, max_size=2))
def test_write_run_metadata(root, doc, extra):
    def write(st):
        st.write_run_metadata("new", doc)

    def write_extra(st):
        st.write_run_metadata("new", {"start": 0, "end": 10, **extra})

    undo = lambda st: st.storage[0].delete_run_metadata("new")  # noqa: E731
    call(root, write, undo)
    call(root, write_extra, undo)


@SETTINGS
@given(
    config=hs.dictionaries(
        hs.sampled_from(
            [
                "n_chunks",
                "recs_per_chunk",
                "chunk_ns",
                "bonus_area",
                "n_channels",
                "waveform_length",
                "nope",
            ]
        ),
        values,
        max_size=3,
    ),
    context_config=hs.dictionaries(
        hs.sampled_from(
            [
                "chunk_target_size_mb",
                "compressor",
                "progress",
                "write_superruns",
                "use_per_run_defaults",
                "allow_incomplete",
                "forbid_creation_of",
                "nope",
            ]
        ),
        values,
        max_size=2,
    ),
)
def test_configuration(root, config, context_config):
    def configure(st):
        st.set_config(config)
        st.set_context_config(context_config)
        st.get_array("0", "peaks", make=False)

    call(root, configure)


@SETTINGS
@given(
    kwargs=hs.dictionaries(
        hs.sampled_from(["readonly", "provide_run_metadata", "storage_options"]), values, max_size=2
    ),
    url=hs.one_of(
        hs.text(max_size=10).map(lambda s: "nope://" + s),
        hs.sampled_from(["", "file://", "memory://"]),
    ),
)
def test_storage_options(root, kwargs, url):
    def open_storage(st):
        frontend = dastrax.ZarrDirectory(url or str(root), **kwargs)
        frontend.list_runs()

    call(root, open_storage)


def test_the_sweep_found_the_seeded_data(root):
    st = make_context(root)
    assert np.array_equal(st.get_array("_sr", "peaks")["time"][:1], [0])
