"""The module paths of before the package was organised in layers still import, as the
same module objects as the new paths (API.md: moving a module keeps its import path)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import dastrax
from dastrax._aliases import ALIASES


@pytest.mark.parametrize("old", sorted(ALIASES))
def test_an_old_path_is_the_module_at_its_new_place(old):
    assert importlib.import_module(old) is importlib.import_module(ALIASES[old])


def test_old_names_in_from_imports_and_attributes():
    import dastrax.loader
    from dastrax.bench_allow import run_allow
    from dastrax.storage.base import StorageFrontend
    from dastrax.testutils import Peaks

    assert StorageFrontend is dastrax.StorageFrontend
    assert Peaks.__module__ == "dastrax.testing.plugins"
    assert callable(run_allow)
    assert dastrax.loader is importlib.import_module("dastrax.load.plan")


def test_a_setting_made_through_an_old_name_is_seen_through_the_new_one(monkeypatch):
    import dastrax.loader as old

    import dastrax.load.plan as new

    monkeypatch.setattr(old, "_dastrax_probe", 1, raising=False)
    assert new._dastrax_probe == 1


def test_old_paths_work_in_a_fresh_process_and_unknown_ones_still_fail():
    code = (
        "import dastrax.testutils as t, dastrax.storage.zarr_writer as w\n"
        "from dastrax.display import plot_superrun\n"
        "from dastrax.cli import cli, main, with_env\n"
        "print(t.__name__, w.__name__)\n"
        "try:\n"
        "    import dastrax.no_such_module\n"
        "except ModuleNotFoundError:\n"
        "    print('missing')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["dastrax.testing.plugins", "dastrax.storage.zarr.writer", "missing"]


def test_the_top_level_holds_at_most_eight_modules():
    from pathlib import Path

    top = [p.name for p in Path(dastrax.__file__).parent.glob("*.py")]
    assert len(top) <= 8, top


def test_one_parser_of_stored_names():
    key = dastrax.DataKey.parse("_kr-peaks-abcdefghij")
    assert (key.run_id, key.data_type, key.lineage_hash) == ("_kr", "peaks", "abcdefghij")
    assert str(key) == "_kr-peaks-abcdefghij"
    for bad in ("peaks", "a-b", "a--c", "a-b-c-d", 3):
        with pytest.raises(dastrax.InvalidRequest, match="run_id-data_type-lineage_hash"):
            dastrax.DataKey.parse(bad)
