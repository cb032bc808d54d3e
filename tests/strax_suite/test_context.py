"""strax 2.2.3's tests/test_context.py, translated to dastrax's spellings; scenario and
assertions kept."""

from __future__ import annotations

import numpy as np
import pytest

import dastrax

from .plugins import RECORD_DTYPE, RUN_ID, PeakClassification, Peaks, Records


def context(path, plugins=(Records,)):
    return dastrax.Context(
        storage=dastrax.DataDirectory(str(path)), register=list(plugins), progress=False
    )


def test_byte_strings_as_run_id(tmp_path):
    """test_byte_strings_as_run_id: run ids given as bytes are decoded."""
    st = context(tmp_path)
    records_bytes = st.get_array(b"0", "records")
    records = st.get_array("0", "records")
    assert np.all(records_bytes == records)
    assert st.is_stored(b"0", "records")
    assert str(st.key_for(b"0", "records")) == str(st.key_for("0", "records"))


@pytest.fixture
def full(tmp_path):
    return context(tmp_path, (Records, Peaks, PeakClassification))


def test_search_field(full):
    """test_search_field."""
    assert len(full.search_field("data"))


def test_show_config(full):
    """test_show_config."""
    assert len(full.show_config("peaks"))


def test_data_info(full):
    """test_data_info."""
    assert len(full.data_info("peaks"))


def test_multioutput_deregistration(tmp_path):
    """TestContext.test_multioutput_deregistration: a multi-output plugin one of whose
    outputs another plugin now provides is deregistered whole."""

    class RecordsPlus(dastrax.Plugin):
        depends_on = tuple()
        data_kind = dict(records="records", plus="plus")
        dtype = dict(records=RECORD_DTYPE, plus=RECORD_DTYPE)
        provides = ("records", "plus")

    st = context(tmp_path, ())
    st.register(RecordsPlus)
    assert str(st.key_for(RUN_ID, "plus")).startswith(f"{RUN_ID}-plus-")
    st.register(Records)
    assert st.lineage(RUN_ID, "records")["records"][0] == "Records"
    with pytest.raises(KeyError):
        st.key_for(RUN_ID, "plus")


def test_scan_runs__provided_dtypes__available_for_run(tmp_path):
    """TestContext.test_scan_runs__provided_dtypes__available_for_run (scan_runs; strax's
    provided_dtypes and available_for_run have no dastrax counterpart)."""
    st = context(tmp_path, (Records, Peaks, PeakClassification))
    st.make(RUN_ID, "records")
    table = st.scan_runs()
    assert table["name"].tolist() == [RUN_ID]
    assert st.list_available("records") == [RUN_ID]
    assert st.list_available("peaks") == []
