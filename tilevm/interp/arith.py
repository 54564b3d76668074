"""Elementwise arithmetic with each dtype's semantics, on numpy arrays of values.

Floats compute in float32 when the type fits in it (f32, f16, bf16, fp8, sub-byte floats: for
+ - * / float32 has enough bits that rounding the result once more to the type is exact IEEE
rounding) and in float64 otherwise; transcendental functions compute in float64. The result is
rounded to the type by ``encode`` (nearest even). Integers compute in 64 bits and wrap to their
width; ``//`` and ``%`` are floor division and modulo, as in Python.
"""

from __future__ import annotations

import numpy as np

from tilevm.dtypes import DataType
from tilevm.ir.math import float_math


def compute_type(dtype: DataType) -> np.dtype:
    if dtype.is_float:
        return np.dtype(np.float32) if dtype.value_dtype == np.float32 else np.dtype(np.float64)
    return np.dtype(np.uint64) if dtype.kind == "uint" and dtype.bits == 64 else np.dtype(np.int64)


def as_compute(values: np.ndarray, dtype: DataType) -> np.ndarray:
    with np.errstate(over="ignore"):  # a float past f32's range is inf there, as on devices
        return np.asarray(values).astype(compute_type(dtype), copy=False)


def binary(op: str, a: np.ndarray, b: np.ndarray, dtype: DataType) -> np.ndarray:
    a, b = as_compute(a, dtype), as_compute(b, dtype)
    with np.errstate(all="ignore"):
        if op == "add":
            return a + b
        if op == "sub":
            return a - b
        if op == "mul":
            return a * b
        if op == "div":
            return a / b
        if op == "floordiv":
            return np.floor_divide(a, b) if dtype.is_float else _int_floordiv(a, b)
        if op == "mod":
            return np.mod(a, b) if dtype.is_float else _int_mod(a, b)
        if op == "pow":
            return np.power(a.astype(np.float64), b) if dtype.is_float else _int_pow(a, b)
        if op == "maximum":
            return np.maximum(a, b)
        if op == "minimum":
            return np.minimum(a, b)
        if op == "and":
            return a & b
        if op == "or":
            return a | b
        if op == "xor":
            return a ^ b
        if op in ("lshift", "rshift"):
            return _shift(op, a, b, dtype.bits)
    raise AssertionError(op)


def _shift(op: str, a: np.ndarray, b: np.ndarray, bits: int) -> np.ndarray:
    """``a << b`` or ``a >> b`` (arithmetic for signed types, logical for unsigned) with the
    count read as unsigned, a negative one as large as any: a count of the width or more shifts
    every bit out, as that many one-bit shifts would (0, or the sign for >> of a signed value)."""
    out = (b < 0) | (b >= bits)
    count = np.where(out, 0, b)
    if op == "lshift":
        return np.where(out, 0, a << count)
    sign = np.zeros_like(a) if a.dtype == np.uint64 else a >> 63  # values below 2**63: 0 or -1
    return np.where(out, sign, a >> count)


def _int_floordiv(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    safe = np.where(b == 0, 1, b)
    return np.where(b == 0, 0, np.floor_divide(a, safe))  # x // 0 is 0, as on the GPU lowering


def _int_mod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    safe = np.where(b == 0, 1, b)
    return np.where(b == 0, a, np.mod(a, safe))


def _int_pow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(b < 0, 0, np.power(a, np.clip(b, 0, None)))


def compare(op: str, a: np.ndarray, b: np.ndarray, dtype: DataType) -> np.ndarray:
    a, b = as_compute(a, dtype), as_compute(b, dtype)
    with np.errstate(invalid="ignore"):
        result = {
            "eq": np.equal,
            "ne": np.not_equal,
            "lt": np.less,
            "le": np.less_equal,
            "gt": np.greater,
            "ge": np.greater_equal,
        }[op](a, b)
    return result.astype(np.int64)


def unary(op: str, x: np.ndarray, dtype: DataType) -> np.ndarray:
    if op == "not":
        return (as_compute(x, dtype) == 0).astype(np.int64)
    if op == "neg":
        return -as_compute(x, dtype)
    if op == "abs":
        return np.abs(as_compute(x, dtype))
    if op == "invert":
        return ~as_compute(x, dtype)
    if op in ("floor", "ceil"):
        return (np.floor if op == "floor" else np.ceil)(np.asarray(x, dtype=np.float64))
    return float_math(op, x)


def convert(values: np.ndarray, src: DataType, dst: DataType) -> np.ndarray:
    """``x.to(dst)``: floats to integers truncate toward zero and saturate (NaN -> 0); integers
    to narrower integers wrap; anything to a float rounds to nearest even."""
    values = np.asarray(values)
    if dst.is_integer and src.is_float:
        with np.errstate(invalid="ignore"):
            truncated = np.trunc(np.where(np.isnan(values), 0.0, values.astype(np.float64)))
        return np.clip(truncated, float(dst.min), float(dst.max))
    return values
