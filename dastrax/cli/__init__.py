"""The ``dastrax`` command line (click).

:mod:`dastrax.cli.main` holds the group and its commands, :mod:`dastrax.cli.env` the
options shared with the settings table.
"""

from __future__ import annotations

from dastrax.cli.env import with_env
from dastrax.cli.main import cli, main

__all__ = ["cli", "main", "with_env"]
