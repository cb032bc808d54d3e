"""The README's examples run as written, and its settings table is the settings module's.

Every ```python and ```bash block of README.md runs, in the order of the README, in one
fresh directory: the python blocks in one namespace (one process), the bash blocks with
``bash -e`` and the ``dastrax`` of this interpreter's environment first on ``PATH``. A block
preceded by ``<!-- skip-test: reason -->`` is not run (it needs what a test machine lacks);
a block preceded by ``<!-- file: NAME -->`` is written to ``NAME`` (e.g. a configuration file
the next blocks use). The directory holds a copy of the strax fixture as ``./strax_data``,
as a strax user's working directory would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dastrax.config.settings import markdown_table

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
STRAX_DATA = ROOT / "tests" / "data" / "strax-data" / "strax_data"

_FENCE = re.compile(r"^```(\w*)\s*$")
_MARK = re.compile(r"^<!--\s*(skip-test|file):\s*(.*?)\s*-->$")

RUNNER = r"""
import json, subprocess, sys, time, traceback
import __main__

def main():
    blocks = json.load(open(sys.argv[1]))
    ns = __main__.__dict__  # classes defined in blocks pickle as __main__.Name
    t0 = time.perf_counter()
    for b in blocks:
        where = f"README.md line {b['line']} ({b['lang']})"
        print(f"--- {where} at {time.perf_counter() - t0:.1f} s", flush=True)
        if b["file"]:
            with open(b["file"], "w") as f:
                f.write(b["code"])
            continue
        if b["lang"] == "python":
            try:
                exec(compile(b["code"], f"README.md:{b['line']}", "exec"), ns)
            except BaseException:
                traceback.print_exc()
                print(f"FAILED: the block at {where}", flush=True)
                sys.exit(1)
        else:
            proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", b["code"]])
            if proc.returncode != 0:
                print(f"FAILED: the block at {where} (exit {proc.returncode})", flush=True)
                sys.exit(1)
    print("ALL README BLOCKS RAN", flush=True)

if __name__ == "__main__":
    main()
