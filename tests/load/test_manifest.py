"""Manifests kept with the data (dastrax.load.openindex): a superrun of many subruns opens from
one file that its definition wrote, in any fresh process, with no cache of earlier opens;
the file is checked against every group and run document it names (by signature, file
by file), so any change — a subrun made again, a redefinition, a persisted copy, damage —
resolves afresh and never gives a wrong load."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

import dastrax
from dastrax.bench import setup as bench
from dastrax.load import openindex

N = 110  # above openindex.MIN_SOURCES


def _params(root):
    return {
        "storage": str(root),
        "subruns": N,
        "chunks": 2,
        "rows_per_chunk": 5,
        "plugin_options": {"waveform_length": 4, "n_channels": 2},
    }


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One storage for the module's tests, which change it in turn (in file order)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(openindex.INDEX_ENV, "0")  # no per-user cache: manifests only
        params = _params(tmp_path_factory.mktemp("manifest") / "data")
        bench.make_data(params)
        yield params


def _folder(params):
    return os.path.join(params["storage"], "runs", "manifests")


def _inodes(params):
    folder = _folder(params)
    return {n: os.stat(os.path.join(folder, n)).st_ino for n in os.listdir(folder)}


def _resolved(params):
    st = bench.context(params)  # a new context: nothing in memory
    return st, st._resolver.resolve(bench.SUPERRUN, [bench.TARGET])


def _want(params):
    ids = [str(i) for i in range(N)]
    rows = bench.context(params).get_array(ids, bench.TARGET)
    return rows


def test_the_definition_writes_a_manifest_the_next_open_uses(made):
    # records and peaks are stored for every subrun: one manifest each
    assert len(os.listdir(_folder(made))) == 2
    before = _inodes(made)
    st, res = _resolved(made)
    assert _inodes(made) == before  # read, not written again: a hit
    assert [s.run_id for s in res.sources] == [str(i) for i in range(N)]
    want = _want(made)
    got = st.get_array(bench.SUPERRUN, bench.TARGET)
    np.testing.assert_array_equal(got["time"], want["time"])
    ds = st.get_dataset(bench.SUPERRUN, bench.TARGET)
    np.testing.assert_array_equal(ds.channel.values, want["channel"])
    np.testing.assert_array_equal(ds.subrun.values, np.repeat(np.arange(N), 10))


def test_a_subrun_made_again_is_noticed(made):
    st = bench.context(made)
    key = str(st.key_for("7", bench.TARGET))
    shutil.rmtree(os.path.join(made["storage"], key))
    st = bench.context({**made, "plugin_options": {**made["plugin_options"]}})
    st.set_config({"bonus_area": 0})
    st.make("7", bench.TARGET)  # the same key, a new commit (a new document)
    before = _inodes(made)
    _resolved(made)
    after = _inodes(made)
    assert after != before  # resolved afresh, the manifest written again
    _resolved(made)
    assert _inodes(made) == after  # ... and then used


def test_a_missing_subrun_group_is_a_miss_not_an_error(made):
    st = bench.context(made)
    shutil.rmtree(os.path.join(made["storage"], str(st.key_for("3", bench.TARGET))))
    st = bench.context(made)
    with pytest.raises(dastrax.DataNotAvailable):
        st.get_array(bench.SUPERRUN, bench.TARGET, make=False)
    assert len(st.get_array(bench.SUPERRUN, bench.TARGET)) == N * 10  # made again


def test_a_damaged_manifest_is_a_miss(made):
    for name in os.listdir(_folder(made)):
        with open(os.path.join(_folder(made), name), "wb") as f:
            f.write(b"not an npz")
    before = _inodes(made)
    st, _res = _resolved(made)
    assert _inodes(made) != before  # resolved afresh and written again
    assert len(st.get_array(bench.SUPERRUN, bench.TARGET)) == N * 10


def test_read_only_storage_gets_no_manifest(made):
    shutil.rmtree(_folder(made))
    ro = dastrax.Context(
        storage=dastrax.ZarrDirectory(made["storage"], readonly=True),
        register=[bench.Records, bench.Peaks],
        config={**made["plugin_options"], **bench.plugin_config(2, 5)},
        progress=False,
    )
    assert len(ro.get_array(bench.SUPERRUN, bench.TARGET)) == N * 10
    assert not os.path.exists(_folder(made))


def test_manifests_can_be_turned_off(made, monkeypatch):
    monkeypatch.setenv(openindex.MANIFEST_ENV, "0")
    bench.context(made).define_run("_again", [str(i) for i in range(N)])
    assert not os.path.exists(_folder(made))


def test_a_redefinition_and_a_persisted_copy_are_noticed(made):
    st = bench.context(made)
    ids = [str(i) for i in range(N - 1)]
    st.define_run(bench.SUPERRUN, ids, overwrite=True)
    st2, res = _resolved(made)
    assert [s.run_id for s in res.sources] == ids
    st2.persist_superrun(bench.SUPERRUN, bench.TARGET)
    _st, stored = _resolved(made)
    assert len(stored.sources) == 1 and stored.sources[0].stored
