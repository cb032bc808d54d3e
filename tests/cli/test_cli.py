"""The ``dastrax`` command, run for real in subprocesses."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_context, make_runs

import dastrax

EXE = Path(sys.executable).with_name("dastrax")
COMMAND = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "dastrax.cli"]


def run(*args, cwd, env=None, check=True) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("DASTRAX_CONFIG", "DASTRAX_DEBUG")}
    full_env.update(env or {})
    proc = subprocess.run(
        [*COMMAND, *map(str, args)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"dastrax {' '.join(map(str, args))} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


class Result:
    """What an in-process run of the command line gave."""

    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path):
    """Run the command line in this process (fast): ``cli("info", "0")`` -> Result."""
    from dastrax.cli.main import main

    monkeypatch.delenv("DASTRAX_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)

    def call(*args, check=True):
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        if check and code != 0:
            raise AssertionError(f"dastrax {args} exited {code}\n{out}\n{err}")
        return Result(code, out, err)

    return call


def assert_one_line_error(proc, *needles):
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("dastrax: error: ")
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0]


# A plain ``pip install -e .``, as the README's first command (issue 23): in a subprocess with
# this environment, every module of an installed distribution that dastrax's own requirements
# (not its extras) do not bring in is refused, as if it were not installed.
_PLAIN_INSTALL = """
import importlib.abc, os, sys

_REFUSED = frozenset(os.environ["DASTRAX_TEST_REFUSED_MODULES"].split(","))


class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in _REFUSED:
            message = f"No module named {name!r} (not in a plain install)"
            raise ModuleNotFoundError(message, name=name)
        return None


sys.meta_path.insert(0, _NotInstalled())
"""


def plain_install_env(tmp_path) -> dict[str, str]:
    """Environment variables under which a subprocess sees only a plain install's modules."""
    import importlib.metadata as md

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    needed, todo = set(), [("dastrax", "")]
    while todo:
        name, extra = todo.pop()
        key = (canonicalize_name(name), extra)
        if key in needed:
            continue
        needed.add(key)
        try:
            requires = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        for text in requires:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": extra}):
                todo += [(req.name, "")] + [(req.name, e) for e in req.extras]
    plain = {n for n, _ in needed}
    refused = {
        module
        for module, dists in md.packages_distributions().items()
        if not any(canonicalize_name(d) in plain for d in dists) and module.isidentifier()
    }
    assert {"pytest", "moto", "s3fs", "hypothesis"} <= refused and "dask" not in refused
    site = tmp_path / "plain-install"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_PLAIN_INSTALL)
    return {"PYTHONPATH": str(site), "DASTRAX_TEST_REFUSED_MODULES": ",".join(sorted(refused))}


def test_the_plain_install_refuses_the_test_tools(tmp_path):
    env = {**os.environ, **plain_install_env(tmp_path)}
    code = "import dask, zarr, dastrax.cli.main; import pytest"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "No module named 'pytest' (not in a plain install)" in proc.stderr


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """A directory where ``dastrax demo`` ran (on its defaults: ./dastrax_data, threads), with
    only the modules of a plain install importable (the README's first command)."""
    cwd = tmp_path_factory.mktemp("demo")
    proc = run("demo", cwd=cwd, env=plain_install_env(tmp_path_factory.mktemp("site")))
    assert "_demo" in proc.stdout
    assert "reads back the same 300 rows" in proc.stdout
    assert "livetime 3e-08 s" in proc.stdout  # seconds, as everywhere (issue 23)
    assert "\r" not in proc.stdout and "\x1b" not in proc.stdout  # no bars in the output
    return cwd


def test_demo_writes_to_dastrax_data_in_cwd(demo_dir):
    data = demo_dir / "dastrax_data"
    st = make_context(data)
    assert st.list_runs() == ["0", "1", "2", "_demo"]
    assert st.run_metadata("_demo")["sub_run_spec"] == {"0": "all", "1": "all", "2": "all"}
    for t in ("peaks", "peak_classification"):
        assert st.is_stored("_demo", t)
    stored = st.get_array("_demo", ["peaks", "peak_classification"])
    assert len(stored) == 300
    assert np.array_equal(stored["type"], 1 + stored["channel"] % 2)


