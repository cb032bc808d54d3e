"""The S3 server fixture: a file written with s3fs through it reads back, from options alone."""

from __future__ import annotations

import os

import s3fs


def test_write_and_read_a_file(s3_server, s3_bucket, monkeypatch):
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    assert s3_bucket.startswith("s3://dastrax-test-")
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3_server.storage_options)
    fs.pipe(f"{s3_bucket}/a/b.bin", b"dastrax")
    other = s3fs.S3FileSystem(skip_instance_cache=True, **s3_server.storage_options)
    assert other.cat(f"{s3_bucket}/a/b.bin") == b"dastrax"
    assert other.ls(s3_bucket, detail=False) == [f"{s3_bucket[5:]}/a"]
    assert not any(name.startswith("AWS_") for name in os.environ)


def test_each_bucket_is_fresh(s3_server, s3_bucket):
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3_server.storage_options)
    assert fs.ls(s3_bucket, detail=False) == []
