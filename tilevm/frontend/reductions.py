"""Instructions that accumulate: ``tv.sum`` and ``tv.dot``, and their one accumulation rule.

Every executor keeps partial sums in the *accumulator dtype*: the result's dtype widened to
the type its arithmetic runs in (f32 for floats of 32 bits or less, f64 for f64; i32, u32,
i64 or u64 for integers), and rounds each partial sum to it; the result is rounded once more,
to the result's dtype. ``dtype=`` (or the dtype of ``dot``'s ``acc``) picks the result, and so
the accumulator: ``tv.sum(x, 1, dtype=tv.f64)`` sums f32 values in float64.
"""

from __future__ import annotations

from typing import Any

from tilevm import dtypes as dts
from tilevm.dtypes import DataType
from tilevm.errors import KernelTypeError
from tilevm.frontend.builder import Builder, describe
from tilevm.frontend.ops import full
from tilevm.ir.nodes import Var
from tilevm.ir.types import ScalarType, TileType


def _result_dtype(b: Builder, inputs: DataType, dtype: Any, what: str) -> DataType:
    """``dtype=`` of a sum or dot of ``inputs``: a float for float inputs, an integer for
    integer inputs (a conversion between the two is the kernel's to write, where it wants it)."""
    if not isinstance(dtype, DataType):
        raise b.type_error(
            f"{what}'s dtype= must be a dtype",
            expected="a dtype such as tv.f32 or tv.f64",
            found=describe(dtype),
        )
    if dtype.is_float != inputs.is_float:
        kind = "a float" if inputs.is_float else "an integer"
        raise KernelTypeError(
            f"{what} of {inputs} values into {dtype}",
            expected=f"{kind} dtype (the inputs are {inputs})",
            found=str(dtype),
            hint=f"convert the inputs first: x.to(tv.{dtype}), then {what}",
            location=b.loc,
            code="accumulator-dtype",
        )
    return dtype


def reduce(b: Builder, op: str, x: Any, axis: Any, keepdims: bool, dtype: Any = None) -> Any:
    x = b.require_tile(x, f"tv.{op}")
    shape = x.type.shape
    out_dtype = x.type.dtype
    if dtype is not None:
        if op != "sum":  # a maximum is one of the inputs: there is nothing to accumulate
            raise b.type_error(
                f"tv.{op} takes no dtype=",
                expected=f"tv.{op}(x, axis, keepdims)",
                found=f"dtype={describe(dtype)}",
                hint=f"convert the result instead: tv.{op}(x, axis).to(dtype)",
            )
        out_dtype = _result_dtype(b, x.type.dtype, dtype, "tv.sum")
    axes = (
        list(range(len(shape))) if axis is None else [axis] if isinstance(axis, int) else list(axis)
    )
    norm = []
    for a in axes:
        if not isinstance(a, int) or not -len(shape) <= a < len(shape):
            raise b.shape_error(
                f"bad axis for tv.{op}",
                expected=f"an int in [-{len(shape)}, {len(shape)})",
                found=repr(a),
            )
        norm.append(a % len(shape))
    if keepdims:
        out_shape = tuple(1 if d in norm else n for d, n in enumerate(shape))
    else:
        out_shape = tuple(n for d, n in enumerate(shape) if d not in norm)
    out_type = ScalarType(out_dtype) if not out_shape else TileType(out_dtype, out_shape)
    return b.instr(
        "reduce", out_type, [x], name=op, op=op, axes=tuple(sorted(norm)), keepdims=keepdims
    )


def dot(b: Builder, a: Any, c: Any, acc: Any, dtype: Any = None) -> Var:
    a, c = b.require_tile(a, "tv.dot"), b.require_tile(c, "tv.dot")
    shape = _dot_shape(b, a.type.shape, c.type.shape)
    if a.type.dtype != c.type.dtype:
        raise b.type_error(
            "tv.dot operands differ in dtype",
            expected="one dtype",
            found=f"{a.type.dtype}, {c.type.dtype}",
        )
    if acc is None:
        default = dts.f32 if a.type.dtype.is_float else dts.i32
        acc_dtype = default if dtype is None else _result_dtype(b, a.type.dtype, dtype, "tv.dot")
        acc = full(b, shape, 0, acc_dtype)
    acc = b.require_tile(acc, "tv.dot accumulator")
    _result_dtype(b, a.type.dtype, acc.type.dtype, "tv.dot")
    if dtype is not None and dtype != acc.type.dtype:
        raise b.type_error(
            "tv.dot's dtype= differs from its accumulator's",
            expected=f"dtype={acc.type.dtype} (acc's dtype), or no dtype=",
            found=f"dtype={describe(dtype)}",
            hint="the accumulator's dtype is the result's: convert acc, or leave dtype= out",
        )
    if acc.type.shape != shape:
        raise b.shape_error(
            "tv.dot accumulator shape",
            expected=f"{list(shape)} ([*B, M, N] of a [*B, M, K] and b [*B, K, N])",
            found=str(list(acc.type.shape)),
        )
    return b.instr("dot", TileType(acc.type.dtype, shape), [a, c, acc], name="acc")


def _dot_shape(b: Builder, a: tuple[int, ...], c: tuple[int, ...]) -> tuple[int, ...]:
    """``[*B, M, K] @ [*B, K, N] -> [*B, M, N]``; the batch dimensions ``B`` must be equal (they
    are not broadcast: a broadcast operand would be copied per batch element in registers)."""
    found = f"{list(a)} and {list(c)}"
    if len(a) < 2 or len(c) < 2:
        raise b.shape_error(
            "tv.dot multiplies [*B, M, K] by [*B, K, N]",
            expected="two tiles of rank 2 or more",
            found=found,
            hint="a vector is a [1, K] or [K, 1] tile: x[None, :] or x[:, None]",
        )
    if a[:-2] != c[:-2]:
        raise b.shape_error(
            "tv.dot operands differ in their batch dimensions",
            expected=f"b's leading (batch) dimensions equal to a's, {list(a[:-2])}",
            found=found,
            hint="batch dimensions are not broadcast: load or reshape both operands to one batch",
        )
    if a[-1] != c[-2]:
        raise b.shape_error(
            "tv.dot inner dimensions differ",
            expected=f"b's K (dimension {len(c) - 2}) equal to a's last dimension, {a[-1]}",
            found=found,
            hint="tv.dot(a, b) contracts a's last dimension with b's second to last",
        )
    return (*a[:-1], c[-1])
