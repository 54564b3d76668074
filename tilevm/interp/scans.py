"""The interpreter's scans: the reference for ``tv.cumsum`` and ``tv.associative_scan``.

``cumsum`` adds exactly (float64 for floats, 64-bit wrapping integers) and rounds each running
sum once, like ``tv.sum``. ``associative_scan`` groups its combines as a Kogge-Stone tree:
after step ``k`` each element holds the combination of the ``2**k`` elements ending at it.
"""

from __future__ import annotations

import numpy as np

from tilevm.dtypes import DataType
from tilevm.interp import arith
from tilevm.interp.execute import Interpreter, handles
from tilevm.interp.values import Scalar
from tilevm.ir.nodes import Combine, Instr, Literal, Var
from tilevm.ir.types import ScalarType


@handles("scan")
def _scan(it: Interpreter, ins: Instr) -> None:
    dtype = ins.out.type.dtype
    axis, reverse = ins.attr("axis"), ins.attr("reverse")
    values = np.moveaxis(it.values(ins.args[0]), axis, -1)
    if reverse:  # a reverse scan is a forward scan of the reversed elements
        values = values[..., ::-1]
    if ins.attr("op") == "sum":
        wide = values.astype(np.float64 if dtype.is_float else arith.compute_type(dtype))
        result = np.cumsum(wide, axis=-1)
    else:
        result = _tree_scan(it, ins.attr("combine"), dtype, values, reverse)
    if reverse:
        result = result[..., ::-1]
    it.result(ins.out, np.moveaxis(result, -1, axis))


def _tree_scan(
    it: Interpreter, combine: Combine, dtype: DataType, values: np.ndarray, reverse: bool
) -> np.ndarray:
    """Inclusive scan along the last axis; ``combine(earlier, later)`` (in the scan's order,
    which for a reverse scan is the elements' order backwards: their arguments swap)."""
    lanes = _Lanes(it.kernel, it.grid)
    out, step, n = values, 1, values.shape[-1]
    while step < n:
        earlier, later = out[..., :-step], out[..., step:]
        pair = (later, earlier) if reverse else (earlier, later)
        out = np.concatenate([out[..., :step], lanes.apply(combine, dtype, *pair)], axis=-1)
        step *= 2
    return out


class _Lanes(Interpreter):
    """Runs a combine's scalar instructions on arrays: each scalar holds one value per pair."""

    def apply(self, combine: Combine, dtype: DataType, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.env = {p: Scalar(dtype, v) for p, v in zip(combine.params, (a, b))}
        self.body(combine.body)
        result = combine.result
        value = result.value if isinstance(result, Literal) else self.env[result].value
        return np.broadcast_to(np.asarray(value), a.shape)

    def result(self, out: Var, values: np.ndarray, overflow: str | None = None) -> None:
        if not isinstance(out.type, ScalarType):  # pragma: no cover - the verifier's rule
            raise AssertionError(f"a tile {out!r} in a combine")
        dtype = out.type.dtype
        policy = overflow or ("wrap" if dtype.is_integer else "default")
        codes = dtype.encode(np.atleast_1d(np.asarray(values)), overflow=policy)
        self.env[out] = Scalar(dtype, dtype.decode(codes).reshape(np.shape(values)))
