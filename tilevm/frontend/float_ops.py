"""Float-only instructions beyond the operators: ``tv.pow``, ``tv.fdiv`` and the ``approx=``
flag of the math functions that have a fast approximate form on GPUs."""

from __future__ import annotations

from typing import Any

import numpy as np

from tilevm.frontend.builder import Builder, describe, value_dtype
from tilevm.frontend.ops import binary, is_runtime
from tilevm.ir.math import float_pow
from tilevm.ir.nodes import Var


def approx_flag(b: Builder, value: Any, what: str) -> bool:
    """``approx=`` must be known when the kernel compiles: it picks the instruction."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise b.type_error(
        f"{what}'s approx= is a compile-time bool",
        expected="approx=True or approx=False (a constexpr)",
        found=describe(value),
        hint="the choice between the exact and the approximate instruction is made when the "
        "kernel compiles",
    )


def _require_float(b: Builder, what: str, hint: str, *values: Any) -> None:
    for v in values:
        if isinstance(v, Var) and not value_dtype(v).is_float:
            raise b.type_error(
                f"{what} needs float operands",
                expected="float tiles or scalars",
                found=", ".join(str(value_dtype(x)) for x in values if isinstance(x, Var)),
                hint=hint,
            )


def power(b: Builder, x: Any, y: Any) -> Any:
    """``x ** y`` of floats, elementwise with broadcasting; C's ``pow`` at every point
    (computed in float64, rounded once), also when both are compile-time numbers."""
    _require_float(b, "tv.pow", "convert first: x.to(tv.f32); for integer powers use x ** n", x, y)
    if not is_runtime(x, y):
        _require_numbers(b, "tv.pow", x, y)
        return float(float_pow(x, y))
    return binary(b, "pow", x, y)


def fdiv(b: Builder, x: Any, y: Any, approx: bool) -> Any:
    """``x / y`` of floats; ``approx`` multiplies by a reciprocal estimate on GPUs. Compile-time
    numbers divide as IEEE floats (``1.0 / 0.0`` is inf, as at run time)."""
    _require_float(b, "tv.fdiv", "convert first: x.to(tv.f32); // divides integers", x, y)
    if not is_runtime(x, y):
        _require_numbers(b, "tv.fdiv", x, y)
        with np.errstate(all="ignore"):
            return float(np.float64(x) / np.float64(y))
    return binary(b, "div", x, y, approx=approx)


def _require_numbers(b: Builder, what: str, *values: Any) -> None:
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise b.type_error(
                f"{what} of {describe(v)}",
                expected="numbers, or float tiles or scalars",
                found=describe(v),
            )
