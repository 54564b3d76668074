"""float64 references for the math functions from Python's math module (no numpy or scipy in
the values), with IEEE results at the edges (math raises where C returns inf or nan), and the
documented error bounds of the approximate forms."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def _sigmoid(v: float) -> float:
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


def _below_zero(fn: Callable[[float], float], v: float, at_zero: float, arg: float | None = None):
    """``fn(arg)`` (``arg``: ``v`` by default) where ``v`` > 0; ``at_zero`` at 0 and nan below
    (where math raises: log2 and 1 / sqrt of a non-positive number, log1p at and below -1)."""
    if v > 0:
        return fn(v if arg is None else arg)
    return at_zero if v == 0 else math.nan


def _ieee(fn: Callable[[float], float], at_inf: float, at_minus_inf: float, big: float = math.inf):
    """``fn`` on finite values; ``at_inf`` / ``at_minus_inf`` at the infinities; ``big`` (signed
    by the argument) where math overflows."""

    def call(v: float) -> float:
        if math.isnan(v):
            return math.nan
        if math.isinf(v):
            return at_inf if v > 0 else at_minus_inf
        try:
            return fn(v)
        except OverflowError:
            return math.copysign(big, v)

    return call


MATH: dict[str, Callable[[float], float]] = {
    "erf": _ieee(math.erf, 1.0, -1.0),
    "sigmoid": _ieee(_sigmoid, 1.0, 0.0),
    "log1p": _ieee(lambda v: _below_zero(math.log1p, v + 1, -math.inf, v), math.inf, math.nan),
    "expm1": _ieee(math.expm1, math.inf, -1.0),
    "tan": _ieee(math.tan, math.nan, math.nan),
    "atan": _ieee(math.atan, math.pi / 2, -math.pi / 2),
    "exp": _ieee(math.exp, math.inf, 0.0),
    "exp2": _ieee(lambda v: 2.0**v, math.inf, 0.0),
    "log2": _ieee(lambda v: _below_zero(math.log2, v, -math.inf), math.inf, math.nan),
    "rsqrt": _ieee(lambda v: _below_zero(lambda u: 1 / math.sqrt(u), v, math.inf), 0.0, math.nan),
}


def reference(op: str, values: np.ndarray) -> np.ndarray:
    fn = MATH[op]
    return np.array([fn(float(v)) for v in np.ravel(values)]).reshape(np.shape(values))


def c_pow(x: float, y: float) -> float:
    """C's pow: nan for a negative base and a non-integer exponent, inf for 0 ** negative."""
    if x == 0 and y < 0:  # a pole: -inf only for -0 and an odd integer exponent
        odd = float(y).is_integer() and y % 2 == 1
        return math.copysign(math.inf, x) if odd else math.inf
    try:
        return math.pow(x, y)
    except ValueError:
        return math.nan
    except OverflowError:
        return math.inf if x > 0 or float(y).is_integer() and y % 2 == 0 else -math.inf


def approx_bound(op: str, device: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(relative, absolute) error allowed for ``op(x, approx=True)`` on ``device``, element by
    element, as docs/language.md states them (an error passes if it is within either)."""
    rel = np.full(x.shape, 2.0**-23)  # the exact function, correctly rounded to f32 or nearly
    absolute = np.zeros(x.shape)
    if device.startswith("cuda"):  # the PTX ISA's bounds
        rel = {"exp2": 2.0**-22, "log2": 2.0**-22, "rsqrt": 2.0**-22.9, "div": 1.5 * 2.0**-23,
               "exp": 2.0**-22 + 1.25 * np.abs(x) * 2.0**-24}[op] + 0 * x  # fmt: skip
        if op == "log2":
            absolute = np.where((x > 0.5) & (x < 2), 2.0**-22, 0.0)
    elif device.startswith("sycl"):  # sycl::native on the OpenCL CPU device, as measured
        rel = np.full(x.shape, 2.0**-10)
        if op == "log2":
            absolute = np.full(x.shape, 2.0**-18)
    elif op == "exp":  # the exact function: 1 ulp (the CPU's expf) or correctly rounded
        rel = np.full(x.shape, 2.0**-22)
    return rel, absolute
