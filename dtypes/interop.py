"""Mapping tilevm types to and from numpy, ml_dtypes and torch types.

Every ml_dtypes type has a tilevm twin with the same values and encodings (``float6_e3m2fn`` <->
``f6e3m2fn``, ``int4`` <-> ``i4``, ``float8_e4m3b11fnuz`` <-> ``f8e4m3b11fnuz``). Booleans map one
way to ``u1``. torch types map where torch has the same type.
"""

from __future__ import annotations

import sys

import ml_dtypes
import numpy as np

from tilevm.dtypes.datatype import DataType, parse
from tilevm.dtypes.errors import DtypeError, TilevmTypeError

# torch element types whose storage is not one element per value: no tilevm twin.
_TORCH_PACKED = ("float4_e2m1fn_x2", "quint4x2", "quint2x4")


def ml_dtypes_name(dt: DataType) -> str:
    """The numpy / ml_dtypes spelling of ``dt`` (it may not exist there: see ``numpy_dtype``)."""
    if dt.kind != "float":
        return f"{'u' if dt.kind == 'uint' else ''}int{dt.bits}"
    if dt.name in ("f16", "f32", "f64"):
        return f"float{dt.bits}"
    if dt.name == "bf16":
        return "bfloat16"
    return "float" + dt.name[1:].replace("e", "_e", 1)


def numpy_dtype(dt: DataType) -> np.dtype | None:
    """The numpy or ml_dtypes type with the same meaning as ``dt``, or None if neither has one."""
    name = ml_dtypes_name(dt)
    if (
        dt.bits in (8, 16, 32, 64)
        and dt.kind != "float"
        or name in ("float16", "float32", "float64")
    ):
        return np.dtype(name)
    found = getattr(ml_dtypes, name, None)
    return np.dtype(found) if found is not None else None


def from_numpy(np_type: object) -> DataType:
    """The tilevm twin of a numpy or ml_dtypes type (or type object)."""
    try:
        nd = np.dtype(np_type)
    except TypeError as exc:
        raise TilevmTypeError(
            f"{np_type!r} is not a numpy data type",
            expected="a numpy or ml_dtypes dtype",
            found=repr(np_type),
            code="dtype-interop",
        ) from exc
    if nd.kind == "b":
        return parse("u1")
    if nd.kind in "iu":
        return parse(f"{nd.kind}{nd.itemsize * 8}")
    if nd.kind == "f" and nd.itemsize in (2, 4, 8):
        return parse(f"f{nd.itemsize * 8}")
    if nd.type.__module__.startswith("ml_dtypes"):
        return parse(nd.name)
    raise DtypeError(
        f"numpy type {nd} has no tilevm twin",
        expected="a bool, integer or float type of numpy or ml_dtypes",
        found=str(nd),
        code="dtype-interop",
    )


def torch_dtype(dt: DataType):
    """The torch dtype with the same meaning as ``dt``, or None where torch has none."""
    # torch is a heavy, optional import: only pay for it when someone asks for a torch type.
    import torch

    found = getattr(torch, ml_dtypes_name(dt), None)
    return found if isinstance(found, torch.dtype) else None


def from_torch(torch_type: object) -> DataType:
    """The tilevm twin of a torch dtype."""
    name = str(torch_type).removeprefix("torch.")
    if name == "bool":
        return parse("u1")
    if name in _TORCH_PACKED or name.startswith(("complex", "q")):
        raise DtypeError(
            f"torch type {torch_type} has no tilevm twin",
            expected="a real scalar torch dtype (floats, float8, ints, uints)",
            found=str(torch_type),
            hint="packed torch types such as float4_e2m1fn_x2 hold two values per element: "
            "view the storage as uint8 and use tv.unpack",
            code="dtype-interop",
        )
    return parse(name)


def _is_torch_dtype(obj: object) -> bool:
    torch = sys.modules.get("torch")  # a torch dtype can only exist if torch is imported
    return torch is not None and isinstance(obj, torch.dtype)


def as_dtype(obj: object) -> DataType:
    """``tv.dtype``: a DataType from a name, a numpy/ml_dtypes type or a torch dtype."""
    if isinstance(obj, DataType):
        return obj
    if isinstance(obj, str):
        return parse(obj)
    if _is_torch_dtype(obj):
        return from_torch(obj)
    if isinstance(obj, (np.dtype, type)):
        return from_numpy(obj)
    raise TilevmTypeError(
        "cannot make a tilevm dtype from this value",
        expected="a name such as 'f6e3m2fn', a numpy/ml_dtypes dtype, or a torch dtype",
        found=f"{obj!r} of type {type(obj).__name__}",
        code="dtype-interop",
    )
