"""tilevm: tile-level GPU kernels in Python, at any precision, for every vendor.

The data types of ``tilevm.dtypes`` are re-exported here (``tv.dtype``, ``tv.i3``, ``tv.f16``,
``tv.pack``, ...), and the layout algebra is ``tv.layouts``.
"""

from __future__ import annotations

from tilevm import dtypes, layouts
from tilevm.dtypes import _NAMED as _DTYPE_NAMES
from tilevm.dtypes import (
    DataType,
    DtypeError,
    SourceLocation,
    TilevmError,
    TilevmTypeError,
    TilevmValueError,
    dtype,
    float_type,
    int_type,
    pack,
    unpack,
)
from tilevm.layouts import LayoutDivisionError, LayoutError

__version__ = "0.1.0"

globals().update({name: getattr(dtypes, name) for name in _DTYPE_NAMES})


def __getattr__(name: str) -> DataType:
    """Any valid dtype name is an attribute: ``tv.f7e3m3fn``, ``tv.u13``."""
    try:
        return dtypes.parse(name)
    except DtypeError:
        raise AttributeError(f"module 'tilevm' has no attribute {name!r}") from None


__all__ = [
    "DataType",
    "DtypeError",
    "LayoutDivisionError",
    "LayoutError",
    "SourceLocation",
    "TilevmError",
    "TilevmTypeError",
    "TilevmValueError",
    "dtype",
    "dtypes",
    "float_type",
    "int_type",
    "layouts",
    "pack",
    "unpack",
    *_DTYPE_NAMES,
]
