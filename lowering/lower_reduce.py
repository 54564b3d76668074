"""Lowering of reductions.

A reduction runs in three steps (``reduce_order``): each thread combines its own slots; threads
of one warp that hold parts of the same result exchange partials with xor-shuffles (when those
threads form power-of-two groups inside a warp); the remaining groups (across warps) meet in
shared memory, where every thread reads the partials of its group in the same order, so
replicated results are bitwise equal in every thread. A sum keeps its partials in the
accumulator dtype of its result.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from tilevm import dtypes as dts
from tilevm.dtypes import DataType
from tilevm.ir.nodes import Instr
from tilevm.ir.types import TileType, accumulator_dtype
from tilevm.layouts import RegisterLayout
from tilevm.layouts.ops import reduce
from tilevm.lowering import thread_ir as t
from tilevm.lowering.exprs import add, compute_type, const, digit, mul, slot_map, sub
from tilevm.lowering.lower import Lowerer, lowers
from tilevm.lowering.reduce_order import thread_groups
from tilevm.lowering.target import Target


def _identity(op: str, dtype: DataType, ct: DataType) -> t.Expr:
    if op == "sum":
        return t.Const(0, ct)
    if dtype.is_float:
        return t.Const(float("-inf") if op == "max" else float("inf"), ct)
    return t.Const(int(dtype.min) if op == "max" else int(dtype.max), ct)


def _combine(op: str, a: t.Expr, b: t.Expr, ct: DataType) -> t.Expr:
    return t.Bin("add", a, b, ct) if op == "sum" else t.Call(op, (a, b), ct)


def reduction_scratch(ins: Instr, target: Target) -> int:
    if ins.op != "reduce":
        return 0
    layout = ins.args[0].type.layout
    _, shared = thread_groups(layout, ins.attr("axes"), target.warp_size)
    if not shared:
        return 0
    ct = _accumulator(ins)
    out = reduce(layout, ins.attr("axes"), keepdims=True)
    return layout.num_threads * out.local_size * ct.bits // 8


def _accumulator(ins: Instr) -> DataType:
    """Sums keep their partials in the accumulator dtype of their result (which ``dtype=`` may
    widen); a maximum or minimum is one of its inputs, in their compute type."""
    if ins.attr("op") == "sum":
        return accumulator_dtype(ins.out.type.dtype)
    return compute_type(ins.args[0].type.dtype)


@lru_cache(maxsize=1024)
def _reduce_map(src: RegisterLayout, dst: RegisterLayout, axes: tuple[int, ...]):
    def project(index):
        return tuple(np.zeros_like(i) if d in axes else i for d, i in enumerate(index))

    return slot_map(src, dst, project)


@lowers("reduce")
def _reduce(lw: Lowerer, ins: Instr) -> None:
    src, out = ins.args[0], ins.out
    op, axes = ins.attr("op"), tuple(ins.attr("axes"))
    layout = src.type.layout
    kept = reduce(layout, axes, keepdims=True)
    ct = _accumulator(ins)
    acc = lw.names.fresh(f"{lw.name(src)}_{op}")
    lw.emit(t.Declare(acc, ct, kept.local_size))
    lw.slots(
        kept.local_size,
        lambda j: lw.emit(t.Set(t.Elem(acc, j, ct), _identity(op, src.type.dtype, ct))),
    )
    to_out = _reduce_map(layout, kept, axes)

    def own(i: t.Expr) -> None:
        target = t.Elem(acc, to_out(i), ct)
        value = lw.element(src, i)
        if ct != compute_type(src.type.dtype):  # a sum with dtype=: each element converted once
            value = t.Convert(value, ct)
        lw.emit(t.Set(target, _combine(op, target, value, ct)))

    lw.slots(layout.local_size, own)
    masks, shared = thread_groups(layout, axes, lw.target.warp_size)
    for mask in masks:
        lw.slots(
            kept.local_size,
            lambda j, mask=mask: lw.emit(
                t.Set(
                    t.Elem(acc, j, ct),
                    _combine(
                        op,
                        t.Elem(acc, j, ct),
                        t.Call("shfl_xor", (t.Elem(acc, j, ct), const(mask)), ct),
                        ct,
                    ),
                )  # fmt: skip
            ),
        )
    if shared:
        _across_warps(lw, ins, acc, kept.local_size, shared, op, ct)
    result = out
    if isinstance(out.type, TileType):
        name = lw.declare_tile(out)
        lw.slots(
            out.type.layout.local_size,
            lambda j: lw.emit(
                t.Set(t.Elem(name, j, out.type.dtype), t.Encode(t.Elem(acc, j, ct), out.type.dtype))
            ),
        )
    else:
        lw.define_scalar(result, t.Elem(acc, const(0), ct))


def _across_warps(lw: Lowerer, ins: Instr, acc: str, slots: int, shared, op: str, ct: DataType):
    base = lw.plan.offsets[ins]
    tid = lw.tid

    def cell(thread: t.Expr, j: t.Expr) -> t.Mem:
        return t.Mem("shared", "tv_smem", add(mul(thread, slots), j), ct, base)

    lw.emit(t.Barrier())
    lw.slots(slots, lambda j: lw.emit(t.Store(cell(tid, j), t.Elem(acc, j, ct))))
    lw.emit(t.Barrier())
    # the group's first thread: every shared-memory digit set to 0
    first: t.Expr = tid
    for radix, stride in shared:
        first = sub(first, mul(digit(tid, radix, stride, False), stride))
    group = lw.names.fresh("group")
    lw.emit(t.Declare(group, dts.i32, None, first))

    def slot(j: t.Expr) -> None:
        lw.emit(t.Set(t.Elem(acc, j, ct), _identity(op, ins.args[0].type.dtype, ct)))

        def visit(level: int, thread: t.Expr) -> None:
            if level == len(shared):
                target = t.Elem(acc, j, ct)
                lw.emit(t.Set(target, _combine(op, target, t.Load(cell(thread, j), ct), ct)))
                return
            radix, stride = shared[level]
            var = f"tv_w{level}"
            with lw.block() as inner:
                visit(level + 1, add(thread, mul(t.Sym(var), stride)))
            lw.emit(t.Loop(var, const(0), const(radix), const(1), tuple(inner), unroll=True))

        visit(0, t.Sym(group))

    lw.slots(slots, slot)
