"""tilevm: tile-level GPU kernels in Python, at any precision, for every vendor.

The data types of ``tilevm.dtypes`` are re-exported here (``tv.dtype``, ``tv.i3``, ``tv.f16``,
``tv.pack``, ...), and the layout algebra is ``tv.layouts``.
"""

from __future__ import annotations

from tilevm import dtypes, layouts
from tilevm.autotune import Autotuner, Config, autotune
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
from tilevm.errors import (
    CompileError,
    DeviceError,
    InlineDepthError,
    KernelAttributeError,
    KernelTypeError,
    KernelValueError,
    LaunchError,
    LaunchTypeError,
    ShapeError,
    UnsupportedSyntaxError,
)
from tilevm.kernel import Func, Kernel, func, kernel
from tilevm.language import BUILTINS as _BUILTINS
from tilevm.language import Tensor, constexpr
from tilevm.layouts import LayoutDivisionError, LayoutError
from tilevm.runtime.arrays import PackedArray
from tilevm.runtime.backend import DeviceProperties
from tilevm.runtime.devices import device_properties, devices

__version__ = "0.1.0"

globals().update({name: getattr(dtypes, name) for name in _DTYPE_NAMES})
# The kernel language: tv.load, tv.store, tv.sum, tv.range, ... (tv.sum and friends shadow the
# Python builtins only inside this namespace).
globals().update(_BUILTINS)


def __getattr__(name: str) -> DataType:
    """Any valid dtype name is an attribute: ``tv.f7e3m3fn``, ``tv.u13``."""
    try:
        return dtypes.parse(name)
    except DtypeError:
        raise AttributeError(f"module 'tilevm' has no attribute {name!r}") from None


__all__ = [
    "Autotuner",
    "CompileError",
    "Config",
    "DeviceError",
    "InlineDepthError",
    "KernelAttributeError",
    "KernelValueError",
    "Func",
    "Kernel",
    "KernelTypeError",
    "LaunchError",
    "LaunchTypeError",
    "PackedArray",
    "ShapeError",
    "Tensor",
    "UnsupportedSyntaxError",
    "autotune",
    "constexpr",
    "DeviceProperties",
    "device_properties",
    "devices",
    "func",
    "kernel",
    *_BUILTINS,
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