"""


def readme_blocks() -> list[dict]:
    """Every fenced block: language, first line number, code, and its marker (if any)."""
    lines = README.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        lang, start = m[1], i + 1
        j = start
        while not lines[j].startswith("```"):
            j += 1
        prev = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        mark = _MARK.match(prev.strip())
        blocks.append(
            {
                "lang": lang,
                "line": start + 1,
                "code": "\n".join(lines[start:j]) + "\n",
                "skip": mark[2] if mark and mark[1] == "skip-test" else None,
                "file": mark[2] if mark and mark[1] == "file" else None,
            }
        )
        i = j + 1
    return blocks


def test_settings_table_is_the_settings_modules():
    text = README.read_text()
    m = re.search(r"<!-- settings-table -->\n(.*?)\n<!-- /settings-table -->", text, re.S)
    assert m, "README.md has no <!-- settings-table --> ... <!-- /settings-table --> section"
    assert m[1].strip() == markdown_table().strip(), (
        "README's settings table differs from dastrax.config.settings.markdown_table(): paste its "
        "output between the markers"
    )


def test_blocks_are_found_and_few_are_skipped():
    blocks = readme_blocks()
    runnable = [b for b in blocks if b["lang"] in ("python", "bash") and not b["skip"]]
    skipped = [b for b in blocks if b["skip"]]
    assert len(runnable) >= 10, [b["line"] for b in runnable]
    assert {"python", "bash"} <= {b["lang"] for b in runnable}
    assert len(skipped) <= 5, [(b["line"], b["skip"]) for b in skipped]
    assert all(b["skip"] for b in skipped)  # every skip gives its reason
    # the two set-up commands, and nothing else, are skipped for installing
    setup = [b for b in skipped if "pip install" in b["code"]]
    assert len(setup) == 2 and all(b["lang"] == "bash" for b in setup)
    files = [b for b in blocks if b["file"]]
    assert files and all(b["lang"] == "toml" for b in files)


def test_every_code_block_runs_as_written(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(STRAX_DATA, work / "strax_data")
    plan = [
        b
        for b in readme_blocks()
        if not b["skip"] and (b["file"] or b["lang"] in ("python", "bash"))
    ]
    (tmp_path / "blocks.json").write_text(json.dumps(plan))
    (tmp_path / "runner.py").write_text(RUNNER)
    env = {k: v for k, v in os.environ.items() if k not in ("DASTRAX_CONFIG", "DASTRAX_DEBUG")}
    bin_dir = str(Path(sys.executable).parent)
    env.update(
        PATH=os.pathsep.join([bin_dir, env.get("PATH", "")]),
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        MPLBACKEND="Agg",
    )
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "runner.py"), str(tmp_path / "blocks.json")],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "ALL README BLOCKS RAN" in proc.stdout
    # what the blocks say they do, they did
    assert (work / "dastrax_data" / "runs" / "_superrun_test.json").exists()
    assert any(
        p.name.startswith("_superrun_test-peaks-") for p in (work / "dastrax_data").iterdir()
    )
    assert any(p.name.startswith("_kr_fixture-peaks-") for p in (work / "from_strax").iterdir())
    assert "/status" in proc.stdout  # the cluster block printed its dashboard address
    assert "\n100\n" in proc.stdout  # the example CLI command counted run 0's peaks
    assert not [p for p in (work / "dastrax_data").iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize("lang", ["python", "bash"])
def test_skipped_blocks_name_their_reason(lang):
    for b in readme_blocks():
        if b["lang"] == lang and b["skip"] is not None:
            assert len(b["skip"]) > 10, b


def test_the_set_up_commands_install_only_what_each_needs():
    """The demo's command installs dastrax alone; the tests' adds the test tools and works
    on a fresh machine as written (it creates the environment too). Issue 23."""
    setup = [
        b["code"].strip()
        for b in readme_blocks()
        if b["skip"] and b["lang"] == "bash" and "pip install" in b["code"]
    ]
    demo, tests = setup
    assert (
        demo == "python3.12 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/dastrax demo"
    )
    assert tests.startswith("python3.12 -m venv .venv && ")
    assert "pip install -e '.[test]'" in tests and tests.endswith(".venv/bin/pytest")
    text = README.read_text()
    assert "sphinx-build -W -b html docs docs/_build/html" in text  # the docs, one command


def test_the_command_table_lists_every_command():
    from dastrax.cli.main import cli

    text = README.read_text()
    table = text.split("| command | does |")[1].split("\n\n")[0]
    listed = set(re.findall(r"^\| `dastrax (\w+)", table, re.M))
    assert listed == set(cli.list_commands(None))


def test_the_cluster_block_runs_as_a_script():
    block = next(b for b in readme_blocks() if "LocalCluster(" in b["code"] and not b["skip"])
    assert 'if __name__ == "__main__":' in block["code"]
    assert block["code"].index("__main__") < block["code"].index("LocalCluster(n_workers")
    # and the strax section says where ./strax_data comes from
    strax = README.read_text().split("## Reading strax data")[1]
    assert "tests/data/strax-data/strax_data" in strax.split("```")[0]


def test_the_subrun_idiom_keeps_times_exact():
    """The README and the documentation's notebooks select a subrun with ``ds.sel(subrun=k)``,
    which keeps int64 times (``ds.where(ds.subrun == k)`` made them float64, off by up to
    115 ns: issue 23); the README's block that shows it asserts the dtype."""
    code = [b["code"] for b in readme_blocks() if b["lang"] == "python"]
    for page in sorted((ROOT / "docs").rglob("*.md")):
        code += re.findall(r"^```\{code-cell\}.*?\n(.*?)^```", page.read_text(), re.M | re.S)
    assert len(code) > 20
    for text in code:
        assert not re.search(r"\.where\(\s*\w+\.subrun\b", text), text
    shown = [b["code"] for b in readme_blocks() if "sel(subrun=" in b["code"] and not b["skip"]]
    assert any('.time.dtype == "int64"' in c for c in shown), shown


def test_the_test_command_runs_two_processes_in_ci_as_in_the_readme():
    """The README's test command is CI's, and both run the suite in two processes: ``-n 2`` in
    pyproject's addopts, with pytest-xdist among the test tools."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    addopts = project["tool"]["pytest"]["ini_options"]["addopts"].split()
    assert addopts[addopts.index("-n") + 1] == "2"
    assert any(
        d.startswith("pytest-xdist") for d in project["project"]["optional-dependencies"]["test"]
    )
    assert "`-n 2`" in README.read_text().split("## A short tour")[0]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^\.venv/bin/pytest -q$", ci, re.M)
    assert "pip install -q -e '.[test]'" in ci
