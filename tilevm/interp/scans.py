"""The interpreter's scans: the reference for ``tv.cumsum`` and ``tv.associative_scan``.

``cumsum`` follows ``tv.sum``'s accumulation rule: float running sums are kept in the
accumulator dtype (f32, or f64 for f64) and rounded to it after every addition, left to right
(the compiled scans add in a tree, so the last bits may differ, as for sums); integers add in
64 bits and wrap to their width. ``associative_scan`` groups its combines as a Kogge-Stone tree:
after step ``k`` each element holds the combination of the ``2**k`` elements ending at it.
"""

from __future__ import annotations

import numpy as np

from tilevm.dtypes import DataType
from tilevm.interp import arith
from tilevm.interp.execute import Interpreter, handles
from tilevm.interp.values import Scalar
from tilevm.ir.nodes import Combine, Instr, Literal, Var
from tilevm.ir.types import ScalarType, accumulator_dtype


@handles("scan")
def _scan(it: Interpreter, ins: Instr) -> None:
    dtype = ins.out.type.dtype
    axis, reverse = ins.attr("axis"), ins.attr("reverse")
    values = np.moveaxis(it.values(ins.args[0]), axis, -1)
    if reverse:  # a reverse scan is a forward scan of the reversed elements
        values = values[..., ::-1]
    if ins.attr("op") == "sum":
        if dtype.is_float:
            acc = np.float64 if accumulator_dtype(dtype).bits == 64 else np.float32
            result = np.cumsum(values.astype(acc), axis=-1, dtype=acc)  # each partial rounded
        else:
            result = np.cumsum(values.astype(arith.compute_type(dtype)), axis=-1)
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
