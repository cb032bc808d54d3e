"""A pytest plugin: a real S3 API server (moto's standalone server) for the test session.

The server runs as a separate process (``moto_server``) on a free port of 127.0.0.1, so dask
workers in other processes reach it as well. Credentials are only ever given as
``storage_options``; the fixtures put nothing into environment variables.

Load it from ``tests/conftest.py`` with ``pytest_plugins = ("s3server",)``.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"


@dataclasses.dataclass(frozen=True)
class S3Server:
    """A running moto server: where it listens and the fsspec/s3fs options that reach it."""

    endpoint_url: str
    process: subprocess.Popen

    @property
    def storage_options(self) -> dict:
        """Options for ``s3fs.S3FileSystem`` (and ``fsspec``) to reach this server."""
        return {
            "key": ACCESS_KEY,
            "secret": SECRET_KEY,
            "client_kwargs": {"endpoint_url": self.endpoint_url, "region_name": REGION},
        }

    def filesystem(self):
        """A fresh ``s3fs.S3FileSystem`` on this server, without fsspec's instance cache."""
        import s3fs

        return s3fs.S3FileSystem(skip_instance_cache=True, **self.storage_options)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _moto_command(port: int) -> list[str]:
    """moto's server, its conditional writes atomic as on S3 (see ``_moto_atomic.py``)."""
    launcher = Path(__file__).with_name("_moto_atomic.py")
    return [sys.executable, str(launcher), "-H", "127.0.0.1", "-p", str(port)]


def _wait_until_up(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.05)
    raise RuntimeError(f"moto_server did not answer at {url} within {timeout} s")


@pytest.fixture(scope="session")
def s3_server():
    """A moto S3 server in its own process for the whole session; stopped at the end."""
    for _attempt in range(3):
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        process = subprocess.Popen(
            _moto_command(port),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(url, process)
        except RuntimeError:
            process.kill()
            process.wait()
            continue
        break
    else:
        pytest.fail("could not start moto_server on 127.0.0.1")
    server = S3Server(endpoint_url=url, process=process)
    try:
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def s3_bucket(s3_server) -> str:
    """A fresh, uniquely named, empty bucket on the session's server, as ``s3://<bucket>``."""
    import boto3

    name = f"dastrax-test-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    client.create_bucket(Bucket=name)
    return f"s3://{name}"
