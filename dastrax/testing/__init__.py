"""Test helpers shipped with dastrax (as ``zarr.testing``): the storage conformance suite.

:class:`FrontendTests` is a pytest test class; subclass it in a test module to check a
storage frontend (see its docstring). This package imports pytest; ``import dastrax``
does not import it.
"""

from __future__ import annotations

from dastrax.testing.frontend import DTYPE, FrontendTests, reference_rows

__all__ = ["DTYPE", "FrontendTests", "reference_rows"]
