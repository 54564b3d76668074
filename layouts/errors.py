"""Errors of the layout algebra (all are ``tilevm.TilevmError`` and ``ValueError``)."""

from __future__ import annotations

# The one root error class lives in the lowest layer so every layer raises the same family.
from tilevm.dtypes.errors import TilevmValueError


class LayoutError(TilevmValueError):
    """Bad arguments to a layout constructor or operation (shapes, ranks, sizes)."""

    code = "layout"


class LayoutDivisionError(LayoutError):
    """``h / g`` has no solution ``f`` with ``f * g == h``."""

    code = "layout-divide"
