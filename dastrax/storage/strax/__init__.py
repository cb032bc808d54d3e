"""strax's own data directories, read-only."""

from __future__ import annotations

from dastrax.storage.strax.directory import StraxDirectory, StraxGroup

__all__ = ["StraxDirectory", "StraxGroup"]
