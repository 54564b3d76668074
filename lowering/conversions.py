"""``x.to(dst)`` on compute values, rounded once.

A float narrower than f32 is computed in f32 and each result rounded to its type (``Encode``).
Converting to it a value f32 does not hold exactly -- an f64, an integer past 2**24 -- through a
plain f32 would round twice, and a tie of the narrow type made by the first rounding then goes
the wrong way (``1 + 2**-8 + 2**-30`` as bf16 would be 1.0, not ``1 + 2**-7``). Such values are
rounded to odd into f32 instead (``to_f32_odd``, a helper of every backend): f32 has at least two
mantissa bits more than any narrower float, so the final rounding of that odd-rounded value is
the value rounded once. Conversions f32 holds exactly, and those to f32 and f64 themselves (one
native conversion), stay as they are.

Below ``2**-149`` f32 holds no bits; a type whose lowest weight is under ``2**-147`` (a large
bias) leaves the odd rounding fewer than two bits there. An f64 then goes through the type's
*twin*, the same codes with a bias ``s`` smaller (every value times ``2**s``): the f64 is
scaled by ``2**s`` (exact), rounded to odd and encoded as the twin, and the twin's value scaled
back by ``2**-s`` is a value of the type (exact), which the final rounding keeps.
"""

from __future__ import annotations

import math

from tilevm import dtypes as dts
from tilevm.dtypes import DataType
from tilevm.lowering import thread_ir as t
from tilevm.lowering.exprs import compute_type

F32_MANTISSA = 23
LOWEST_ODD_WEIGHT = -147  # two bits above f32's lowest, 2**-149


def convert_value(value: t.Expr, src: DataType, dst: DataType) -> t.Expr:
    """``x.to(dst)`` on a compute value of ``src``: floats to ints truncate and saturate (NaN
    becomes 0); to floats, a value that the final encode rounds once; else a plain conversion
    (integers wrapped by the final encode)."""
    ct = compute_type(dst)
    if src.is_float and dst.is_integer:
        return t.Call("f2i", (value,), dst)
    if dst.is_float and rounds_twice_through_f32(src, dst):
        return _odd_f32(value, src, dst)
    if compute_type(src) == ct:
        return value
    return t.Convert(value, ct)


def rounds_twice_through_f32(src: DataType, dst: DataType) -> bool:
    """Whether ``src -> f32 -> dst`` may differ from ``src -> dst``: the first rounding is
    inexact for some value that ``dst`` neither holds exactly nor sends to its overflow."""
    if dst.bits > 16:  # f32 and f64: one native conversion
        return False
    if src.is_float:
        return src.mantissa > F32_MANTISSA  # f64 (the others are exact in f32)
    magnitude = src.bits - (1 if src.kind == "int" else 0)  # bits of the largest magnitude
    # integers past 2**24 are inexact in f32; they all overflow a type whose range ends below
    return magnitude > F32_MANTISSA + 1 and float(dst.max) >= 2.0 ** (F32_MANTISSA + 1)


def _odd_f32(value: t.Expr, src: DataType, dst: DataType) -> t.Expr:
    """``value`` rounded to odd into f32 (a value of ``dst`` where ``dst`` needs its twin)."""
    if src.is_integer:  # as a 64-bit integer, the helpers' argument
        wide = dts.i64 if src.kind == "int" else dts.u64
        return t.Call("to_f32_odd", (t.Convert(value, wide),), dts.f32)
    twin, shift = _twin(dst)
    if twin is None:
        return t.Call("to_f32_odd", (value,), dts.f32)
    scaled = t.Bin("mul", value, t.Const(2.0**shift, dts.f64), dts.f64)
    code = t.Encode(t.Call("to_f32_odd", (scaled,), dts.f32), twin)
    return t.Bin("mul", t.Decode(code, dts.f32), t.Const(2.0**-shift, dts.f32), dts.f32)


def _twin(dst: DataType) -> tuple[DataType | None, int]:
    """``dst`` with its values times ``2**shift`` (the bias ``shift`` smaller), where ``dst``'s
    lowest weight is below ``2**-147``; else ``(None, 0)``."""
    lowest = int(math.log2(dst.smallest_subnormal))  # a power of two
    if lowest >= LOWEST_ODD_WEIGHT:
        return None, 0
    shift = LOWEST_ODD_WEIGHT - lowest
    twin = dts.float_type(dst.exponent, dst.mantissa, dst.variant, dst.bias - shift)
    return twin, shift
