"""Type lists and an independent reference encoder for the dtype tests."""

from __future__ import annotations

import contextlib
import math

import ml_dtypes
import numpy as np

import tilevm as tv


def ml_types() -> list[np.dtype]:
    """Every scalar type ml_dtypes defines (complex types excluded)."""
    found = []
    for name in dir(ml_dtypes):
        obj = getattr(ml_dtypes, name)
        if isinstance(obj, type) and issubclass(obj, np.generic) and "complex" not in name:
            found.append(np.dtype(obj))
    return found


def all_small_floats() -> list[tv.DataType]:
    """Every float type tilevm has up to 16 bits: every split, every convention."""
    types = []
    for variant in ("", "fn", "fnuz", "fnu"):
        for exponent in range(1, 16):
            for mantissa in range(0, 16):
                sign = 0 if variant == "fnu" else 1
                if 2 <= sign + exponent + mantissa <= 16:
                    # ranges float64 cannot hold (exponent >= 12) are rejected by design
                    with contextlib.suppress(tv.DtypeError):
                        types.append(tv.float_type(exponent, mantissa, variant))
    return types


def magnitudes(dt: tv.DataType) -> np.ndarray:
    """Values of the finite magnitude codes 0..max_code, in code order (float64)."""
    return np.array([dt.magnitude_value(c) for c in range(dt.max_code + 1)])


def reference_encode(dt: tv.DataType, x: np.ndarray) -> np.ndarray:
    """Nearest-value search over the type's values: a second encoder written independently of
    the bit-level one (finite inputs only, default overflow policy)."""
    mags = magnitudes(dt)
    # the value the next code would have with an unbounded exponent: overflow rounds towards it
    a = np.abs(x.astype(np.float64))
    hi = np.clip(np.searchsorted(mags, a, side="left"), 0, len(mags) - 1)
    lo = np.clip(hi - 1, 0, None)
    hi_dist, lo_dist = mags[hi] - a, a - mags[lo]
    ties_away = dt.variant == "fnu" and dt.mantissa == 0  # exponent-only scale types
    if ties_away:
        pick_hi = hi_dist <= lo_dist
    else:
        pick_hi = (hi_dist < lo_dist) | ((hi_dist == lo_dist) & (hi % 2 == 0))
    code = np.where(a <= mags[0], 0, np.where(pick_hi, hi, lo))
    # Above the largest value, round towards the value the next code would have with an
    # unbounded exponent; the midpoint is formed from halves so that it stays finite.
    field, man = (dt.max_code + 1) >> dt.mantissa, (dt.max_code + 1) & ((1 << dt.mantissa) - 1)
    half_beyond = math.ldexp((1 << dt.mantissa) + man, field - dt.bias - dt.mantissa - 1)
    mid = mags[-1] / 2 + half_beyond
    tie_up = ties_away or (dt.max_code + 1) % 2 == 0
    over = (a > mid) | ((a == mid) & tie_up)
    code = np.where(a > mags[-1], np.where(over, dt.max_code + 1, dt.max_code), code)
    sign = np.signbit(x) & dt.is_signed
    if dt.has_inf:
        special = dt.inf_code
    elif dt.has_nan:
        special = dt.nan_code
    else:
        special = dt.max_code
    code = np.where(over, special, code)
    keep_sign = sign & ((code != 0) | dt.has_negative_zero)
    keep_sign &= ~(over & (dt.variant == "fnuz"))
    code = code | np.where(keep_sign, 1 << (dt.bits - 1), 0)
    if not dt.is_signed:  # unsigned types hold no negative value, and f8e8m0fnu no zero
        no_code = (np.signbit(x) & (a > 0)) | ((a == 0) & (not dt.has_zero))
        code = np.where(no_code, dt.nan_code, code)
    return code.astype(np.int64)


def boundary_inputs(dt: tv.DataType) -> np.ndarray:
    """Inputs on and beside every rounding boundary of ``dt``: each value, each midpoint between
    neighbours, the overflow threshold, and their neighbours in float32 (float64 for types whose
    range float32 cannot hold)."""
    ftype = dt.value_dtype.type
    mags = magnitudes(dt)
    mids = mags[:-1] / 2 + mags[1:] / 2  # halves first: no overflow at float64's top
    top = mags[-1]
    with np.errstate(over="ignore"):
        extra = [top * f for f in (1.0625, 1.125, 1.25, 1.5, 2.0, 4.0)] + [1e30, 3e38, 1e-30, 1e-45]
        x = np.concatenate([mags, mids, extra]).astype(ftype)
        x = np.concatenate([x, np.nextafter(x, ftype(np.inf)), np.nextafter(x, ftype(-np.inf))])
    x = np.concatenate([x, -x])
    return x[np.isfinite(x)]
