"""strax 2.2.3's tests/test_storage.py, translated to dastrax's spellings; scenario and
assertions kept."""

from __future__ import annotations

import pytest

import dastrax
from dastrax.errors import DataNotAvailable

from .plugins import Peaks, Records


@pytest.fixture
def st():
    return dastrax.Context(use_per_run_defaults=True, register=[Records], progress=False)


def test_write_data_dir(st, tmp_path):
    """TestPerRunDefaults.test_write_data_dir: st.storage assigned."""
    st.storage = [dastrax.DataDirectory(str(tmp_path))]
    st.make("0", "records")
    assert st.is_stored("0", "records")
    assert any(p.name.startswith("0-records-") for p in tmp_path.iterdir())


def test_complain_run_id(st, tmp_path):
    """TestPerRunDefaults.test_complain_run_id: '-' is refused in run ids."""
    st.storage = [dastrax.DataDirectory(str(tmp_path))]
    with pytest.raises(ValueError):
        st.make("run-0", "records")


def test_forbid_creation_of(st, tmp_path):
    """The end of TestRechunking._rechunking: with forbid_creation_of="*", stored data
    still loads. (strax's rechunker itself has no dastrax counterpart: stored superruns
    are rechunked by persist_superrun.) And what is not stored is refused."""
    st.storage = [dastrax.DataDirectory(str(tmp_path))]
    st.make("0", "records")
    st.set_context_config(dict(forbid_creation_of="*"))
    assert len(st.get_array("0", "records"))
    st.register(Peaks)
    with pytest.raises(DataNotAvailable, match="forbid_creation_of"):
        st.get_array("0", "peaks")
    st.set_context_config(dict(forbid_creation_of=("records",)))
    with pytest.raises(DataNotAvailable, match="records"):
        st.get_array("1", "peaks")  # its records would be made
    assert len(st.get_array("0", "peaks"))  # records stored: only peaks made
    assert not st.is_stored("1", "records")
