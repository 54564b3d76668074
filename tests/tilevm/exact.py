"""Exact references for conversions to floats and for shifts, from Python's integers and
fractions: what rounding once gives, and what shifting one bit at a time gives, with no float
arithmetic in between."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from tilevm.dtypes import DataType


def rounded_code(value: int | float | Fraction, dt: DataType) -> int:
    """The pattern of ``value`` rounded once to the float type ``dt``: the nearest point of
    ``dt``'s grid (ties to even, or away from zero for the fnu types); past the largest value,
    the pattern ``dt`` gives an infinity of that sign (its overflow: infinity, NaN or the
    largest value); NaN, infinities and signed zeros as ``dt.encode`` has them."""
    if isinstance(value, float) and not math.isfinite(value):
        return _encoded(value, dt)
    exact = Fraction(value)
    negative = exact < 0 or (isinstance(value, float) and math.copysign(1.0, value) < 0)
    sign = -1.0 if negative else 1.0
    a = abs(exact)
    if a == 0:
        return _encoded(sign * 0.0, dt)
    if negative and not dt.is_signed:  # unsigned types hold no negative value, however small
        return _encoded(math.nan, dt)
    e = a.numerator.bit_length() - a.denominator.bit_length()  # floor(log2 a), or one more
    if Fraction(2) ** e > a:
        e -= 1
    q = max(e, dt.min_exponent)  # the binade's exponent; subnormals share the lowest one's
    ulp = Fraction(2) ** (q - dt.mantissa)
    steps = a / ulp
    n = math.floor(steps)
    rest = steps - n
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and (dt.rounds_ties_away or n % 2)):
        n += 1
    result = n * ulp
    if result == 0 and not dt.has_zero:  # zero-less types: below the smallest is the smallest
        result = Fraction(dt.smallest_normal)
    if result > Fraction(float(dt.max)):
        return _encoded(sign * math.inf, dt)
    return _encoded(sign * float(result), dt)  # a value of dt: exact in float64


def odd_f32(value: int | float | Fraction) -> float:
    """``value`` rounded to odd into float32: of the two float32 values either side, the one
    whose last mantissa bit is 1 (the value itself if float32 holds it); past the largest
    finite float32, the largest. Infinities and NaN stay what they are."""
    if isinstance(value, float) and not math.isfinite(value):
        return value
    exact = Fraction(value)
    a = abs(exact)
    if a == 0:
        return math.copysign(0.0, value)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    ulp = Fraction(2) ** (max(e, -126) - 23)
    n = math.floor(a / ulp)
    if n * ulp != a and n % 2 == 0:
        n += 1
    result = min(n * ulp, Fraction(float(np.finfo(np.float32).max)))
    return float(result) if exact > 0 else -float(result)


def _encoded(value: float, dt: DataType) -> int:
    with np.errstate(all="ignore"):
        return int(dt.encode(np.asarray([value]))[0])


def wrapped(value: int, dt: DataType) -> int:
    """``value`` as ``dt`` holds it: the low ``dt.bits`` bits, signed where ``dt`` is."""
    value &= (1 << dt.bits) - 1
    if dt.kind == "int" and value >> (dt.bits - 1):
        value -= 1 << dt.bits
    return value


def shifted(x: int, count: int, dt: DataType, left: bool) -> int:
    """``x << count`` or ``x >> count`` on the integer type ``dt``, one bit at a time, the count
    read as unsigned (its ``dt.bits`` bits): a bit shifted out is gone, >> of a signed value
    brings in copies of the sign."""
    steps = count & ((1 << dt.bits) - 1)
    x = wrapped(x, dt)
    for _ in range(min(steps, dt.bits + 1)):  # after width + 1 steps nothing changes
        x = wrapped(x << 1, dt) if left else x >> 1  # Python's >> keeps the sign
    return x
