"""The documentation site's sources (issue 23): Sphinx with pydata-sphinx-theme, numpydoc and
myst-nb; the tutorials are notebooks executed at build time; the API reference comes from the
docstrings; CI builds it with warnings as errors. (The build itself runs in ``.ci/run``.)"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def test_the_site_is_configured_to_execute_and_to_fail_on_errors():
    conf = (DOCS / "conf.py").read_text()
    for ext in ("myst_nb", "numpydoc", "sphinx.ext.autodoc"):
        assert f'"{ext}"' in conf
    assert 'html_theme = "pydata_sphinx_theme"' in conf
    assert 'nb_execution_mode = "force"' in conf and "nb_execution_raise_on_error = True" in conf
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    docs = " ".join(extra["optional-dependencies"]["docs"])
    for pkg in ("sphinx", "pydata-sphinx-theme", "numpydoc", "myst-nb", "ipykernel"):
        assert pkg in docs
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -q -e '.[docs]'" in ci
    assert re.search(r"sphinx-build -W .*-b html docs docs/_build/html", ci)


def test_the_pages_are_there_and_in_the_toctree():
    index = (DOCS / "index.md").read_text()
    pages = [
        "getting-started",
        "tutorials/strax-superrun-tutorial",
        "tutorials/minimum-bias",
        "guides/cluster",
        "guides/object-stores",
        "settings",
        "api",
    ]
    for page in pages:
        assert (DOCS / f"{page}.md").is_file(), page
        assert page in index, page
    for notebook in (
        "getting-started",
        "tutorials/strax-superrun-tutorial",
        "tutorials/minimum-bias",
    ):
        text = (DOCS / f"{notebook}.md").read_text()
        assert text.startswith("---\nfile_format: mystnb") and text.count("```{code-cell}") >= 5
    assert "_generated/settings-table.md" in (DOCS / "settings.md").read_text()
    api = (DOCS / "api.md").read_text()
    for obj in ("dastrax.Context", "dastrax.Plugin", "dastrax.StorageFrontend", "dastrax.errors"):
        assert obj in api
    assert "sphinx-build -W -b html docs docs/_build/html" in (ROOT / "README.md").read_text()
