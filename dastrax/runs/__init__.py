"""Runs and superruns: run documents, superrun definitions and the catalog of run documents.

``dastrax.runs`` keeps the names of the run-document module it was before it became a
package (:mod:`dastrax.runs.documents`).
"""

from __future__ import annotations

from dastrax.runs.documents import (
    complete_document,
    normalize_document,
    read_document,
    select_table,
    to_ns,
)

__all__ = ["complete_document", "normalize_document", "read_document", "select_table", "to_ns"]
