"""tilevm data types: integers of any width 1..64, floats of any exponent/mantissa split.

``dtype(name)`` parses a name; ``int_type`` and ``float_type`` build any width; the common types
are attributes (``i4``, ``u8``, ``f16``, ``bf16``, ``f8e4m3fn``, ...), and any other valid name
works as an attribute too (``tilevm.dtypes.f5e2m2``).
"""

from __future__ import annotations

from tilevm.dtypes.convert import OVERFLOW_POLICIES, decode, encode, value_table
from tilevm.dtypes.datatype import DataType, float_type, int_type, parse
from tilevm.dtypes.errors import (
    DtypeError,
    SourceLocation,
    TilevmError,
    TilevmTypeError,
    TilevmValueError,
)
from tilevm.dtypes.interop import (
    as_dtype as dtype,
)
from tilevm.dtypes.interop import (
    from_numpy,
    from_torch,
    ml_dtypes_name,
)
from tilevm.dtypes.interop import (
    numpy_dtype as to_numpy,
)
from tilevm.dtypes.interop import (
    torch_dtype as to_torch,
)
from tilevm.dtypes.packing import pack, pack_codes, unpack, unpack_codes

# Named types: every integer width, the IEEE floats, and the ml_dtypes families.
_NAMED = (
    [f"i{b}" for b in range(1, 65)]
    + [f"u{b}" for b in range(1, 65)]
    + ["f16", "bf16", "f32", "f64"]
    + ["f8e4m3fn", "f8e5m2", "f8e4m3", "f8e3m4", "f8e4m3fnuz", "f8e5m2fnuz", "f8e4m3b11fnuz"]
    + ["f8e8m0fnu", "f6e3m2fn", "f6e2m3fn", "f4e2m1fn", "f6e3m2", "f5e2m2", "f3e1m1"]
)
globals().update({name: parse(name) for name in _NAMED})


def __getattr__(name: str) -> DataType:
    """Any valid dtype name is an attribute: ``tilevm.dtypes.f7e3m3fn``."""
    try:
        return parse(name)
    except DtypeError:
        raise AttributeError(f"module 'tilevm.dtypes' has no attribute {name!r}") from None


__all__ = [
    "OVERFLOW_POLICIES",
    "DataType",
    "DtypeError",
    "SourceLocation",
    "TilevmError",
    "TilevmTypeError",
    "TilevmValueError",
    "decode",
    "dtype",
    "encode",
    "float_type",
    "from_numpy",
    "from_torch",
    "int_type",
    "ml_dtypes_name",
    "pack",
    "pack_codes",
    "parse",
    "to_numpy",
    "to_torch",
    "unpack",
    "unpack_codes",
    "value_table",
    *_NAMED,
]
