"""Elementwise ``+ - *`` of halves and bfloats, two slots at a time.

A register holds two 16-bit slots; the GPUs add, subtract and multiply both halves with one
packed instruction (``HADD2``/``HMUL2``), correctly rounded in the 16-bit type, which is the
VM's result (float32 has more than twice their precision, so computing in float32 and rounding
once gives the same number). Where every operand's two values for the result's slots ``2i,
2i + 1`` sit in one register of that operand (slots ``2j, 2j + 1``), or are one value (a
broadcast, a scalar), the result's register is one packed operation on whole registers; the
compiler then never splits and re-joins halves.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from tilevm import dtypes as dts
from tilevm.errors import CompileError
from tilevm.ir.nodes import Instr, Literal, Operand
from tilevm.ir.types import TileType
from tilevm.layouts import RegisterLayout
from tilevm.lowering import thread_ir as t
from tilevm.lowering.exprs import broadcast_project, const, slot_table
from tilevm.lowering.lower import Lowerer

U32 = dts.u32
OPS = ("add", "sub", "mul")


def lower_half_pairs(lw: Lowerer, ins: Instr) -> bool:
    """Lower a binary ``ins`` on halves/bfloats pair by pair; False if it does not qualify."""
    out = ins.out
    if (
        ins.attr("op") not in OPS
        or not isinstance(out.type, TileType)
        or out.type.dtype.name not in ("f16", "bf16")
        or out.type.layout.local_size % 2
    ):
        return False
    layout = out.type.layout
    sources = [_pairs(layout, a.type.layout) if _is_tile(a) else None for a in ins.args]
    if any(s is False for s in sources):
        return False
    name = lw.declare_tile(out)
    kind = "half" if out.type.dtype.name == "f16" else "bfloat"
    for i in range(layout.local_size // 2):
        words = [_word(lw, a, s, i) for a, s in zip(ins.args, sources)]
        value = t.Call(f"{kind}2_{ins.attr('op')}", tuple(words), U32)
        lw.emit(t.Effect(t.Call("store_u32", (t.Ref(name, const(2 * i), out.type.dtype), value),
                                U32)))  # fmt: skip
    return True


def _is_tile(op: Operand) -> bool:
    return not isinstance(op, Literal) and isinstance(op.type, TileType)


@lru_cache(maxsize=1024)
def _pairs(out: RegisterLayout, src: RegisterLayout) -> tuple[tuple[int, int], ...] | bool:
    """For each pair of result slots, the operand's two slots: an aligned pair ``(2j, 2j+1)``
    or one slot twice; False when some pair is neither (or no slot map exists)."""
    try:
        table = slot_table(out, src, broadcast_project(out.shape, src.shape))
    except CompileError:  # no compile-time slot map: the ordinary path handles (or reports) it
        return False
    pairs = tuple((int(table[2 * i]), int(table[2 * i + 1])) for i in range(len(table) // 2))
    ok = all(a == b or (a % 2 == 0 and b == a + 1) for a, b in pairs)
    return pairs if ok else False


def _word(lw: Lowerer, op: Operand, pairs, i: int) -> t.Expr:
    """The operand's two values for result pair ``i`` as one 32-bit word (low half first)."""
    dtype = op.dtype if isinstance(op, Literal) else op.type.dtype
    if isinstance(op, Literal):
        bits = int(dtype.encode(np.array([op.value], dtype=np.float64))[0])
        return t.Const(bits * 0x10001, U32)
    if pairs is None:  # a block-uniform scalar
        return _twice(t.ToBits(t.Sym(lw.name(op), dtype), U32))
    a, b = pairs[i]
    if a != b:
        return t.Call("load_u32", (t.Ref(lw.name(op), const(a), dtype),), U32)
    return _twice(t.ToBits(t.Elem(lw.name(op), const(a), dtype), U32))


def _twice(bits: t.Expr) -> t.Expr:
    return t.Bin("or", bits, t.Bin("shl", bits, const(16), U32), U32)
