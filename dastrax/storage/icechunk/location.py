"""Where an icechunk repository is, and this process's one open handle of it.

A :class:`Location` is picklable (it travels with groups and writers to dask workers) and
is the key of :func:`open_repo`'s table: every process opens each repository once.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, overload

import icechunk

from dastrax.errors import DataNotAvailable, InvalidRequest

_S3_OPTIONS = {"key", "secret", "token", "anon", "client_kwargs", "endpoint_url", "region_name"}
_S3_CLIENT = {"endpoint_url", "region_name"}

#: attempts to open a repository that another process is creating at the same moment
#: (waiting 0.1 s, 0.2 s, ... between them: about 4 s in all)
CREATE_ATTEMPTS = 9


@dataclass(frozen=True)
class Location:
    """Where a repository is: picklable, and the key of this process's open repository."""

    url: str
    kind: str  # "local" or "s3"
    path: str  # local path, or "bucket/prefix"
    options: tuple[tuple[str, Any], ...] = ()  # sorted storage_options (nested as tuples)

    def storage(self) -> icechunk.Storage:
        """The icechunk storage of this location."""
        if self.kind == "local":
            return icechunk.local_filesystem_storage(self.path)
        opts = _unfreeze(self.options)
        client = dict(opts.get("client_kwargs") or {})
        endpoint = opts.get("endpoint_url") or client.get("endpoint_url")
        region = opts.get("region_name") or client.get("region_name")
        bucket, _, prefix = self.path.partition("/")
        kwargs: dict[str, Any] = {
            "bucket": bucket,
            "prefix": prefix or None,
            "region": region,
            "endpoint_url": endpoint,
            "allow_http": bool(endpoint and endpoint.startswith("http://")),
            "force_path_style": bool(endpoint),
        }
        if opts.get("anon"):
            kwargs["anonymous"] = True
        elif opts.get("key") is not None:
            kwargs["access_key_id"] = opts["key"]
            kwargs["secret_access_key"] = opts.get("secret")
            kwargs["session_token"] = opts.get("token")
        else:
            kwargs["from_env"] = True
        return icechunk.s3_storage(**kwargs)


#: this process's open repositories; the lock also guards :mod:`.commit`'s commit locks
REPOS: dict[Location, icechunk.Repository] = {}
REPOS_LOCK = threading.Lock()


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


def _unfreeze(items: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    return {k: _unfreeze(v) if isinstance(v, tuple) else v for k, v in items}


def parse_location(path_or_url: str, storage_options: dict[str, Any] | None) -> Location:
    """The :class:`Location` of an ``IcechunkRepository(path_or_url, storage_options=...)``.

    Raises
    ------
    InvalidRequest
        For an empty path, an unsupported scheme, a URL without a bucket, or storage
        options that do not apply (the message lists those that do).
    """
    url = str(path_or_url)
    if not url:
        raise InvalidRequest("IcechunkRepository needs a path or an s3:// URL")
    for scheme in ("icechunk://", "file://"):
        if url.startswith(scheme):
            url = url[len(scheme) :]
    options = dict(storage_options or {})
    if url.startswith("s3://"):
        path = url[len("s3://") :].strip("/")
        if not path:
            raise InvalidRequest(f"{path_or_url!r} names no bucket: use s3://BUCKET[/PREFIX]")
        unknown = set(options) - _S3_OPTIONS
        unknown |= {f"client_kwargs.{k}" for k in set(options.get("client_kwargs") or {})}
        unknown -= {f"client_kwargs.{k}" for k in _S3_CLIENT}
        if unknown:
            raise InvalidRequest(
                f"storage_options {sorted(unknown)} are not understood for an icechunk "
                f"repository on S3; use {sorted(_S3_OPTIONS)} "
                "(client_kwargs: endpoint_url, region_name)"
            )
        return Location(f"s3://{path}", "s3", path, _freeze(options))
    if "://" in url:
        raise InvalidRequest(
            f"IcechunkRepository({path_or_url!r}): only local paths and s3:// URLs are supported"
        )
    if options:
        raise InvalidRequest(
            f"storage_options {sorted(options)} were given for the local path {url!r}; "
            "they apply to s3:// URLs only"
        )
    path = os.path.abspath(os.path.expanduser(url))
    return Location(path, "local", path)


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """icechunk's log filter at ``error`` for the duration of the block, then back at
    icechunk's default, unless the environment sets ``ICECHUNK_LOG`` (then untouched).

    icechunk warns whenever a local storage is opened that local disks are unsafe for
    concurrent commits (documented in ``IcechunkRepository``'s docstring instead, and
    this process's threads commit one at a time), and on creating a repository about a
    storage setting it does not use. Its filter is one for the whole process (there is
    no way to read it back): a filter set with ``icechunk.set_logs_filter`` rather than
    ``ICECHUNK_LOG`` is back at icechunk's default after dastrax opens a repository.
    """
    if "ICECHUNK_LOG" in os.environ:
        yield
        return
    icechunk.set_logs_filter("error")
    try:
        yield
    finally:
        icechunk.set_logs_filter(None)  # icechunk's default (ICECHUNK_LOG is not set)


@overload
def open_repo(loc: Location, create: Literal[True]) -> icechunk.Repository: ...
@overload
def open_repo(loc: Location, create: bool) -> icechunk.Repository | None: ...
def open_repo(loc: Location, create: bool) -> icechunk.Repository | None:
    """This process's repository at ``loc``; None if there is none and ``create`` is False.

    Raises
    ------
    DataNotAvailable
        If the storage cannot be reached or read as a repository.
    """
    with REPOS_LOCK:
        repo = REPOS.get(loc)
        if repo is not None:
            return repo
        try:
            with quiet_logs():
                repo = _open_or_create(loc.storage(), create)
        except icechunk.IcechunkError as e:
            raise DataNotAvailable(
                f"cannot open the icechunk repository at {loc.url}: {first_line(e)}; check "
                "that the path or bucket exists and that storage_options hold the endpoint "
                "and credentials"
            ) from None
        if repo is not None:
            REPOS[loc] = repo
        return repo


def _open_or_create(storage: icechunk.Storage, create: bool) -> icechunk.Repository | None:
    attempt = 0
    while True:
        try:
            if icechunk.Repository.exists(storage):
                return icechunk.Repository.open(storage)
            if create:
                return icechunk.Repository.create(storage)
            return None
        except icechunk.IcechunkError:
            # another process is creating it at the same moment (its first objects are
            # there, so the prefix is no longer clean, but the repository may not be
            # complete yet): wait for it, then open theirs
            attempt += 1
            if attempt == CREATE_ATTEMPTS:
                raise
            time.sleep(0.1 * attempt)


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type's name if it has none)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
