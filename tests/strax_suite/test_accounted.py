"""Every test of the seven strax 2.2.3 test files that issue 21 translates is accounted
for: translated (a test in ``tests/strax_suite/`` names it in its docstring) or listed
in README.md's "From strax" section with the reason it is left out. And the "From
strax" table names every strax spelling the project supports."""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

import pytest

HERE = Path(__file__).parent
README = HERE.parents[1] / "README.md"

#: the tests of strax 2.2.3 (tag v2.2.3, tests/<file>), by file; a class stands for
#: all its tests where the README leaves the class out or translates one part of it
STRAX_TESTS = {
    "test_superruns.py": [
        "test_superrun_access",
        "test_run_meta_data",
        "test_loaders_and_savers",
        "test_create_and_load_superruns",
        "test_select_runs_with_superruns",
        "test_superrun_chunk_properties",
        "test_superrun_definition",
        "test_superrun_chunk_and_meta",
        "test_rechnunking_and_loading",
        "test_superrun_triggers_subrun_processing",
        "test_storing_with_second_sf",
        "test_superrun_chunk_number",
        "test_bare_combining_subruns",
        "test_only_combining_superruns",
    ],
    "test_core.py": [
        "test_core",
        "test_core_df",
        "test_post_office_state",
        "test_multirun",
        "test_filestore",
        "test_datadirectory_deleted",
        "test_fuzzy_matching",
        "test_exception",
        "test_exception_in_saver",
        "test_random_access",
        "test_rechunk_on_save",
        "test_run_selection",
        "test_run_defaults",
        "test_dtype_mismatch",
        "test_get_single_plugin",
        "test_allow_multiple",
        "test_allow_multiple_inverted",
        "test_available_for_run",
        "test_per_chunk_storage",
        "test_dependency_tree",
    ],
    "test_context.py": [
        "test_apply_pass_to_data",
        "test_byte_strings_as_run_id",
        "test_apply_ch_shift_to_data",
        "test_apply_drop_data",
        "test_accumulate",
        "test_search_field",
        "test_show_config",
        "test_data_itemsize",
        "test_data_info",
        "test_copy_to_frontend",
        "test_get_plugins_with_cache",
        "test_multioutput_deregistration",
        "test_register_no_defaults",
        "test_register_no_defaults_but_allowed",
        "test_register_with_defaults",
        "test_register_with_defaults_and_allowed",
        "test_register_all_no_defaults",
        "test_register_all_no_defaults_and_allowed",
        "test_deregister",
        "test_purge_configs",
        "test_scan_runs__provided_dtypes__available_for_run",
        "test_bad_savewhen",
        "test_get_source",
        "test_print_versions",
        "test_multi_run_loading_with_errors",
        "test_auto_lineage",
        "test_compare_metadata",
        "test_get_data_kinds",
        "test_get_dependencies",
    ],
    "test_storage.py": [
        "test_write_data_dir",
        "test_complain_run_id",
        "TestStorageType",
        "TestRechunking",
        "TestBlosc",
    ],
    "test_saving.py": [
        "test_savewhen_never",
        "test_savewhen_never_with_save",
        "test_savewhen_explict_without_save",
        "test_savewhen_explict_with_save",
        "test_savewhen_target",
        "test_savewhen_always",
        "test_raise_corruption",
    ],
    "test_utils.py": [
        "test_growing_result",
        "test_to_numpy_dtype",
        "test_time_selection",
        "test_selection_str",
        "test_selection_function",
        "test_keep_drop_columns",
        "TestMultiRun",
    ],
    "test_multi_output.py": [
        "test_save_when_per_provide_same_save_when",
        "test_save_when_per_provide",
        "test_save_per_provide_inlined",
        "test_double_dependency",
        "test_double_dependency_notlazy",
        "test_double_dependency_multiprocess",
        "test_double_dependency_inline_plugins",
        "test_multi_output",
    ],
}

#: the spellings of issue 21 (API.md, "strax's spellings"), as the README's table
#: writes them
SPELLINGS = [
    "st.get_array(run_id=..., targets=...)",
    "st.make(run_id=..., targets=...)",
    "add_run_id_field=False",
    "st.storage = [",
    "st.scan_runs()",
    "st.list_available(target)",
    'st.select_runs(run_id="0*")',
    'projection=["name"]',
    '"forbid_creation_of"',
    "combining=True` for a regular run",
    "st.is_stored(sr, t, combining=True)",
    "st.key_for(sr, t, combining=True)",
    "chunk.is_superrun",
    "chunk.first_subrun",
    "chunk.last_subrun",
    'depends_on = "records"',
    "compute(self, records)",
    'provides = ("a", "b")',
    "(run ids as bytes)",
    "allow_superrun = True",
]


def from_strax() -> str:
    text = README.read_text()
    return text[text.index("## From strax") : text.index("\n## ", text.index("## From strax") + 1)]


def left_out() -> dict[str, set[str]]:
    """The README's left-out table: per strax file, the names it leaves out (a file
    named alone leaves out every test of it that is not translated)."""
    table = from_strax().split("| strax tests | why |\n| --- | --- |\n", 1)[1]
    out: dict[str, set[str]] = {}
    for row in table.splitlines():
        if not row.startswith("| "):
            break
        cell = row.split(" | ")[0]
        current = ""
        for item in re.findall(r"`([^`]+)`", cell):
            if "::" in item:
                current, item = item.split("::", 1)
            elif item.endswith(".py"):
                current, item = item, "*"
            out.setdefault(current, set()).add(item)
    return out


def translated(strax_file: str) -> set[str]:
    """The identifiers in the docstrings of the translated tests of ``strax_file``."""
    path = HERE / strax_file
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            names |= set(re.findall(r"\w+", ast.get_docstring(node) or ""))
    return names


@pytest.mark.parametrize("strax_file", list(STRAX_TESTS))
def test_every_strax_test_is_translated_or_left_out_with_a_reason(strax_file):
    done, skipped = translated(strax_file), left_out()
    missing = []
    for name in STRAX_TESTS[strax_file]:
        patterns = skipped.get(strax_file, set()) | skipped.get("", set())
        if name in done or any(fnmatch.fnmatchcase(name, p) for p in patterns):
            continue
        missing.append(name)
    assert not missing, f"{strax_file}: neither translated nor in the README: {missing}"


def test_the_readme_table_names_every_strax_spelling():
    text = from_strax()
    assert [s for s in SPELLINGS if s not in text] == []
