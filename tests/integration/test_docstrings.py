"""The Examples sections of the public API's docstrings run, and show what they say.

``Context`` methods' examples share ``st``: runs 0, 1 and 2 of the dummy plugins (10 ns
each, 20 ns apart, peaks and peak_classification stored, run documents written), as
``dastrax demo`` makes them."""

from __future__ import annotations

import doctest
import inspect
import sys
import uuid

import pytest
from conftest import make_runs
from dastrax.testutils import Peaks, Records

import dastrax
from dastrax import errors
from dastrax.load import requests
from dastrax.storage import abc as base
from dastrax.storage.zarr.memory import MemoryDirectory

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE | doctest.IGNORE_EXCEPTION_DETAIL


def run_doctests(obj, globs, name=None) -> int:
    finder = doctest.DocTestFinder(recurse=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    tests = finder.find(obj, name or getattr(obj, "__name__", None), globs=globs)
    assert tests
    for test in sorted(tests, key=lambda t: t.name):
        runner.run(test)
    failures, attempted = runner.summarize(verbose=False)
    assert failures == 0
    return attempted


def test_context_examples(st, tmp_path):
    make_runs(st, targets=["peaks", "peak_classification"])
    attempted = run_doctests(dastrax.Context, {"dastrax": dastrax, "st": st, "tmp": tmp_path})
    assert attempted > 60


def test_storage_frontend_examples(tmp_path):
    """``d``: a frontend holding run 0's document and its records and peaks."""
    d = MemoryDirectory(f"memory://doc-{uuid.uuid4().hex}")
    st = dastrax.Context(storage=d, register=[Records, Peaks], progress=False)
    st.make("0", "peaks")
    st.write_run_metadata("0", {"start": 0, "end": 10})
    globs = {**vars(base), "d": d, "key": str(st.key_for("0", "peaks"))}
    assert run_doctests(base.StorageFrontend, globs) > 30


@pytest.mark.parametrize("obj", [dastrax.Plugin, errors, requests])
def test_plugin_and_error_examples(obj):
    module = obj if inspect.ismodule(obj) else sys.modules[obj.__module__]
    assert run_doctests(obj, {**vars(module), "dastrax": dastrax}) > 0
