"""Lowering of ``dot``: the accumulator's layout divided by the chosen atom's C fragment.

The quotient is a layout over warps (threads, for the SIMT multiply-add) whose slots are atoms:
slot ``j`` of the quotient is the atom ``(i, n)`` its warp runs. The operands were given the
layouts ``dot_operand_layouts`` derives from the same quotient, so the A atoms ``(i, k)`` and B
atoms ``(k, n)`` of a step ``k`` sit at slots found by ``slot_map``, independent of the warp.
Each step issues one atom call per accumulator atom: the same loop for ``mma.sync`` and for a
thread's own ``fma``. A batched dot (``[*B, M, K] @ [*B, K, N]``) divides by the atom's fragments
padded with leading unit dimensions: the quotient's atoms are ``(*e, i, n)``, each reading A and
B of its own batch element ``e``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from tilevm.dtypes import DataType
from tilevm.errors import CompileError
from tilevm.ir.nodes import Instr
from tilevm.ir.types import accumulator_dtype
from tilevm.layouts import RegisterLayout, divide
from tilevm.layouts.atoms import MmaAtom
from tilevm.layouts.ops import reduce
from tilevm.lowering import thread_ir as t
from tilevm.lowering.exprs import add, compute_type, mul, slot_map
from tilevm.lowering.layout_rules import SIMT_FMA, dot_atom, dot_fragments, dot_operand_layouts
from tilevm.lowering.lower import Lowerer, lowers


@lru_cache(maxsize=1024)
def _operand_slots(quotient: RegisterLayout):
    """For an accumulator atom slot: the slot (in atoms) of its A row and of its B column, in
    the same batch element (an atom ``(*e, i, n)`` reads A atoms ``(*e, i, :)`` and B atoms
    ``(*e, :, n)``)."""
    rank = quotient.rank
    rows = reduce(quotient, [rank - 1], keepdims=True)
    cols = reduce(quotient, [rank - 2], keepdims=True)
    to_rows = slot_map(quotient, rows, lambda idx: (*idx[:-1], np.zeros_like(idx[-1])))
    to_cols = slot_map(quotient, cols, lambda idx: (*idx[:-2], np.zeros_like(idx[-2]), idx[-1]))
    return to_rows, to_cols


@lowers("dot")
def _dot(lw: Lowerer, ins: Instr) -> None:
    a, b, c = ins.args
    out = ins.out
    layout = out.type.layout
    k_size = a.type.shape[-1]
    atom = dot_atom(lw.target, ins, layout)
    want_a, want_b = dot_operand_layouts(layout, k_size, atom)
    if a.type.layout != want_a or b.type.layout != want_b:
        raise CompileError(
            f"internal: dot operands are not in the {atom.name} layouts",
            code="internal-lowering",
            location=ins.loc,
        )
    ct = accumulator_dtype(out.type.dtype)
    acc = lw.names.fresh(f"{lw.name(out)}_acc")
    lw.emit(t.Declare(acc, ct, layout.local_size))
    lw.slots(
        layout.local_size,
        lambda i: lw.emit(
            t.Set(t.Elem(acc, i, ct), _as(lw.element(c, i), compute_type(c.type.dtype), ct))
        ),
    )
    quotient = divide(layout, dot_fragments(atom, layout.rank)[2])
    to_rows, to_cols = _operand_slots(quotient)
    steps = k_size // atom.k
    issue = _fma if atom is SIMT_FMA else _atom_call

    def step(k: t.Expr) -> None:
        def one(j: t.Expr) -> None:
            a_slot = add(mul(to_rows(j), steps), k)
            b_slot = add(mul(to_cols(j), steps), k)
            issue(lw, atom, (acc, ct, j), (a, a_slot), (b, b_slot))

        lw.slots(quotient.local_size, one)

    lw.slots(steps, step, var="tv_k")
    name = lw.declare_tile(out)
    lw.slots(
        layout.local_size,
        lambda i: lw.emit(
            t.Set(t.Elem(name, i, out.type.dtype), t.Encode(t.Elem(acc, i, ct), out.type.dtype))
        ),
    )


def _fma(lw: Lowerer, atom: MmaAtom, acc, a, b) -> None:
    name, ct, j = acc
    src_ct = compute_type(a[0].type.dtype)
    x = _as(lw.element(a[0], a[1]), src_ct, ct)
    y = _as(lw.element(b[0], b[1]), src_ct, ct)
    target = t.Elem(name, j, ct)
    update = t.Call("fma", (x, y, target), ct) if ct.is_float else t.Bin(
        "add", target, t.Bin("mul", x, y, ct), ct)  # fmt: skip
    lw.emit(t.Set(target, update))


def _atom_call(lw: Lowerer, atom: MmaAtom, acc, a, b) -> None:
    """One warp-wide instruction on the fragments' consecutive slots."""
    name, ct, j = acc
    frags = (
        t.Ref(name, mul(j, atom.c.local_size), ct),
        t.Ref(lw.name(a[0]), mul(a[1], atom.a.local_size), a[0].type.dtype),
        t.Ref(lw.name(b[0]), mul(b[1], atom.b.local_size), b[0].type.dtype),
    )
    lw.emit(t.Effect(t.Call(atom.intrinsic, frags, ct)))


def _as(value: t.Expr, src: DataType, dst: DataType) -> t.Expr:
    return value if src == dst else t.Convert(value, dst)
