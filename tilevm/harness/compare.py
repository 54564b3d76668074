"""Comparing a solution's outputs with the reference's: count, exact type, shape, dtype, then
the values within a tolerance, with the worst element named.

numpy's functions are bound here when the harness is imported, before any problem module, so
patching ``numpy.abs`` or ``numpy.isnan`` does not change a verdict (the guards also report it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

import tilevm as tv
from tilevm.dtypes import interop
from tilevm.harness.arrays import (
    device_of,
    dtype_name,
    is_plain_array,
    shape_of,
    to_float64,
    type_name,
)
from tilevm.harness.problem import Tolerance

_abs, _isnan, _isinf, _argmax, _where = np.abs, np.isnan, np.isinf, np.argmax, np.where
_unravel = np.unravel_index
DEFAULT_EPS_FACTOR = 16  # default atol = rtol = 16 ulps of the output type (at 1.0)


@dataclass
class Failure:
    """One reason a case failed: a stable ``code`` for tools and a message for people."""

    code: str
    message: str
    output: int | None = None
    worst: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "output": self.output,
                "worst": self.worst}  # fmt: skip


def default_tolerance(dtype: tv.DataType) -> Tolerance:
    """Integers: exact. Floats: 16 ulps of 1.0 in the output's type, absolute and relative."""
    if not dtype.is_float:
        return Tolerance(0.0, 0.0)
    eps = DEFAULT_EPS_FACTOR * float(dtype.eps)
    return Tolerance(eps, eps)


def check_kind(outputs: tuple, where: str) -> list[Failure]:
    """Every output is a plain ``np.ndarray`` or ``torch.Tensor`` on the device's memory."""
    failures = []
    for i, out in enumerate(outputs):
        if not is_plain_array(out):
            failures.append(Failure(
                "output-type",
                f"output {i} is a {type_name(out)}, not a plain numpy.ndarray or torch.Tensor "
                "(subclasses and lazy objects are refused)",
                i,
            ))  # fmt: skip
        elif device_of(out) != where:
            failures.append(
                Failure("output-device", f"output {i} is on {device_of(out)}, not {where}", i)
            )
    return failures


def compare(
    outputs: tuple, expected: tuple, dtypes: list[tv.DataType], tolerances: list[Tolerance | None]
) -> tuple[list[Failure], list[dict[str, Any]]]:
    """Failures, and per output its shape, dtype and largest errors."""
    if len(outputs) != len(expected):
        message = f"{len(outputs)} outputs, the reference gives {len(expected)}"
        return [Failure("output-count", message)], []
    failures, stats = [], []
    for i, (out, ref) in enumerate(zip(outputs, expected)):
        found = interop.as_dtype(out.dtype)
        if found != dtypes[i]:
            failures.append(Failure(
                "dtype",
                f"output {i} is {found}, expected {dtypes[i]} (the reference's; a problem may "
                "declare another in OUTPUT_DTYPES)",
                i,
            ))  # fmt: skip
            continue
        if shape_of(out) != shape_of(ref):
            message = f"output {i} has shape {shape_of(out)}, expected {shape_of(ref)}"
            failures.append(Failure("shape", message, i))
            continue
        tol = tolerances[i] or default_tolerance(found)
        failure, stat = _values(i, to_float64(out), to_float64(ref), tol)
        stats.append({"shape": list(shape_of(out)), "dtype": dtype_name(out), **stat})
        if failure is not None:
            failures.append(failure)
    return failures, stats


def _values(
    i: int, got: np.ndarray, want: np.ndarray, tol: Tolerance
) -> tuple[Failure | None, dict[str, Any]]:
    """Elementwise ``|got - want| <= atol + rtol * |want|``; NaN only where the reference has
    NaN, infinities only equal to themselves."""
    stat: dict[str, Any] = {"atol": tol.atol, "rtol": tol.rtol, "max_abs_error": 0.0,
                            "mismatches": 0}  # fmt: skip
    if got.size == 0:
        return None, stat
    with np.errstate(invalid="ignore", over="ignore"):
        error = _abs(got - want).astype(np.float64)
        allowed = tol.atol + tol.rtol * _abs(want).astype(np.float64)
        same_special = (_isnan(got) & _isnan(want)) | ((got == want) & _isinf(want))
        excess = _where(same_special, -1.0, error - allowed)
        excess = _where(_isnan(excess), np.inf, excess)  # NaN where the reference has a number
    bad = excess > 0
    finite_errors = _where(same_special | _isnan(error), 0.0, error)
    stat["max_abs_error"] = float(finite_errors.max())
    stat["mismatches"] = int(bad.sum())
    if not stat["mismatches"]:
        return None, stat
    flat = int(_argmax(excess))
    index = [int(k) for k in _unravel(flat, got.shape)] if got.ndim else []
    worst = {
        "index": index,
        "got": _number(got.reshape(-1)[flat]),
        "expected": _number(want.reshape(-1)[flat]),
        "abs_error": _number(error.reshape(-1)[flat]),
        "allowed": _number(allowed.reshape(-1)[flat]),
    }
    message = (
        f"output {i}: {stat['mismatches']} of {got.size} elements outside atol={tol.atol:g} "
        f"rtol={tol.rtol:g}; worst at {tuple(index)}: got {worst['got']}, "
        f"expected {worst['expected']}"
    )
    return Failure("mismatch", message, i, worst), stat


def _number(x: Any) -> float | int | str:
    """A JSON-ready number (NaN and infinities as strings, which JSON has no literal for)."""
    value = x.item()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


__all__ = ["Failure", "check_kind", "compare", "default_tolerance"]
