"""A user's first hour (issue 23), the Python side: loads that refuse typos, storage that
does not exist, advice in Python's words, options checked where they are given, the
contract in the code. The command line's side is in test_cli.py."""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import inspect
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_context, make_runs
from dastrax.testutils import Peaks, Records

import dastrax
from dastrax.storage import StorageFrontend

LOADS = ("get_array", "get_df", "get_iter", "get_dataset")
LOAD_KEYWORDS = (
    "columns",
    "time_range",
    "seconds_range",
    "time_within",
    "selection",
    "check_lineage",
    "version",
    "combining",
    "make",
    "progress",
)


def files(path: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``path``: its size and modification time."""
    return {
        str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def three(st):
    make_runs(st)
    return st


# --------------------------------------------------------------------------------------
# 1. a typo makes no data
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("load", LOADS)
def test_a_typo_is_refused_naming_the_closest_runs_and_nothing_is_written(three, storage_dir, load):
    before = files(storage_dir)
    with pytest.raises(dastrax.RunNotFound, match=r"'00O' is not known.*closest: '0'") as e:
        result = getattr(three, load)("00O", "peaks")
        list(result) if load == "get_iter" else None
    assert isinstance(e.value, dastrax.DataNotAvailable)
    assert "make=True" in str(e.value)
    assert files(storage_dir) == before


def test_a_typo_in_a_list_of_runs_is_refused(three, storage_dir):
    before = files(storage_dir)
    with pytest.raises(dastrax.RunNotFound, match=r"'22'.*closest: '2'"):
        three.get_array(["0", "1", "22"], "peaks")
    assert files(storage_dir) == before


def test_make_true_and_an_explicit_make_still_make_a_new_run(three):
    assert len(three.get_array("7", "peaks", make=True)) == 100
    three.make("8", "peaks")
    assert three.is_stored("8", "peaks")
    # a run with stored data (but no document) exists: loads make its other types
    assert len(three.get_array("8", "peak_classification")) == 100


def test_make_false_refuses_missing_data_of_an_existing_run(three, storage_dir):
    before = files(storage_dir)
    with pytest.raises(dastrax.DataNotAvailable, match="peak_classification") as e:
        three.get_array("1", "peak_classification", make=False)
    assert not isinstance(e.value, dastrax.RunNotFound)
    assert files(storage_dir) == before
    # the default makes it: the run exists
    assert len(three.get_array("1", "peak_classification")) == 100


def test_a_storage_without_run_documents_makes_as_before(st):
    assert len(st.get_array("00O", "peaks")) == 100
    assert st.is_stored("00O", "peaks")


def test_the_docstrings_say_when_a_load_makes_data():
    for name in LOADS:
        doc = getattr(dastrax.Context, name).__doc__
        assert "RunNotFound" in doc and "make : bool or None" in doc, name
    assert "Only metadata is read" not in dastrax.Context.get_dataset.__doc__


# --------------------------------------------------------------------------------------
# 2. a storage that does not exist
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["", "strax://"])
def test_reads_of_a_storage_that_does_not_exist_are_refused(tmp_path, scheme):
    missing = tmp_path / "does_not_exist2"
    st = dastrax.Context(storage=f"{scheme}{missing}", register=[Records, Peaks])
    for call in (
        st.select_runs,
        st.list_runs,
        lambda: st.run_metadata("0"),
        lambda: st.get_array("_superrun_test", "peaks"),
        lambda: st.get_array("0", "peaks", make=False),
        lambda: st.get_metadata("0", "peaks"),
        lambda: st.define_run("_x", ["0"]),
    ):
        with pytest.raises(dastrax.DataNotAvailable, match=re.escape(str(missing))):
            call()
    assert not missing.exists()


def test_writes_create_a_storage_that_does_not_exist(tmp_path):
    new = tmp_path / "new" / "data"
    st = make_context(new)
    st.make("0", "peaks")
    assert new.is_dir() and st.is_stored("0", "peaks")
    assert st.select_runs().empty
    other = make_context(tmp_path / "other")
    assert len(other.get_array("0", "peaks")) == 100  # a load of a new run makes (writes)


def test_an_s3_storage_with_a_missing_bucket_is_refused(s3_server):
    st = dastrax.Context(
        storage=dastrax.ZarrDirectory(
            "s3://no-such-bucket-23/data", storage_options=s3_server.storage_options
        )
    )
    with pytest.raises(dastrax.DataNotAvailable, match="no-such-bucket-23"):
        st.select_runs()


# --------------------------------------------------------------------------------------
# 3. advice in the caller's language
# --------------------------------------------------------------------------------------
def test_python_errors_advise_python(three):
    three.define_run("_sr", ["0", "1"])
    with pytest.raises(dastrax.SuperrunDefinitionError, match=r"pass overwrite=True") as e:
        three.define_run("_sr", ["0"])
    assert "--overwrite" not in str(e.value)
    with pytest.raises(dastrax.RunMetadataNotAvailable, match=r"st\.define_run\('_nope'"):
        three.persist_superrun("_nope", "peaks")
    with pytest.raises(dastrax.DataNotAvailable, match=r"st\.make\('1', 'peak_classification'"):
        three.get_array("1", "peak_classification", make=False)


def test_every_piece_of_advice_has_both_languages():
    from dastrax.errors import advice, advice_language

    for name, (python, _cli) in dastrax.errors.ADVICE.items():
        fields = dict(run="0", data_type="peaks", option="opt")
        assert python.format(**fields) == advice(name, **fields)
        with advice_language("cli", "define"):
            text = advice(name, **fields)
        assert "st." not in text.replace("st.write_run_metadata", "") or "Python" in text, name
        assert "=True" not in text, name
    assert advice("overwrite") == "pass overwrite=True"


# --------------------------------------------------------------------------------------
# 4. options checked where they are given
# --------------------------------------------------------------------------------------
def test_an_unknown_option_warns_at_the_callers_line(st):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        st.set_config({"bonus_aera": 42})
    (w,) = [w for w in caught if issubclass(w.category, dastrax.errors.UnknownConfigWarning)]
    assert w.filename == __file__
    assert "bonus_area" in str(w.message)


def test_an_option_value_is_checked_at_set_config(st):
    with pytest.raises(dastrax.ConfigError, match="bonus_area.*int or float.*'abc'"):
        st.set_config({"bonus_area": "abc"})
    st.set_config({"bonus_area": 2.5})  # a number is fine


def test_an_unknown_option_in_a_configuration_file_is_an_error(tmp_path):
    f = tmp_path / "dastrax.toml"
    f.write_text('storage = "./d"\n[config]\nbonus_aera = 42\n')
    with pytest.raises(dastrax.ConfigError, match=r"dastrax\.toml.*bonus_aera.*'bonus_area'"):
        dastrax.Context.from_config(f)


# --------------------------------------------------------------------------------------
# 5. the contract in the code
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", LOADS)
def test_load_signatures_list_every_keyword(name):
    method = getattr(dastrax.Context, name)
    params = inspect.signature(method).parameters
    for kw in LOAD_KEYWORDS:
        assert kw in params, kw
        assert params[kw].kind is inspect.Parameter.KEYWORD_ONLY, kw
    assert "kwargs" not in params
    assert list(params)[1:3] == ["run_id_or_ids", "targets"] and "run_id" in params
    assert ("add_run_id_field" in params) == (name in ("get_array", "get_df"))
    doc = method.__doc__
    params_doc = doc.split("Parameters\n")[1].split("Returns\n")[0]
    for kw in [*LOAD_KEYWORDS, *(p for p in params if p != "self")]:
        assert re.search(rf"^\s+{kw} : ", params_doc, re.M), (name, kw)
    assert "Raises\n" in doc
    raises_doc = doc.split("Raises\n")[1].split("Examples\n")[0]
    named = re.findall(r"^\s{8}(\w+)$", raises_doc, re.M)
    assert {"RunNotFound", "DataNotAvailable", "InvalidRequest", "LineageMismatch"} <= set(named)
    for error in named:
        assert issubclass(getattr(dastrax.errors, error), dastrax.errors.DastraxError), error
    if name == "get_dataset":
        assert "chunks" in params
    else:
        assert "chunks" not in params


def test_strax_spellings_are_aliases_of_the_real_names(three):
    assert "keep_columns" not in inspect.signature(dastrax.Context.get_array).parameters
    arr = three.get_array(
        "1", "peaks", keep_columns=["area"], selection_str="channel < 3", progress_bar=False
    )
    assert arr.dtype.names == ("time", "length", "dt", "area") and len(arr) == 30
    ds = three.get_dataset("1", "peaks", _check_lineage_per_run_id=False)
    assert ds.sizes["peaks"] == 100
    with pytest.raises(dastrax.InvalidRequest, match="did you mean 'columns'"):
        three.get_array("1", "peaks", colums=["area"])
    with pytest.raises(dastrax.InvalidRequest, match="given both"):
        three.get_array("1", "peaks", columns=["area"], keep_columns=["area"])
    with pytest.raises(dastrax.InvalidRequest, match="chunks"):
        three.get_dataset("1", "peaks", chunks=-3)
    assert "add_run_id_field" in inspect.signature(dastrax.Context.get_array).parameters
    assert "run_id" not in three.get_array(["0", "1"], "peaks", add_run_id_field=False).dtype.names
    assert "progress_bar=" in dastrax.Context.make.__doc__


def _public_methods(cls):
    for name, member in vars(cls).items():
        if name.startswith("_") or not callable(member):
            continue
        yield name, member


@pytest.mark.parametrize("cls", [dastrax.Context, StorageFrontend, dastrax.Plugin])
def test_every_public_method_has_numpydoc_sections(cls):
    missing = []
    for name, member in _public_methods(cls):
        doc = inspect.getdoc(member) or ""
        params = [p for p in inspect.signature(member).parameters if p not in ("self", "cls")]
        need = ["Returns", "Examples"] + (["Parameters"] if params else [])
        for section in need:
            if f"{section}\n-" not in doc:
                missing.append(f"{name}: {section}")
        if "Raises\n-" not in doc and cls is not dastrax.Plugin:
            missing.append(f"{name}: Raises")
    assert not missing, missing


def test_context_keyword_typos_get_did_you_mean():
    with pytest.raises(dastrax.ConfigError, match="did you mean 'register'"):
        dastrax.Context(registr=[Records])


def test_the_package_is_typed_licensed_and_runnable():
    assert importlib.resources.files("dastrax").joinpath("py.typed").is_file()
    meta = importlib.metadata.metadata("dastrax")
    assert meta["License-Expression"] == "MIT"
    assert "LICENSE" in (meta.get_all("License-File") or [])
    classifiers = meta.get_all("Classifier")
    assert "Typing :: Typed" in classifiers
    assert "Programming Language :: Python :: 3.12" in classifiers
    # no made-up addresses: the project has no public home yet, so it names none
    assert not meta.get_all("Project-URL")
    proc = subprocess.run(
        [sys.executable, "-m", "dastrax", "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "dastrax demo" in proc.stdout


# --------------------------------------------------------------------------------------
# 6. quiet, idempotent, honest
# --------------------------------------------------------------------------------------
def test_superrun_comments_are_merged_like_tags(st):
    for i, run in enumerate(("0", "1")):
        st.set_config({"time_offset": 20 * i})
        st.make(run, "records")
        st.write_run_metadata(
            run,
            {"start": 20 * i, "end": 20 * i + 10, "tags": ["a"], "comments": ["same", run]},
        )
    doc = st.define_run("_c", ["0", "1"])
    assert doc["comments"] == ["same", "0", "1"]
    assert doc["tags"] == ["a"]


def test_livetime_is_in_seconds_everywhere(three):
    three.define_run("_sr", ["0", "1"])
    assert three.run_metadata("_sr")["livetime"] == pytest.approx(20e-9)
    assert "livetime 2e-08 s" in repr(three.show_superrun("_sr"))
    assert three.superrun_summary("_sr")["livetime"].tolist() == pytest.approx([1e-8, 1e-8])
    # select_runs keeps strax's type (its own test suite checks it): a timedelta
    table = three.select_runs().set_index("name")
    assert table.loc["_sr", "livetime"] == pd.Timedelta(20, unit="ns")  # not 19 ns


def test_progress_bars_only_on_a_terminal(capsys):
    """Redirected output (a pipe, a log file) gets no bar and no escape codes."""
    import time

    import dask

    from dastrax.core.scheduling import Scheduler

    (result,) = Scheduler("threads").compute(
        dask.delayed(time.sleep)(1.2), progress=True, label="making peaks"
    )
    out, err = capsys.readouterr()
    assert result is None and out == "" and err == ""
