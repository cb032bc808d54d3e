"""dastrax.testing.FrontendTests for each frontend configuration; the storage layer alone.

One small subclass per configuration: a local ``ZarrDirectory``, ``memory://``, a
``ZarrDirectory`` on the S3 API server (moto, tests/s3server.py), an ``IcechunkRepository``
locally and on S3, and strax's own format read-only (``StraxDirectory`` over
tests/data/strax-data, its rows compared with what strax returned). The ``Context``-level
suite (tests/storage/test_conformance.py) is the integration layer above this one.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import boto3
import numpy as np
import pytest
import s3server
import zarr
from dastrax.testutils import Peaks, Records

import dastrax
from dastrax.errors import WriteAborted
from dastrax.storage import IcechunkRepository, StraxDirectory, ZarrDirectory
from dastrax.storage.zarr.memory import MemoryDirectory
from dastrax.testing import DTYPE, FrontendTests, reference_rows

STRAX = Path(__file__).parents[1] / "data" / "strax-data"


@pytest.fixture(scope="module")
def bucket(s3_server) -> str:
    """One bucket of the session's S3 server for this module; each test a prefix of it."""
    name = f"dastrax-frontends-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        region_name=s3server.REGION,
        aws_access_key_id=s3server.ACCESS_KEY,
        aws_secret_access_key=s3server.SECRET_KEY,
    ).create_bucket(Bucket=name)
    return f"s3://{name}"


def _tag() -> str:
    return uuid.uuid4().hex[:10]


# --------------------------------------------------------------------------------------
# the suite, once per frontend configuration
# --------------------------------------------------------------------------------------
class ZarrBackDoor:
    """Back doors of a ZarrDirectory: its chunk files, through its own filesystem."""

    def damage(self, frontend, key, field):
        fs, root = frontend.fs, frontend._fs_root.rstrip("/")
        fs.invalidate_cache()
        paths = fs.find(f"{root}/{key}/{field}/c")
        assert paths, f"no chunk files of {key}/{field}"
        rng = np.random.default_rng(0)
        for path in paths:
            fs.pipe_file(path, rng.bytes(len(fs.cat_file(path))))

    def missing(self, frontend, tmp_path):
        options = frontend.storage_options or None
        return type(frontend)(f"{frontend.url}-absent", storage_options=options)


class TestLocalZarr(ZarrBackDoor, FrontendTests):
    copies_chunks = True

    @pytest.fixture
    def frontend(self, tmp_path):
        return ZarrDirectory(tmp_path / "data")

    def test_a_write_after_its_abort_raises_write_aborted(self, frontend):
        key = self.key("30")
        writer = frontend.writer(key, DTYPE, data_kind="peaks").append(reference_rows(5), 0, 10)
        writer.abort()
        with pytest.raises(WriteAborted, match=f"{key}.*aborted"):
            writer.append(reference_rows(5, 100), 10, 20)
        with pytest.raises(WriteAborted, match=f"{key}.*aborted"):
            writer.commit(self.meta_of(key))
        assert frontend.find(key) is None and frontend.temporary_paths() == []


class TestMemory(ZarrBackDoor, FrontendTests):
    @pytest.fixture
    def frontend(self):
        return MemoryDirectory(f"memory://frontends-{_tag()}")


@pytest.fixture(scope="module")
def zarr_on_s3(s3_server, bucket):
    return ZarrDirectory(f"{bucket}/{_tag()}", storage_options=s3_server.storage_options)


@pytest.fixture(scope="module")
def icechunk_on_s3(s3_server, bucket):
    options = s3_server.storage_options
    return IcechunkRepository(f"{bucket}/{_tag()}/repo", storage_options=options)


class TestZarrOnS3(ZarrBackDoor, FrontendTests):
    @pytest.fixture
    def frontend(self, zarr_on_s3):
        return zarr_on_s3  # one location for the class: its reference groups written once


class TestIcechunkLocal(FrontendTests):
    @pytest.fixture
    def frontend(self, tmp_path):
        return IcechunkRepository(str(tmp_path / "repo.icechunk"))

    def missing(self, frontend, tmp_path):
        return IcechunkRepository(str(tmp_path / "absent.icechunk"))


class TestIcechunkOnS3(FrontendTests):
    @pytest.fixture
    def frontend(self, icechunk_on_s3):
        return icechunk_on_s3

    def missing(self, frontend, tmp_path):
        options = frontend.storage_options
        return IcechunkRepository(f"{frontend.url}-absent", storage_options=options)


class TestStraxReadOnly(FrontendTests):
    """strax's own files, read-only: the write tests skip (the refusal test runs)."""

    @pytest.fixture
    def frontend(self, tmp_path):
        shutil.copytree(STRAX / "strax_data", tmp_path / "strax_data")  # a test damages it
        return StraxDirectory(tmp_path / "strax_data")

    @pytest.fixture
    def stored(self):
        manifest = json.loads((STRAX / "expected" / "manifest.json").read_text())
        out = {
            key: np.load(STRAX / "expected" / f"{run_id}-{data_type}.npy")
            for run_id, keys in manifest["runs"].items()
            for data_type, key in keys.items()
        }
        superrun = manifest["superrun"]
        key = f"{superrun['name']}-peaks-{superrun['peaks_key'].rsplit('-', 1)[1]}"
        out[key] = np.load(STRAX / "expected" / f"{superrun['name']}-peaks.npy")
        return out

    @pytest.fixture
    def run_documents(self):
        files = sorted((STRAX / "strax_data").glob("*-metadata.json"))
        return {f.name[: -len("-metadata.json")]: json.loads(f.read_text()) for f in files}

    def missing(self, frontend, tmp_path):
        return StraxDirectory(tmp_path / "absent")

    def damage(self, frontend, key, field):
        rng = np.random.default_rng(0)
        for path in Path(frontend.find(key).folder).iterdir():
            if not path.name.endswith(".json"):
                path.write_bytes(rng.bytes(path.stat().st_size))


