"""Test helpers shipped with dastrax (as ``zarr.testing``): the storage conformance suite.

:class:`FrontendTests` is a pytest test class; subclass it in a test module to check a
storage frontend (see its docstring). Its names are imported on first use, so
``dastrax.testing.plugins`` (the plugins of ``dastrax demo``) works without pytest, as a plain
``pip install dastrax`` has it; ``import dastrax`` does not import pytest either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dastrax.testing.frontend import DTYPE, FrontendTests, reference_rows

__all__ = ["DTYPE", "FrontendTests", "reference_rows"]


def __getattr__(name: str) -> Any:
    """``dastrax.testing.FrontendTests`` and the rest: imported from ``frontend`` (and so
    pytest) only when asked for."""
    if name in __all__:
        from dastrax.testing import frontend

        return getattr(frontend, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
