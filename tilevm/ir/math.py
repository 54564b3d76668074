"""What the VM's float math functions compute: the float64 reference every executor matches
(the interpreter evaluates it, the frontend folds compile-time values with it), with IEEE
results rather than exceptions (``exp`` of a large value is inf, ``log`` of a negative nan)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

FLOAT_MATH: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "exp": np.exp,
    "exp2": np.exp2,
    "log": np.log,
    "log2": np.log2,
    "sqrt": np.sqrt,
    "rsqrt": lambda v: 1.0 / np.sqrt(v),
    "sin": np.sin,
    "cos": np.cos,
    "tanh": np.tanh,
}


def float_math(op: str, x: np.ndarray | float) -> np.ndarray:
    """``op`` of ``x`` in float64, without floating-point warnings."""
    with np.errstate(all="ignore"):
        return FLOAT_MATH[op](np.asarray(x, dtype=np.float64))
