"""Lowering of reductions.

A reduction runs in three steps: each thread combines its own slots; threads of one warp that
hold parts of the same result exchange partials with xor-shuffles (when those threads form
power-of-two groups inside a warp); the remaining groups (across warps) meet in shared memory,
where every thread reads the partials of its group in the same order, so replicated results are
bitwise equal in every thread.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from tilevm import dtypes as dts
from tilevm.dtypes import DataType
from tilevm.ir.nodes import Instr
from tilevm.ir.types import TileType
from tilevm.layouts import RegisterLayout
from tilevm.layouts.ops import reduce
from tilevm.lowering import thread_ir as t
from tilevm.lowering.exprs import add, compute_type, const, digit, digits, mul, slot_map, sub
from tilevm.lowering.lower import Lowerer, lowers
from tilevm.lowering.target import Target


def _identity(op: str, dtype: DataType, ct: DataType) -> t.Expr:
    if op == "sum":
        return t.Const(0, ct)
    if dtype.is_float:
        return t.Const(float("-inf") if op == "max" else float("inf"), ct)
    return t.Const(int(dtype.min) if op == "max" else int(dtype.max), ct)


def _combine(op: str, a: t.Expr, b: t.Expr, ct: DataType) -> t.Expr:
    return t.Bin("add", a, b, ct) if op == "sum" else t.Call(op, (a, b), ct)


def _reduced_entries(layout: RegisterLayout, axes) -> set[int]:
    mode, out = 0, set()
    for d, dim in enumerate(layout.modes):
        for _ in dim:
            if d in axes:
                out.add(mode)
            mode += 1
    return out


def thread_groups(layout: RegisterLayout, axes, target: Target):
    """The thread digits along reduced dimensions: (xor-shuffle masks for the part of each digit
    inside a warp, the ``(radix, stride)`` of the parts that meet in shared memory)."""
    gone = _reduced_entries(layout, axes)
    warp = target.warp_size
    masks, shared = [], []
    for entry, radix, stride in digits(layout.spatial_modes, layout.mode_sizes):
        if entry < 0 or entry not in gone:
            continue
        inside = 1
        if radix & (radix - 1) == 0 and stride & (stride - 1) == 0 and stride < warp:
            inside = min(radix, warp // stride)
            masks += [stride << b for b in range((inside - 1).bit_length())]
        if radix > inside:
            shared.append((radix // inside, stride * inside))
    return masks, shared


def reduction_scratch(ins: Instr, target: Target) -> int:
    if ins.op != "reduce":
        return 0
    layout = ins.args[0].type.layout
    _, shared = thread_groups(layout, ins.attr("axes"), target)
    if not shared:
        return 0
    ct = compute_type(ins.args[0].type.dtype)
    out = reduce(layout, ins.attr("axes"), keepdims=True)
    return layout.num_threads * out.local_size * ct.bits // 8


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
    ct = compute_type(src.type.dtype)
    acc = lw.names.fresh(f"{lw.name(src)}_{op}")
    lw.emit(t.Declare(acc, ct, kept.local_size))
    lw.slots(
        kept.local_size,
        lambda j: lw.emit(t.Set(t.Elem(acc, j, ct), _identity(op, src.type.dtype, ct))),
    )
    to_out = _reduce_map(layout, kept, axes)

    def own(i: t.Expr) -> None:
        target = t.Elem(acc, to_out(i), ct)
        lw.emit(t.Set(target, _combine(op, target, lw.element(src, i), ct)))

    lw.slots(layout.local_size, own)
    masks, shared = thread_groups(layout, axes, lw.target)
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