# --------------------------------------------------------------------------------------
# one grid: the same persist on a ZarrDirectory and an IcechunkRepository
# --------------------------------------------------------------------------------------
def _persisted_grid(frontend, n_runs: int = 3) -> tuple[dict, dict]:
    """Make runs of 600 peaks (chunks of 300), persist a superrun of them in logical chunks
    of about 0.5 MB; the committed metadata and each column's zarr chunk rows."""
    st = dastrax.Context(storage=[frontend], register=[Records, Peaks], progress=False)
    st.set_config({"n_chunks": 2, "recs_per_chunk": 300, "chunk_ns": 5})
    for i in range(n_runs):
        st.set_config({"time_offset": 20 * i})
        st.make(str(i), "peaks")
        st.write_run_metadata(str(i), {"start": 20 * i, "end": 20 * i + 10})
    st.set_config({"time_offset": 0})
    st.define_run("_grid", [str(i) for i in range(n_runs)])
    (key,) = st.persist_superrun("_grid", "peaks", chunk_target_size_mb=0.5)
    meta = frontend.metadata(str(key))
    if isinstance(frontend, IcechunkRepository):
        store = frontend._repo().readonly_session(branch=frontend.branch).store
    else:
        store = zarr.storage.LocalStore(frontend.url, read_only=True)
    group = zarr.open_group(store, path=str(key), mode="r", use_consolidated=False)
    return meta, {name: group[name].chunks[0] for name in group.array_keys()}


def test_the_same_persist_gives_the_same_zarr_chunks_on_zarr_and_icechunk(tmp_path):
    zmeta, zrows = _persisted_grid(dastrax.ZarrDirectory(str(tmp_path / "zarr")))
    imeta, irows = _persisted_grid(IcechunkRepository(str(tmp_path / "repo.icechunk")))
    assert zmeta["n_rows"] == imeta["n_rows"] == 1800
    # 1250 rows would leave a partial last zarr chunk; 1800 divides the group (end-aligned)
    assert zmeta["zarr_chunk_rows"] == imeta["zarr_chunk_rows"] == 1800
    assert zrows == irows and set(zrows.values()) == {1800}
    assert [c["n"] for c in zmeta["chunks"]] == [c["n"] for c in imeta["chunks"]]
    # a group smaller than one zarr chunk, appended by a make: one chunk of its rows
    zsmall = dastrax.ZarrDirectory(str(tmp_path / "zarr")).metadata(
        dastrax.ZarrDirectory(str(tmp_path / "zarr")).keys("0-peaks-")[0]
    )
    repo = IcechunkRepository(str(tmp_path / "repo.icechunk"))
    ismall = repo.metadata(repo.keys("0-peaks-")[0])
    assert zsmall["zarr_chunk_rows"] == ismall["zarr_chunk_rows"] == 600


# --------------------------------------------------------------------------------------
# capabilities: declared protocols, checked with isinstance
# --------------------------------------------------------------------------------------
def test_capabilities_are_protocols_of_the_frontends_that_have_them(tmp_path):
    from dastrax.storage import SupportsChunkCopy, SupportsRunDocumentPath, SupportsVersions

    local = ZarrDirectory(tmp_path / "zarr")
    repo = IcechunkRepository(str(tmp_path / "repo.icechunk"))
    strax = StraxDirectory(STRAX / "strax_data")
    assert isinstance(repo, SupportsVersions)
    assert not any(isinstance(f, SupportsVersions) for f in (local, strax))
    assert isinstance(local, SupportsRunDocumentPath)
    assert not any(isinstance(f, SupportsRunDocumentPath) for f in (repo, strax))
    writers = [f.writer(f"0-peaks-{f is repo:d}bcdefghij", DTYPE) for f in (local, repo)]
    assert [isinstance(w, SupportsChunkCopy) for w in writers] == [True, False]
    for w in writers:
        w.abort()

    class Versioned(MemoryDirectory):  # a third party's: its methods are the declaration
        def superrun_versions(self, name):
            return []

        def at_version(self, name, version):
            return self

        def tag(self, name, version, tag):
            pass

    assert isinstance(Versioned(f"memory://v-{_tag()}"), SupportsVersions)
    # a frontend without versions: the versions of a superrun on it are refused, named
    st = dastrax.Context(storage=[local], register=[Records], progress=False)
    st.write_run_metadata("0", {"start": 0, "end": 10})
    st.define_run("_sr", ["0"])
    with pytest.raises(dastrax.InvalidRequest, match="keeps no versions"):
        st.superrun_versions("_sr")


def test_a_zarr_group_reads_its_document_once_and_takes_one_as_the_abc_declares(tmp_path):
    from dastrax.storage.zarr.group import ZarrGroup

    loads = []

    def load():
        loads.append(1)
        return {"n_rows": 3}

    group = ZarrGroup(str(tmp_path), "0-peaks-abcdefghij", None, (), load)
    assert group.read_hint is None  # no index told it what reading needs
    assert group.meta == {"n_rows": 3} and group.meta == {"n_rows": 3}
    assert loads == [1]
    group.meta = {"n_rows": 4}  # StoredGroup.meta is an attribute
    assert group.meta == {"n_rows": 4} and loads == [1]
