"""strax 2.2.3's tests/test_saving.py, translated to dastrax's spellings. strax's
``save_when`` tests are left out (dastrax stores everything it makes)."""

from __future__ import annotations

import pytest

import dastrax
from dastrax.errors import CorruptData

from .plugins import Peaks, Records


def test_raise_corruption(tmp_path):
    """TestPerRunDefaults.test_raise_corruption: damaged metadata of stored data is an
    error (strax's DataCorrupted is dastrax's CorruptData), also for a type depending on
    it."""
    st = dastrax.Context(
        use_per_run_defaults=True,
        register=[Records],
        storage=[dastrax.DataDirectory(str(tmp_path))],
        progress=False,
    )
    st.make("0", "records")
    assert st.is_stored("0", "records")
    data_path = tmp_path / str(st.key_for("0", "records"))
    md_path = data_path / "zarr.json"
    assert md_path.exists()
    with open(md_path, "a") as md_file:
        md_file.write("Adding a non-JSON line to the file to corrupt the metadata")
    with pytest.raises(CorruptData):
        st.get_array("0", "records")
    st.register(Peaks)
    with pytest.raises(CorruptData):
        st.get_array("0", "peaks")
