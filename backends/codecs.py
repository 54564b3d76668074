"""Portable C++ converters between a small float type's bit pattern and ``float``.

Every backend renders the same functions: they use only ``uint32_t``/``int32_t``/``float``,
integer operations, one or two float multiplies, and selects -- no tables, no ``<cmath>``, no
branches the compiler has to keep -- so they live in registers on any GPU and on the host.

The including renderer defines three macros before the functions::

    TV_INLINE              e.g. __device__ __forceinline__ (CUDA/HIP), inline (SYCL),
                           static inline (host C++)
    TV_BITS_TO_FLOAT(u)    reinterpret a uint32_t as float (__uint_as_float, sycl::bit_cast,
                           memcpy)
    TV_FLOAT_TO_BITS(f)    reinterpret a float as uint32_t

``HOST_PRELUDE`` defines all three for plain host C++ (``<stdint.h>``/``<string.h>`` only).

``tv_decode_<type>(uint32_t code) -> float`` is exact for every pattern (the code must be below
``2**bits``). It places sign, exponent and mantissa into float32 position and scales by
``2**(127 - bias)``: one multiply makes normals and subnormals right at once; selects handle
infinities, NaN, the fnuz NaN and the zero-less ``fnu`` types. The multiply sees float32
subnormals for the type's subnormal codes, so it needs denormal support (the default of every
backend; not CUDA's ``-ftz=true`` / ``--use_fast_math``).

``tv_encode_<type>(float x) -> uint32_t`` equals ``DataType.encode(x, overflow="default")`` bit
for bit for every float32 input. It works on the float32 bit pattern with integers only: the
exponent is rebiased by one subtraction and the mantissa rounded by adding a bias and shifting
(the carry moves into the exponent by itself); values below the type's smallest normal take a
variable shift of the significand; overflow, NaN, the sign and the unsigned types' rules are a few
compares against constants that the generator derives from the type.

``tv_decode_<type>_f16bits(uint32_t code) -> uint32_t`` returns the IEEE half pattern for types
whose every value is a half (``f16_exact``), from integer operations only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from tilevm.dtypes import DataType, DtypeError

__all__ = [
    "HOST_PRELUDE",
    "CFunction",
    "codec_sources",
    "decode_f16_function",
    "decode_function",
    "encode_function",
    "f16_exact",
    "needs_codec",
]

HOST_PRELUDE = """\
#include <stdint.h>
#include <string.h>
#ifndef TV_INLINE
#define TV_INLINE static inline
#endif
#ifndef TV_BITS_TO_FLOAT
static inline float tv_bits_to_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t tv_float_to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
#define TV_BITS_TO_FLOAT(u) tv_bits_to_float(u)
#define TV_FLOAT_TO_BITS(f) tv_float_to_bits(f)
#endif
"""

_F32_INF = 0x7F800000
_F32_MIN_NORMAL = 0x00800000


@dataclass(frozen=True)
class CFunction:
    """One generated C++ function: its identifier and its full definition."""

    name: str
    source: str


def needs_codec(dt: DataType) -> bool:
    """Whether values of ``dt`` need generated converters (every float but f16, bf16, f32, f64)."""
    return dt.is_float and dt.name not in ("f16", "bf16", "f32", "f64")


def f16_exact(dt: DataType) -> bool:
    """Whether every finite value of the small float ``dt`` is exactly an IEEE half."""
    if not _is_small_float(dt):
        return False
    largest = (dt.max_code >> dt.mantissa) - dt.bias
    smallest = dt.min_exponent - dt.mantissa
    return dt.mantissa <= 10 and largest <= 15 and smallest >= -24


def decode_function(dt: DataType) -> CFunction:
    """``float tv_decode_<dt>(uint32_t code)``: the exact value of a bit pattern."""
    _check(dt)
    m, e, bits = dt.mantissa, dt.exponent, dt.bits
    name = f"tv_decode_{_ident(dt)}"
    mag_mask = (1 << (e + m)) - 1
    sh = 23 - m
    body = [f"uint32_t mag = code & {_hex(mag_mask)};"]
    if not dt.is_signed:
        body.append(f"uint32_t b = mag << {sh};")
    elif e == 8:  # the sign bit lands on bit 31 by itself
        body.append(f"uint32_t b = code << {sh};")
    else:
        body.append(
            f"uint32_t b = (mag << {sh}) | ((code & {_hex(1 << (bits - 1))}) << {32 - bits});"
        )
    # b read as a float is value * 2**(bias - 127) (field 0 as float32 subnormals): scale back.
    body.append(f"float v = {_scaled('TV_BITS_TO_FLOAT(b)', 127 - dt.bias)};")
    field_255_finite = e == 8 and (dt.max_code >> m) == 255
    if field_255_finite:  # b is an infinity/NaN pattern there: move it one binade down first
        body.append(
            f"v = mag >= {_hex(255 << m)} ? "
            f"{_scaled('TV_BITS_TO_FLOAT(b - 0x800000u)', 128 - dt.bias)} : v;"
        )
    if not dt.has_subnormals:  # field 0 is 2**-bias, not zero (no mantissa: m == 0 here)
        body.append(f"v = mag == 0u ? {_float_const(2.0**-dt.bias)} : v;")
    if dt.variant == "" and e < 8:  # infinities and NaNs (e == 8: b is already one)
        body.append(f"v = mag >= {_hex(dt.inf_code)} ? TV_BITS_TO_FLOAT(b | 0x7f800000u) : v;")
    elif dt.variant == "fn" and dt.has_nan:
        body.append(f"v = mag == {_hex(mag_mask)} ? TV_BITS_TO_FLOAT(b | 0x7fc00000u) : v;")
    elif dt.variant in ("fnuz", "fnu"):
        body.append(f"v = code == {_hex(dt.nan_code)} ? TV_BITS_TO_FLOAT(0x7fc00000u) : v;")
    body.append("return v;")
    return _function(dt, "float", name, "uint32_t code", body)


def encode_function(dt: DataType) -> CFunction:
    """``uint32_t tv_encode_<dt>(float x)``: ``dt.encode(x, overflow="default")`` bit for bit."""
    _check(dt)
    m, bits, emin = dt.mantissa, dt.bits, dt.min_exponent
    name = f"tv_encode_{_ident(dt)}"
    ties_away = dt.rounds_ties_away
    sh = 23 - m
    sign_bit = 1 << (bits - 1)
    body = ["uint32_t u = TV_FLOAT_TO_BITS(x);", "uint32_t a = u & 0x7fffffffu;"]

    # ---- |x| >= 2**emin: rebias the exponent, round the mantissa (the carry may reach the
    # exponent, which is right). Float32 subnormals can be such values only when emin < -127:
    # then they are normalised first with an exact int -> float conversion.
    normal_from = _f32_bits_of_pow2(emin)  # the pattern of 2**emin (subnormal below -126)
    if emin < -127:
        body.append(
            "uint32_t n = a < 0x800000u ? TV_FLOAT_TO_BITS((float)(int32_t)a) - (149u << 23) : a;"
        )
        src = "n"
    else:
        src = "a"
    body.append(f"uint32_t c = {_add_const(src, -((127 - dt.bias) << 23))};")
    body.append(f"uint32_t norm = {_round_shift('c', sh, ties_away)};")

    # ---- |x| < threshold: count units of the lowest weight 2**(emin - m), rounded. Exact up to
    # 2**(emin + 1) (the first normal binade's codes are that count as well).
    threshold = max(normal_from, _F32_MIN_NORMAL) if emin == -127 else normal_from
    if dt.has_subnormals and dt.bias == 127:  # bf16-like: float32 subnormals line up as well
        sub = None
    elif not dt.has_subnormals:  # no zero, no subnormals: everything below rounds to code 0/1
        if threshold > normal_from:  # e8m0-like: [2**emin, 2**-126) are float32 subnormals
            half_up = _f32_bits(1.5 * 2.0**emin)
            sub = f"(uint32_t)(a >= {_hex(half_up)})"
        else:
            sub = "0u"
    elif threshold <= _F32_MIN_NORMAL:  # only float32 subnormals: a constant shift
        shift = 149 + emin - m
        sub = "a" if shift == 0 else _round_shift("a", shift, ties_away)
    else:
        k = 150 + emin - m
        body += [
            "uint32_t e = a >> 23;",
            "uint32_t e1 = e > 1u ? e : 1u;",  # float32 subnormals: exponent 1, no hidden bit
            "uint32_t sig = a - ((e1 - 1u) << 23);",
            f"uint32_t s = {k}u - e1;",  # wraps above the threshold (that lane is not used)
            "s = s < 31u ? s : 31u;",
        ]
        sub = _round_shift("sig", "s", ties_away)
    if sub is None:
        body.append("uint32_t code = norm;")
    else:
        body.append(f"uint32_t code = a < {_hex(threshold)} ? {sub} : norm;")

    # ---- overflow, NaN, sign
    ovf = _overflow_threshold(dt)
    s_in = f"((u >> 31) << {bits - 1})"
    if dt.variant == "":
        body.append(f"code = a >= {_hex(ovf)} ? {_hex(dt.inf_code)} : code;")
        if dt.has_nan:
            body.append(f"code = a > 0x7f800000u ? {_hex(dt.nan_code)} : code;")
            body.append(f"return code | {s_in};")
        else:  # no NaN pattern: NaN encodes as +0
            body.append(f"return a > 0x7f800000u ? 0u : code | {s_in};")
    elif dt.variant == "fn" and dt.has_nan:  # overflow and NaN are both the signed NaN
        body.append(f"code = a >= {_hex(ovf)} ? {_hex(dt.nan_code)} : code;")
        body.append(f"return code | {s_in};")
    elif dt.variant == "fn":  # no infinity, no NaN: saturate, NaN -> +0
        body.append(f"code = a >= {_hex(ovf)} ? {_hex(dt.max_code)} : code;")
        body.append(f"return a > 0x7f800000u ? 0u : code | {s_in};")
    elif dt.variant == "fnuz":  # overflow and NaN: the negative-zero pattern; -0 is +0
        body.append(f"code = a >= {_hex(ovf)} ? {_hex(sign_bit)} : code;")
        body.append(f"return code != 0u ? code | {s_in} : 0u;")
    elif dt.has_zero:  # fnu: NaN for overflow, NaN and every negative value but -0
        body.append(f"return u >= {_hex(ovf)} && u != 0x80000000u ? {_hex(dt.nan_code)} : code;")
    else:  # fnu without zero (e8m0): +-0 are NaN as well
        body.append(f"return u - 1u >= {_hex(ovf - 1)} ? {_hex(dt.nan_code)} : code;")
    return _function(dt, "uint32_t", name, "float x", body)


def decode_f16_function(dt: DataType) -> CFunction:
    """``uint32_t tv_decode_<dt>_f16bits(uint32_t code)``: the IEEE half pattern of a code's
    value, for types whose every value is a half (``f16_exact``); integer operations only."""
    _check(dt)
    if not f16_exact(dt):
        raise DtypeError(
            f"not every value of {dt} is an IEEE half",
            expected="a float type whose range and precision fit in f16 (e5m10)",
            found=f"{dt}: {dt.mantissa} mantissa bits, values from "
            f"2**{dt.min_exponent - dt.mantissa} to {dt.max}",
            hint="decode to float with decode_function instead",
            code="codec-f16-inexact",
        )
    m, e, bits, bias = dt.mantissa, dt.exponent, dt.bits, dt.bias
    name = f"tv_decode_{_ident(dt)}_f16bits"
    mag_mask = (1 << (e + m)) - 1
    sh = 10 - m
    body = [f"uint32_t mag = code & {_hex(mag_mask)};", f"uint32_t f = mag >> {m};"]
    # Fields whose values are normal halves: the fields move into half layout and one add fixes
    # the bias. Below (half subnormals, and the type's own subnormals) the half pattern is the
    # value in units of 2**-24: the significand shifted by an amount that depends on the field.
    normal = _add_const(f"(mag << {sh})", (15 - bias) << 10)
    if not dt.has_subnormals:  # m == 0: value 2**(f - bias)
        if bias >= 15:
            body.append(
                f"uint32_t h = f < {bias - 14}u ? 1u << (({_add_const('f', 24 - bias)}) & 31u)"
                f" : {normal};"
            )
        else:
            body.append(f"uint32_t h = {normal};")
    elif bias == 15:  # the subnormals line up with the half subnormals
        body.append(f"uint32_t h = {normal};")
    elif bias > 15:  # fields 0 .. bias - 15 are half subnormals
        body += [
            "uint32_t f1 = f > 1u ? f : 1u;",
            f"uint32_t sig = mag - ((f1 - 1u) << {m});",  # the hidden bit for f >= 1
            f"uint32_t h = f < {bias - 14}u ? sig << (({_add_const('f1', 24 - bias - m)}) & 31u)"
            f" : {normal};",
        ]
    else:  # bias < 15: the subnormals are normal halves, or (the small ones) half subnormals
        shift = 25 - bias - m  # man << shift: the half pattern of a half-subnormal value
        limit = max(1 << max(bias + m - 15, 0), 1)
        to_half = _add_const(
            "(TV_FLOAT_TO_BITS((float)(int32_t)man) >> 13)", (1 - bias - m - 112) << 10
        )
        body += [
            f"uint32_t man = mag & {_hex((1 << m) - 1)};",
            f"uint32_t sub = man < {limit}u ? man << {shift} : {to_half};",
            f"uint32_t h = f == 0u ? sub : {normal};",
        ]
    if dt.variant == "":
        body.append(f"h = mag >= {_hex(dt.inf_code)} ? 0x7c00u | (mag << {sh}) : h;")
    elif dt.variant == "fn" and dt.has_nan:
        body.append(f"h = mag == {_hex(mag_mask)} ? 0x7e00u : h;")
    elif dt.variant in ("fnuz", "fnu"):
        body.append(f"h = code == {_hex(dt.nan_code)} ? 0x7e00u : h;")
    if dt.is_signed:
        body.append(f"h |= (code >> {bits - 1}) << 15;")
    body.append("return h;")
    return _function(dt, "uint32_t", name, "uint32_t code", body)


def codec_sources(dtypes: Iterable[DataType]) -> str:
    """Decode and encode definitions of every type in ``dtypes`` that ``needs_codec``, each
    type once, ordered by name (the same text whatever the order of ``dtypes``)."""
    wanted = {dt.name: dt for dt in dtypes if isinstance(dt, DataType) and needs_codec(dt)}
    parts = []
    for key in sorted(wanted):
        parts.append(decode_function(wanted[key]).source)
        parts.append(encode_function(wanted[key]).source)
    return "\n".join(parts)


# ----- helpers --------------------------------------------------------------------------------


def _is_small_float(dt: DataType) -> bool:
    return isinstance(dt, DataType) and dt.is_float and not dt.is_wide_float


def _check(dt: DataType) -> None:
    if not _is_small_float(dt):
        raise DtypeError(
            f"no generated float codec for {dt}",
            expected="a float type of 2..16 bits such as f6e3m2fn or f8e4m3fn",
            found=str(dt),
            hint="integers and f32/f64 need no codec",
            code="codec-unsupported",
        )
    if dt.value_dtype != np.float32:
        raise DtypeError(
            f"the values of {dt} do not all fit in float32",
            expected="a float type whose range float32 holds exactly "
            "(largest value below 2**128, lowest mantissa weight at least 2**-149)",
            found=f"{dt}: largest {dt.max!r}, smallest {dt.smallest_subnormal!r}",
            hint="use fewer exponent bits or a bias nearer 2**(exponent-1)",
            code="codec-range",
        )


def _ident(dt: DataType) -> str:
    return re.sub(r"[^0-9A-Za-z_]", "_", dt.name)


def _hex(v: int) -> str:
    return f"{v:#x}u"


def _add_const(expr: str, k: int) -> str:
    k %= 1 << 32
    if k == 0:
        return expr
    if k >= 1 << 31:
        return f"{expr} - {_hex((1 << 32) - k)}"
    return f"{expr} + {_hex(k)}"


def _round_shift(expr: str, shift: int | str, ties_away: bool) -> str:
    """``expr >> shift`` rounded to nearest (ties to even, or away from zero)."""
    if isinstance(shift, int):
        half = 1 << (shift - 1)
        if ties_away:
            return f"({expr} + {_hex(half)}) >> {shift}"
        return f"({expr} + {_hex(half - 1)} + (({expr} >> {shift}) & 1u)) >> {shift}"
    half = f"((1u << {shift}) >> 1)"  # no shift by -1 when shift is 0
    if ties_away:
        return f"({expr} + {half}) >> {shift}"
    return f"({expr} + {half} - 1u + (({expr} >> {shift}) & 1u)) >> {shift}"


def _f32_bits(value: float) -> int:
    f = np.float32(value)
    if float(f) != value:
        raise AssertionError(f"{value!r} is not a float32")
    return int(f.view(np.uint32))


def _f32_bits_of_pow2(k: int) -> int:
    if k >= -126:
        return (k + 127) << 23
    return 1 << (k + 149)


def _float_const(value: float) -> str:
    return f"TV_BITS_TO_FLOAT({_hex(_f32_bits(value))}) /* {value!r} */"


def _scaled(expr: str, k: int) -> str:
    """``expr * 2**k`` as one or two exact multiplies by float32 constants."""
    factors = []
    while k > 127:
        factors.append(127)
        k -= 127
    if k != 0:
        factors.append(k)
    for f in factors:
        expr = f"{expr} * TV_BITS_TO_FLOAT({_hex(_f32_bits_of_pow2(f))}) /* 2**{f} */"
    return expr


def _overflow_threshold(dt: DataType) -> int:
    """The smallest float32 pattern whose magnitude ``encode`` turns into overflow."""
    m = dt.mantissa
    nxt = dt.max_code + 1  # the code above the largest, read with an unbounded exponent
    beyond = math.ldexp((1 << m) + (nxt & ((1 << m) - 1)), (nxt >> m) - dt.bias - m)
    mid = float(dt.max) / 2 + beyond / 2
    tie_up = dt.rounds_ties_away or nxt % 2 == 0
    if mid >= 2.0**128:
        return _F32_INF
    bits = _f32_bits(mid)
    return bits if tie_up else bits + 1


def _function(dt: DataType, ret: str, name: str, params: str, body: list[str]) -> CFunction:
    while True:  # drop declarations nothing reads (no unused-variable warnings)
        used = [
            line
            for i, line in enumerate(body)
            if not (m := re.match(r"uint32_t (\w+) = ", line))
            or any(re.search(rf"\b{m.group(1)}\b", later) for later in body[i + 1 :])
        ]
        if len(used) == len(body):
            break
        body = used
    sign = "1 sign, " if dt.is_signed else "unsigned, "
    head = (
        f"// {dt.name}: {sign}{dt.exponent} exponent, {dt.mantissa} mantissa bits, bias {dt.bias}\n"
    )
    lines = "\n".join(f"    {line}" for line in body)
    return CFunction(name, f"{head}TV_INLINE {ret} {name}({params}) {{\n{lines}\n}}\n")
