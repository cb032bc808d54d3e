"""Sphinx configuration of dastrax's documentation site.

Build it with ``sphinx-build -W -b html docs docs/_build/html`` (after
``pip install -e '.[docs]'``): the notebooks under ``tutorials/`` and ``getting-started``
run at build time (myst-nb), the API reference comes from the docstrings (autodoc +
numpydoc), and the settings table from :data:`dastrax.settings.SETTINGS`.
"""

from __future__ import annotations

from pathlib import Path

import dastrax
from dastrax.config.settings import markdown_table

HERE = Path(__file__).resolve().parent

project = "dastrax"
author = "the dastrax developers"
copyright = "2026, the dastrax developers"  # noqa: A001 - Sphinx's name
release = version = dastrax.__version__

extensions = [
    "myst_nb",
    "numpydoc",
    "sphinx.ext.autodoc",
]

exclude_patterns = ["_build", "_generated", "**/.ipynb_checkpoints", "**/dastrax_data", "**/*_data"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}

# -- the notebooks: executed at every build; a failing cell fails the build ------------
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_timeout = 300
nb_output_stderr = "warn"  # anything a cell writes to stderr (a warning) fails a -W build
nb_merge_streams = True
myst_enable_extensions = ["colon_fence"]

# -- the API reference ------------------------------------------------------------------
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- the site -----------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"dastrax {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path: list[str] = []


def _write_settings_table(_app) -> None:
    """``settings-table.md``: the table of every setting, from the settings module (the
    README's is checked against the same function)."""
    out = HERE / "_generated"
    out.mkdir(exist_ok=True)
    text = markdown_table().strip() + "\n"
    target = out / "settings-table.md"
    if not target.exists() or target.read_text() != text:
        target.write_text(text)


def setup(app):
    app.connect("builder-inited", _write_settings_table)
