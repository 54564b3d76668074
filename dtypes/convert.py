"""Host conversions between numpy values and tilevm bit patterns.

``encode`` rounds to nearest, ties to even (ties away from zero for the ``fnu`` scale types, as
ml_dtypes does for ``float8_e8m0fnu``). What happens to values beyond the largest finite value is
the ``overflow`` policy:

===========  =================================================================================
policy       meaning
===========  =================================================================================
default      floats: +-inf where the type has infinities, else NaN where it has NaN, else the
             largest finite value (the ml_dtypes conventions). Integers: saturate.
saturate     clamp to the type's finite range (infinite inputs too; NaN stays NaN).
wrap         integers only: keep the low ``bits`` bits of the two's-complement value.
error        raise ``DtypeError`` naming the first value out of range.
===========  =================================================================================

NaN becomes the type's NaN (keeping the sign where the type has signed NaNs). A type without NaN
encodes NaN as +0 (ml_dtypes writes a signed zero there); integers encode NaN as 0. Unsigned
floats encode negative values as NaN; the zero-less ``f8e8m0fnu`` encodes 0 as NaN and every
positive value below its smallest as that smallest value. Integer inputs are rounded once, as
the float inputs are: float64 holds them exactly up to 2**53, and beyond that they keep a sticky
bit (see ``_integers_as_float64``). Work is done in chunks of vectorized numpy code.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from tilevm.dtypes.errors import DtypeError

if TYPE_CHECKING:  # DataType's methods call into this module
    from tilevm.dtypes.datatype import DataType

OVERFLOW_POLICIES = ("default", "saturate", "wrap", "error")
_CHUNK = 1 << 20


def encode(dt: DataType, values: object, overflow: str = "default") -> np.ndarray:
    """Values (float or integer array-like) -> bit patterns of ``dt`` in ``dt.storage``."""
    _check_policy(dt, overflow)
    x = _as_numeric_array(values, dt)
    if dt.is_integer:
        return _chunked(x, dt.storage, lambda c: _encode_int(dt, c, overflow))
    if x.dtype.kind in "iu":
        x = _integers_as_float64(x, dt)
    if dt.is_wide_float:
        return _encode_wide_float(dt, x, overflow)
    x = x.astype(np.float64, copy=False)
    return _chunked(x, dt.storage, lambda c: _encode_small_float(dt, c, overflow))


def decode(dt: DataType, bits: object) -> np.ndarray:
    """Bit patterns -> values in ``dt.value_dtype`` (exact)."""
    codes = check_codes(dt, bits)
    if dt.kind == "int":
        wide = codes.astype(np.int64) if dt.bits < 64 else codes.view(np.int64)
        if dt.bits < 64:
            wide = np.where(wide >= (1 << (dt.bits - 1)), wide - (1 << dt.bits), wide)
        return wide
    if dt.kind == "uint":
        return codes.astype(dt.value_dtype)
    if dt.is_wide_float:
        return codes.view(np.float32 if dt.bits == 32 else np.float64).copy()
    return value_table(dt)[codes]


def check_codes(dt: DataType, bits: object) -> np.ndarray:
    """Validate an array of bit patterns and return it as ``dt.storage``."""
    arr = np.asarray(bits)
    if arr.dtype.kind not in "ui" and arr.size:
        raise DtypeError(
            f"bit patterns of {dt} must be an integer array",
            expected=f"unsigned integers below 2**{dt.bits}",
            found=f"an array of {arr.dtype}",
            hint=f"to convert values use {dt}.encode(values) or tv.pack(values, {dt})",
            code="dtype-bits",
        )
    if arr.size and (arr.min() < 0 or int(arr.max()) >= (1 << dt.bits)):
        bad = int(arr.min()) if arr.min() < 0 else int(arr.max())
        raise DtypeError(
            f"bit pattern {bad} does not fit in {dt.bits} bits",
            expected=f"0 <= pattern < 2**{dt.bits} for {dt}",
            found=str(bad),
            hint="pass the patterns of this dtype, or values with bits=False",
            code="dtype-bits",
        )
    return arr.astype(dt.storage, copy=False)


@cache
def value_table(dt: DataType) -> np.ndarray:
    """The value of every bit pattern of a float type of up to 16 bits (read-only)."""
    codes = np.arange(1 << dt.bits, dtype=np.int64)
    magnitude_bits = dt.exponent + dt.mantissa
    mag = codes & ((1 << magnitude_bits) - 1)
    field, man = mag >> dt.mantissa, mag & ((1 << dt.mantissa) - 1)
    with np.errstate(over="ignore"):  # inf/NaN fields of wide-exponent types; replaced below
        normal = np.ldexp(
            (man + (1 << dt.mantissa)).astype(np.float64), field - dt.bias - dt.mantissa
        )
    subnormal = np.ldexp(man.astype(np.float64), 1 - dt.bias - dt.mantissa)
    values = np.where((field == 0) & dt.has_subnormals, subnormal, normal)
    if dt.inf_code is not None:
        values[mag == dt.inf_code] = np.inf
    values[list(dt.nan_codes)] = np.nan
    if dt.is_signed:  # the sign bit applies to NaN and zero too, as in ml_dtypes
        values = np.where(codes >> magnitude_bits, -values, values)
    table = values.astype(dt.value_dtype)
    table.flags.writeable = False
    return table


# ----- helpers --------------------------------------------------------------------------------


def _check_policy(dt: DataType, overflow: str) -> None:
    allowed = OVERFLOW_POLICIES if dt.is_integer else ("default", "saturate", "error")
    if overflow not in allowed:
        raise DtypeError(
            f"unknown overflow policy {overflow!r} for {dt}",
            expected=" | ".join(repr(p) for p in allowed),
            found=repr(overflow),
            hint="'wrap' applies to integer types only",
            code="dtype-overflow-policy",
        )


def _as_numeric_array(values: object, dt: DataType) -> np.ndarray:
    x = np.asarray(values)
    if x.dtype.kind == "b":
        return x.astype(np.int64)
    if x.dtype.kind in "iuf":
        return x
    if x.dtype.kind == "V" or x.dtype.type.__module__.startswith("ml_dtypes"):
        return x.astype(np.float64)  # ml_dtypes scalars (float8, int4, ...) widen exactly
    raise DtypeError(
        f"cannot encode an array of {x.dtype} as {dt}",
        expected="real numbers (a float, int or bool array, or an ml_dtypes array)",
        found=str(x.dtype),
        code="dtype-encode-input",
    )


def _integers_as_float64(x: np.ndarray, dt: DataType) -> np.ndarray:
    """Integers as float64 values whose rounding to ``dt`` is the integers' own. f64 takes them
    rounded to nearest. For narrower types, an integer past 2**53 keeps its bits from 2**11 up
    and turns bit 11 on where any lower bit was on (rounded to odd at 2**11): float64 holds that
    exactly, and it lies on the same side of every point of a 2**12 grid as the integer, so of
    every tie of a type of up to 41 bits of precision there (converting through a rounded float64
    would round twice: 2**60 + 2**36 + 1 to f32 gave 2**60, not 2**60 + 2**37)."""
    if dt.mantissa >= 52 or x.dtype.itemsize < 8:
        return x.astype(np.float64)
    negative = x < 0
    bits = x.astype(np.uint64)
    magnitude = np.where(negative, np.uint64(0) - bits, bits)  # |int64 min| is 2**63: fine
    low = np.uint64(0x7FF)
    odd = (magnitude & ~low) | np.where(magnitude & low, np.uint64(0x800), np.uint64(0))
    wide = magnitude >= np.uint64(1 << 53)
    values = np.where(wide, odd, magnitude).astype(np.float64)
    return np.where(negative, -values, values)


def _chunked(x: np.ndarray, out_dtype: np.dtype, fn) -> np.ndarray:
    """Apply ``fn`` to cache-sized pieces of ``x``; the temporaries stay small for huge arrays."""
    flat = x.reshape(-1)
    out = np.empty(flat.shape, dtype=out_dtype)
    for start in range(0, flat.size, _CHUNK):
        out[start : start + _CHUNK] = fn(flat[start : start + _CHUNK])
    return out.reshape(x.shape)


def _overflow_error(dt: DataType, values: np.ndarray, bad: np.ndarray) -> DtypeError:
    first = int(np.flatnonzero(bad)[0])
    return DtypeError(
        f"value out of range for {dt}",
        expected=f"values in [{dt.min}, {dt.max}]",
        found=f"{values[first]!r} at flat index {first}",
        hint="use overflow='saturate' to clamp" + (" or 'wrap'" if dt.is_integer else ""),
        code="dtype-overflow",
    )


def _encode_int(dt: DataType, x: np.ndarray, overflow: str) -> np.ndarray:
    mask = (1 << dt.bits) - 1
    if x.dtype.kind == "f":
        nan = np.isnan(x)
        x = np.rint(np.where(nan, 0.0, x))
        if overflow == "error" and nan.any():
            raise _overflow_error(dt, np.where(nan, np.nan, x), nan)
        low, high = float(dt.min), float(dt.max) + 1.0  # high is a power of two: exact
        bad = (x < low) | (x >= high)
        if overflow == "wrap":
            return np.mod(x, float(mask + 1)).astype(np.uint64).astype(dt.storage)
        if overflow == "error" and bad.any():
            raise _overflow_error(dt, x, bad)
        x = np.where(x < low, low, x)
        over = x >= high
        ints = np.where(over, 0, x).astype(np.uint64 if dt.kind == "uint" else np.int64)
        ints = np.where(over, dt.max, ints)
    else:
        ints = x
        bad = (x < dt.min) | (x > dt.max)
        if overflow == "wrap":
            return (x.astype(np.uint64) & np.uint64(mask)).astype(dt.storage)
        if overflow == "error" and bad.any():
            raise _overflow_error(dt, x, bad)
        ints = np.clip(
            x, max(dt.min, int(np.iinfo(x.dtype).min)), min(dt.max, int(np.iinfo(x.dtype).max))
        )
    return (ints.astype(np.uint64) & np.uint64(mask)).astype(dt.storage)


def _encode_wide_float(dt: DataType, x: np.ndarray, overflow: str) -> np.ndarray:
    x = x.astype(np.float64, copy=False)
    if overflow != "default":
        finite_max = float(dt.max)
        # Overflow starts half an ulp above the largest value (a tie rounds up: its mantissa is
        # odd); for f64 inputs that is exactly the infinities.
        half_ulp = np.ldexp(1.0, (dt.max_code >> dt.mantissa) - dt.bias - dt.mantissa - 1)
        with np.errstate(invalid="ignore"):
            bad = np.abs(x) >= finite_max + half_ulp if dt.bits == 32 else np.isinf(x)
        if overflow == "error" and bad.any():
            raise _overflow_error(dt, x, bad)
        x = np.where(bad, np.copysign(finite_max, x), x)
    target = np.float32 if dt.bits == 32 else np.float64
    with np.errstate(over="ignore"):
        return x.astype(target).view(dt.storage)


def _encode_small_float(dt: DataType, x: np.ndarray, overflow: str) -> np.ndarray:
    m, emin = dt.mantissa, dt.min_exponent
    nan = np.isnan(x)
    neg = np.signbit(x)
    a = np.abs(x)
    inf = np.isinf(a)
    a = np.where(nan | inf, 0.0, a)

    # Quantize |x| on the grid of its binade: q is the exponent of the leading bit, clamped at
    # the smallest normal exponent so that smaller values fall on the subnormal grid.
    _, e = np.frexp(a)
    q = np.where(a > 0, np.maximum(e.astype(np.int64) - 1, emin), emin)
    scaled = np.ldexp(a, (m - q).astype(np.int32))  # exact: a power-of-two rescale
    whole = np.floor(scaled)
    rest = scaled - whole
    code = ((q - emin) << m) + whole.astype(np.int64)
    if not dt.has_subnormals:
        code -= 1 << m  # the leading bit is implicit even at the smallest exponent
    if dt.rounds_ties_away:
        code += rest >= 0.5
    else:
        code += (rest > 0.5) | ((rest == 0.5) & (code & 1 == 1))
    code = np.maximum(code, 0)  # zero-less types: tiny values become the smallest value

    over = (code > dt.max_code) | inf
    if overflow == "error" and (over.any() or (nan.any() and not dt.has_nan)):
        raise _overflow_error(dt, x, over | (nan & (not dt.has_nan)))
    sign_bit = np.int64(1 << (dt.bits - 1)) if dt.is_signed else np.int64(0)
    signed_nan = dt.variant in ("", "fn")
    nan_code = -1 if dt.nan_code is None else dt.nan_code

    if overflow == "saturate" or not (dt.has_inf or dt.has_nan):
        over_code, over_signed = dt.max_code, True
    elif dt.has_inf:
        over_code, over_signed = dt.inf_code, True
    else:
        over_code, over_signed = nan_code, signed_nan
    code = np.where(over, over_code, code)
    negative = neg & (code != 0 if not dt.has_negative_zero else True)
    negative &= np.where(over, over_signed, True)
    code = np.where(negative, code | sign_bit, code)

    if dt.has_nan:
        code = np.where(nan, nan_code | np.where(neg & signed_nan, sign_bit, 0), code)
    else:
        code = np.where(nan, 0, code)
    if not dt.is_signed:  # negative values (and the absent zero) have no encoding but NaN
        missing = (neg & (a > 0)) | ((a == 0) & ~nan & ~inf & (not dt.has_zero))
        code = np.where(missing | (neg & inf), nan_code, code)
    return code.astype(dt.storage)
