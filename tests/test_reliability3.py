"""Reliability, round three (issue 22): a commit whose metadata write fails reports
nothing stored; object-store errors as dastrax errors naming the URL; run documents
written by another process seen by a long-lived context; one icechunk commit per make;
a bad ``selection``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from conftest import make_context

import dastrax
from dastrax.testutils import PeakClassification, Peaks, Records

TINY = {"n_chunks": 3, "recs_per_chunk": 2, "chunk_ns": 1000, "n_channels": 2}
TINY |= {"waveform_length": 2}


def _s3_context(url, s3_server, **kwargs):
    return dastrax.Context(
        storage=[dastrax.ZarrDirectory(url, storage_options=s3_server.storage_options)],
        register=[Records, Peaks, PeakClassification],
        progress=False,
        **kwargs,
    )


# -- S3 -----------------------------------------------------------------------------------
def test_missing_bucket_is_a_dastrax_error_naming_the_url(s3_server):
    url = f"s3://dastrax-no-such-bucket-{uuid.uuid4().hex[:8]}/data"
    st = _s3_context(url, s3_server)
    with pytest.raises(dastrax.DastraxError, match=url.split("/")[2]) as info:
        st.select_runs()
    assert "does not exist" in str(info.value)
    with pytest.raises(dastrax.DastraxError, match=url.split("/")[2]) as info:
        st.get_array("0", "peaks")
    assert "does not exist" in str(info.value)
    with pytest.raises(dastrax.DastraxError, match=url.split("/")[2]):
        st.make("0", "records")


def test_a_run_document_written_elsewhere_is_seen(s3_server, s3_bucket):
    url = f"{s3_bucket}/data"
    st = _s3_context(url, s3_server)
    st.write_run_metadata("0", {"start": 0, "end": 10})
    with pytest.raises(dastrax.RunMetadataNotAvailable, match="'1'"):
        st.run_metadata("1")
    assert list(st.select_runs()["name"]) == ["0"]
    other = _s3_context(url, s3_server)  # another process's view: its own filesystem object
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3_server.storage_options)
    fs.pipe(f"{url[5:]}/runs/1.json", json.dumps({"start": 20, "end": 30}).encode())
    del other
    assert st.run_metadata("1")["end"] == 30  # no remembered miss
    assert sorted(st.select_runs()["name"]) == ["0", "1"]
    fs.rm(f"{url[5:]}/runs/1.json")
    with pytest.raises(dastrax.RunMetadataNotAvailable, match="'1'"):
        st.run_metadata("1")


# -- selection ------------------------------------------------------------------------------
@pytest.mark.parametrize("selection", [42, 4.5, {"area": 1}, b"area > 1", object()])
def test_bad_selection_type_is_invalid_request(storage_dir, selection):
    st = make_context(storage_dir)
    st.set_config(TINY)
    st.make("0", "peaks")
    with pytest.raises(dastrax.InvalidRequest, match="selection"):
        st.get_array("0", "peaks", selection=selection)