def _files(path):
    return {
        str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def test_demo_is_rerunnable(demo_dir):
    before = _files(demo_dir / "dastrax_data")
    proc = run("demo", cwd=demo_dir)
    assert "already stored" in proc.stdout
    # a rerun changes nothing it made before: not a file rewritten (issue 23)
    assert _files(demo_dir / "dastrax_data") == before
    # the superrun's comments are merged like its tags
    doc = make_context(demo_dir / "dastrax_data").run_metadata("_demo")
    assert doc["comments"] == ["made by dastrax demo"] and doc["tags"] == ["demo"]


def test_demo_follows_changed_plugin_options(cli, tmp_path):
    data = tmp_path / "data"
    cli("demo", "--set", "n_chunks=3", "--storage", data, "--no-progress")
    st = make_context(data)
    assert st.run_metadata("_demo")["end"] == 2 * 6 + 3  # runs of 3 ns, every 6 ns
    cli("demo", "--storage", data, "--no-progress")  # back to 10 ns runs, 20 ns apart
    doc = st.run_metadata("_demo")
    assert (doc["start"], doc["end"]) == (0, 50)
    assert doc["livetime"] == pytest.approx(30e-9)
    assert len(st.get_array("_demo", "peaks")) == 300


def test_runs_lists_the_demo(demo_dir):
    proc = run("runs", "-a", "peaks", cwd=demo_dir)
    lines = proc.stdout.splitlines()
    assert "peaks_available" in lines[0]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert set(rows) == {"0", "1", "2", "_demo"}
    assert rows["_demo"].rstrip().endswith("True")
    assert " 3e-08 s " in rows["_demo"] and " 1e-08 s " in rows["0"]  # seconds everywhere


def test_runs_in_an_empty_storage(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    proc = cli("runs", "--storage", tmp_path / "empty")
    assert proc.stdout.strip() == f"no runs in {tmp_path / 'empty'}"


def test_read_commands_on_a_storage_that_does_not_exist_fail(cli, tmp_path):
    """Regression (issue 12): 'no runs' and exit 0 for a mistyped path."""
    missing = tmp_path / "no" / "such" / "dir"
    for args in (("runs",), ("info", "0"), ("info", "0", "peaks")):
        proc = cli(*args, "--storage", missing, check=False)
        assert proc.returncode == 1
        assert f"storage {missing} does not exist" in proc.stderr
    assert not missing.exists()


def test_persist_rechunks_the_demo(demo_dir):
    proc = run(
        "persist",
        "_demo",
        "-t",
        "peaks",
        "--chunk-target-size-mb",
        "0.1",
        "--overwrite",
        cwd=demo_dir,
    )
    out = proc.stdout
    assert "stored _demo-peaks-" in out and "persisted _demo" in out
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("persisted _demo: 300 rows in ")
    assert "MB/s" in summary
    st = make_context(demo_dir / "dastrax_data")
    meta = st.get_metadata("_demo", "peaks")
    n_chunks = len(meta["chunks"])
    assert f"300 rows in {n_chunks} chunks" in summary
    assert n_chunks > 1  # 300 rows of ~1.2 kB in chunks of about 0.1 MB
    assert sum(c["n"] for c in meta["chunks"]) == 300
    assert np.array_equal(
        st.get_array("_demo", "peaks")["time"], st.get_array(["0", "1", "2"], "peaks")["time"]
    )


def test_persist_again_is_a_no_op_that_says_so(cli, demo_dir):
    data = demo_dir / "dastrax_data"
    before = make_context(data).get_metadata("_demo", "peak_classification")["chunks"]
    proc = cli("persist", "_demo", "-t", "peak_classification", "--storage", data)
    assert "already stored" in proc.stdout
    assert make_context(data).get_metadata("_demo", "peak_classification")["chunks"] == before


def test_info(cli, demo_dir):
    data = demo_dir / "dastrax_data"
    proc = cli("info", "_demo", "--storage", data)
    assert "livetime" in proc.stdout and "subruns:" in proc.stdout
    proc = cli("info", "_demo", "peak_classification", "--storage", data)
    assert "_demo-peak_classification-" in proc.stdout
    rows = [line for line in proc.stdout.splitlines() if line.startswith("rows ")]
    assert rows and rows[0].split()[-1] == "300"
    proc = cli("info", "0", "peaks", "--json", "--storage", data)
    meta = json.loads(proc.stdout)
    assert meta["run_id"] == "0" and sum(c["n"] for c in meta["chunks"]) == 100


def test_info_on_a_bad_run_id_is_one_line(demo_dir):
    proc = run("info", "a/b", cwd=demo_dir, check=False)
    assert proc.returncode == 1
    assert_one_line_error(proc, "'a/b'")


def test_missing_data_and_undefined_superrun_are_one_line(cli, demo_dir):
    data = demo_dir / "dastrax_data"
    assert_one_line_error(cli("info", "_nope", "--storage", data, check=False), "_nope")
    assert_one_line_error(
        cli("info", "0", "records", "--set", "n_chunks=3", "--storage", data, check=False),
        "not stored",
    )


def test_debug_shows_the_traceback(cli, tmp_path):
    with pytest.raises(dastrax.InvalidRunName, match="a/b"):
        cli("info", "a/b", "--debug", "--storage", tmp_path)


def test_usage_errors_are_one_line(cli):
    proc = cli("persist", "_demo", check=False)
    assert proc.returncode == 2
    assert_one_line_error(proc, "--target", "dastrax persist --help")
    assert_one_line_error(cli("frobnicate", check=False), "frobnicate")
    assert_one_line_error(
        cli("make", "0", "-t", "peaks", "--set", "bonus_area", check=False), "OPTION=VALUE"
    )
    assert_one_line_error(cli("define", "_x", check=False), "RUN")


def test_help(tmp_path):
    out = run("--help", cwd=tmp_path).stdout
    assert "dastrax demo" in out
    for cmd in ("demo", "runs", "define", "info", "make", "persist"):
        assert f"  {cmd} " in out
    if importlib.util.find_spec("dastrax.bench") is not None:  # registered when importable
        assert "  bench " in out


def test_version(cli):
    assert cli("--version").stdout.strip() == f"dastrax, version {dastrax.__version__}"


@pytest.mark.parametrize("command", ["demo", "runs", "define", "info", "make", "persist"])
def test_subcommand_help_has_examples_and_common_options(cli, command):
    out = cli(command, "--help").stdout
    assert "Examples:" in out and f"dastrax {command}" in out
    for opt in ("--storage", "--scheduler", "--config", "--set", "--debug"):
        assert opt in out, opt


def test_define_make_and_ranges(cli, tmp_path):
    data = tmp_path / "data"
    st = make_context(data)
    make_runs(st)
    proc = cli("define", "_mid", "1:22-26", "2:40-45", "2:47-49", "--storage", data)
    assert "defined superrun _mid: 2 subruns" in proc.stdout
    doc = st.run_metadata("_mid")
    assert doc["sub_run_spec"] == {"1": [[22, 26]], "2": [[40, 45], [47, 49]]}
    assert doc["livetime"] == pytest.approx(11e-9)

    rows = tmp_path / "events.csv"
    rows.write_text("time,endtime,run_id\n1,3,0\n2,5,0\n41,44,2\n")
    cli("define", "_rows", "--rows", rows, "--storage", data)
    assert st.run_metadata("_rows")["sub_run_spec"] == {"0": [[1, 5]], "2": [[41, 44]]}

    # the library's refusals come out as one line too, and write nothing
    assert_one_line_error(
        cli("define", "_bad", "0", "0:1-2", "--storage", data, check=False), "'0'"
    )
    assert_one_line_error(
        cli("define", "_ov", "1:22-26", "1:25-27", "--storage", data, check=False), "overlap"
    )
    assert_one_line_error(cli("define", "nounderscore", "0", "--storage", data, check=False), "_")
    assert st.list_runs() == ["0", "1", "2", "_mid", "_rows"]

    cli("make", "0", "2", "-t", "peak_classification", "--storage", data, "--no-progress")
    assert st.is_stored("0", "peak_classification") and st.is_stored("2", "peak_classification")
    assert not st.is_stored("1", "peak_classification")

    proc = cli("persist", "_mid", "-t", "peaks", "--storage", data, "--no-progress")
    assert "persisted _mid: 110 rows in 1 chunk " in proc.stdout
    assert np.array_equal(
        st.get_array("_mid", "peaks")["time"],
        np.concatenate([np.arange(22, 26).repeat(10), np.r_[40:45, 47:49].repeat(10)]),
    )


def test_set_changes_plugin_options(cli, tmp_path):
    data = tmp_path / "data"
    cli("make", "0", "-t", "peaks", "--set", "bonus_area=5", "--storage", data, "--no-progress")
    st = make_context(data)
    assert not st.is_stored("0", "peaks")  # other lineage
    st.set_config({"bonus_area": 5})
    assert st.is_stored("0", "peaks")
    assert np.all(st.get_array("0", "peaks")["area"] == 6)


def test_config_file_and_flag_precedence(cli, tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    conf = tmp_path / "my.toml"
    conf.write_text(f'storage = "{a}"\nprogress = false\n[config]\nn_chunks = 2\n')
    cli("make", "0", "-t", "records", "--config", conf)
    st_a = make_context(a)
    st_a.set_config({"n_chunks": 2})
    assert st_a.is_stored("0", "records")

    # --storage overrides the file's storage; the file's plugin options still apply
    cli("make", "1", "-t", "records", "--config", conf, "--storage", b)
    st_b = make_context(b)
    st_b.set_config({"n_chunks": 2})
    assert st_b.is_stored("1", "records") and not st_a.is_stored("1", "records")

    # $DASTRAX_CONFIG names the file when --config is not given
    monkeypatch.setenv("DASTRAX_CONFIG", str(conf))
    cli("make", "2", "-t", "records")
    assert st_a.is_stored("2", "records")
    assert not (tmp_path / "dastrax_data").exists()


def test_config_env_var_in_a_subprocess(tmp_path):
    data = tmp_path / "from_env"
    conf = tmp_path / "env.toml"
    conf.write_text(f'storage = "{data}"\n[config]\nn_chunks = 2\n')
    run("make", "0", "-t", "records", cwd=tmp_path, env={"DASTRAX_CONFIG": str(conf)})
    st = make_context(data)
    st.set_config({"n_chunks": 2})
    assert len(st.get_array("0", "records")) == 20
    assert not (tmp_path / "dastrax_data").exists()


def test_bad_config_file_is_one_line(cli, tmp_path, monkeypatch):
    bad = tmp_path / "bad.toml"
    bad.write_text("scheduler = 'threads'\nstorage = [1, 2]\n")
    assert_one_line_error(cli("runs", "--config", bad, check=False), str(bad), "'storage'")
    assert_one_line_error(
        cli("runs", "--scheduler", "nonsense", check=False), "--scheduler", "nonsense"
    )
    worse = tmp_path / "worse.toml"
    worse.write_text("chunk_target_size_mb = 'huge'\n")
    monkeypatch.setenv("DASTRAX_CONFIG", str(worse))
    assert_one_line_error(cli("runs", check=False), str(worse), "'chunk_target_size_mb'")
    monkeypatch.setenv("DASTRAX_CONFIG", str(tmp_path / "missing.toml"))
    assert_one_line_error(cli("runs", check=False), "missing.toml", "DASTRAX_CONFIG")


def test_local_cluster_prints_its_dashboard(cli, tmp_path):
    data = tmp_path / "data"
    proc = cli(
        "make",
        "0",
        "-t",
        "records",
        "--set",
        "n_chunks=2",
        "--scheduler",
        "local-cluster",
        "--storage",
        data,
        "--no-progress",
    )
    assert "dashboard at http" in proc.stderr
    st = make_context(data)
    st.set_config({"n_chunks": 2})
    assert st.is_stored("0", "records")


# --------------------------------------------------------------------------------------
# a user's first hour (issue 23): advice in flags, options checked, one-line answers
# --------------------------------------------------------------------------------------
def test_errors_advise_flags_not_python(demo_dir):
    proc = run("define", "_demo", "0", "1", cwd=demo_dir, check=False)
    assert_one_line_error(proc, "pass --overwrite to redefine it")
    assert "overwrite=True" not in proc.stderr
    proc = run("persist", "_undefined", "-t", "peaks", cwd=demo_dir, check=False)
    assert_one_line_error(proc, "define it with 'dastrax define _undefined RUN...'")
    assert "st." not in proc.stderr
    proc = run("info", "0", "records", "--set", "n_chunks=3", cwd=demo_dir, check=False)
    assert_one_line_error(proc, "not stored", "ake it with 'dastrax make 0 -t records'")
    assert "--make" not in proc.stderr and "st.make" not in proc.stderr


def test_a_plugin_option_typo_is_an_error(tmp_path):
    data = tmp_path / "data"
    proc = run("make", "0", "-t", "peaks", "--set", "bonus_aera=42", "--storage", data,
               cwd=tmp_path, check=False)  # fmt: skip
    assert_one_line_error(proc, "--set", "'bonus_aera'", "did you mean 'bonus_area'")
    proc = run("make", "0", "-t", "peaks", "--set", "bonus_area=abc", "--storage", data,
               cwd=tmp_path, check=False)  # fmt: skip
    assert_one_line_error(proc, "'bonus_area'", "int or float", "'abc'")
    assert not data.exists()


def test_importing_a_dastrax_folder_says_so_in_one_line(demo_dir, tmp_path):
    proc = run("import", demo_dir / "dastrax_data", "--storage", tmp_path / "x", cwd=tmp_path,
               check=False)  # fmt: skip
    assert_one_line_error(proc, "is dastrax storage already", "--storage")
    assert "FAILED" not in proc.stdout + proc.stderr
