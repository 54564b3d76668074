"""What the VM's float math functions compute: the float64 reference every executor matches
(the interpreter evaluates it, the frontend folds compile-time values with it), with IEEE
results rather than exceptions (``exp`` of a large value is inf, ``log`` of a negative nan)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

# numpy has no erf; Python's is correctly rounded to float64 (far below f32's last bit)
_erf = np.frompyfunc(math.erf, 1, 1)


def _sigmoid(v: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow: exp of -|x| only, which lies in (0, 1]."""
    e = np.exp(-np.abs(v))
    return np.where(v >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


FLOAT_MATH: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "exp": np.exp,
    "exp2": np.exp2,
    "log": np.log,
    "log2": np.log2,
    "sqrt": np.sqrt,
    "rsqrt": lambda v: 1.0 / np.sqrt(v),
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "atan": np.arctan,
    "tanh": np.tanh,
    "erf": lambda v: np.asarray(_erf(v), dtype=np.float64),
    "sigmoid": _sigmoid,
    "log1p": np.log1p,
    "expm1": np.expm1,
}


def float_math(op: str, x: np.ndarray | float) -> np.ndarray:
    """``op`` of ``x`` in float64, without floating-point warnings."""
    with np.errstate(all="ignore"):
        return FLOAT_MATH[op](np.asarray(x, dtype=np.float64))


def float_pow(x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray:
    """``x ** y`` of floats in float64, as C's ``pow`` (``(-8) ** (1/3)`` is nan, ``0 ** -1``
    inf), without floating-point warnings."""
    with np.errstate(all="ignore"):
        return np.power(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
