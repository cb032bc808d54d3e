"""The S3 server from other processes: a 2-process ``distributed.LocalCluster`` loads and
persists with credentials given only as ``storage_options``; a worker without credentials
fails with a dastrax error naming the URL and the host; run documents written by another
process are visible at once to a long-lived context.

No ``AWS_*`` environment variable is set in the test process or the workers (they are
removed before the cluster starts), so nothing but ``storage_options`` can reach the server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dastrax.testutils import PeakClassification, Peaks, Records

import dastrax

distributed = pytest.importorskip("distributed")

PLUGINS = [Records, Peaks, PeakClassification]
CONFIG = {"n_chunks": 2, "recs_per_chunk": 100, "chunk_ns": 10}
TARGETS = ["peaks", "peak_classification"]
REPO_ROOT = Path(dastrax.__file__).resolve().parents[1]


def no_aws_env(mp: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            mp.delenv(name)


@pytest.fixture(scope="module")
def client():
    """A 2-process LocalCluster started without any AWS_* environment variable."""
    with pytest.MonkeyPatch.context() as mp:
        no_aws_env(mp)
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=40,
        )
        c = distributed.Client(cluster)
        try:
            yield c
        finally:
            c.close()
            cluster.close()


def context(url, options, client=None) -> dastrax.Context:
    st = dastrax.Context(
        storage=[dastrax.ZarrDirectory(url, storage_options=options)],
        register=PLUGINS,
        client=client,
        progress=False,
    )
    st.set_config(CONFIG)
    return st


def seed(st: dastrax.Context) -> None:
    for i, run_id in enumerate(["0", "1"]):
        st.set_config({"time_offset": 100 * i})
        st.make(run_id, TARGETS)
        st.write_run_metadata(run_id, {"start": 100 * i, "end": 100 * i + 20})
    st.set_config({"time_offset": 0})
    st.define_run("_sr", {"0": "all", "1": [(102, 108), (110, 117)]})


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype.names == b.dtype.names and len(a) == len(b)
    for name in a.dtype.names:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_cluster_loads_and_persists_with_storage_options_only(
    client, s3_server, s3_bucket, monkeypatch
):
    no_aws_env(monkeypatch)
    env = client.run(lambda: sorted(k for k in os.environ if k.startswith("AWS_")))
    assert len(env) == 2 and all(v == [] for v in env.values())
    pids = client.run(os.getpid)
    assert os.getpid() not in pids.values()  # workers are other processes

    url = f"{s3_bucket}/dastrax"
    local = context(url, s3_server.storage_options)  # dask's threaded scheduler
    seed(local)
    want = local.get_array("_sr", TARGETS)
    want_runs = local.get_array(["0", "1"], "peaks", columns=["time", "channel"])
    assert len(want) == 200 + 60 + 70

    st = context(url, s3_server.storage_options, client=client)
    assert st.client is client
    assert_same(st.get_array("_sr", TARGETS), want)
    assert_same(st.get_array(["0", "1"], "peaks", columns=["time", "channel"]), want_runs)
    st.persist_superrun("_sr", TARGETS, chunk_target_size_mb=0.05)
    reread = context(url, s3_server.storage_options)
    assert reread.is_stored("_sr", "peaks") and reread.is_stored("_sr", "peak_classification")
    assert len(reread.get_metadata("_sr", "peaks")["chunks"]) > 1
    assert_same(reread.get_array("_sr", TARGETS), want)
    assert_same(st.get_array("_sr", TARGETS), want)  # the stored copy, read on the workers


def test_a_worker_without_credentials_names_the_url_and_host(
    client, s3_server, s3_bucket, monkeypatch
):
    """Credentials only in this process's environment (as before storage_options): the
    metadata reads here succeed, the workers' reads fail — with the URL and host named."""
    no_aws_env(monkeypatch)
    url = f"{s3_bucket}/dastrax"
    seed_ctx = context(url, s3_server.storage_options)
    seed_ctx.make("0", "peaks")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    no_key = {"client_kwargs": dict(s3_server.storage_options["client_kwargs"])}
    here = context(url, no_key)
    assert here.is_stored("0", "peaks")  # this process finds it with its environment
    on_cluster = context(url, no_key, client=client)
    hosts = set(client.run(lambda: __import__("socket").gethostname()).values())
    worker_pids = set(client.run(os.getpid).values())
    with pytest.raises(dastrax.DastraxError) as info:
        on_cluster.get_array("0", "peaks")
    message = str(info.value)
    assert url in message, message
    assert any(h in message for h in hosts), message
    assert any(f"pid {p}" in message for p in worker_pids), message  # on a worker
    assert "credential" in message.lower(), message


WRITER = """
import json, sys
import dastrax
spec = json.loads(sys.argv[1])
d = dastrax.ZarrDirectory(spec["url"], storage_options=spec["options"])
d.write_run_metadata(spec["run_id"], spec["doc"])
print("written")
"""


def write_in_another_process(tmp_path, url, options, run_id, doc) -> None:
    script = tmp_path / "write_doc.py"
    script.write_text(WRITER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    spec = {"url": url, "options": options, "run_id": run_id, "doc": doc}
    done = subprocess.run(
        [sys.executable, str(script), json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "written" in done.stdout


def test_run_documents_of_another_process_are_visible_at_once(
    s3_server, s3_bucket, tmp_path, monkeypatch
):
    no_aws_env(monkeypatch)
    url = f"{s3_bucket}/dastrax"
    st = context(url, s3_server.storage_options)  # long-lived: lists before and after
    st.write_run_metadata("1", {"start": 0, "end": 10, "mode": "bg"})
    assert st.list_runs() == ["1"]
    assert list(st.select_runs()["name"]) == ["1"]
    opts = s3_server.storage_options
    write_in_another_process(
        tmp_path, url, opts, "2", {"start": 20, "end": 50, "mode": "kr", "tags": ["x"]}
    )
    assert st.list_runs() == ["1", "2"]
    assert st.run_metadata("2")["end"] == 50
    assert list(st.select_runs(run_mode="kr")["name"]) == ["2"]
    assert list(st.select_runs(include_tags="x")["name"]) == ["2"]
    # a changed document too (same key, new content)
    write_in_another_process(tmp_path, url, opts, "2", {"start": 20, "end": 70, "mode": "kr"})
    assert st.run_metadata("2")["end"] == 70
    assert st.run_metadata("2")["livetime"] == pytest.approx(50e-9)
    assert st.select_runs(run_mode="kr")["livetime"].iloc[0].value == 50  # a Timedelta (ns)
