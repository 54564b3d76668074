"""Lowering of asynchronous global -> shared copies (``tv.copy_async``, ``commit_async``,
``wait_async``).

The tile is spread over the block in runs of up to 16 bytes (``vector_layout``). Where the
target copies asynchronously (``target.async_copy_bytes``) and the facts prove the run's width
on both sides, each run is one asynchronous copy whose source byte count covers only the part
inside the tensor (the rest arrives as zeros, and a run wholly outside reads nothing).
Otherwise the copy goes through registers: an ordinary masked load and shared store, which
``wait_async``'s barrier makes visible all the same.
"""

from __future__ import annotations

from tilevm import dtypes as dts
from tilevm.ir.nodes import Instr, Var
from tilevm.ir.types import TileType
from tilevm.lowering import thread_ir as t
from tilevm.lowering.exprs import all_of, cmp, const, mul, sub
from tilevm.lowering.layout_defaults import vector_layout
from tilevm.lowering.lower import Lowerer, lowers
from tilevm.lowering.lower_memory import GlobalAccess, global_load, shared_store, user_access


@lowers("copy_async")
def _copy_async(lw: Lowerer, ins: Instr) -> None:
    smem, tensor = ins.args[:2]
    shape = ins.attr("shape")
    src_offsets = ins.args[2 : 2 + len(shape)]
    dst_offsets = ins.args[2 + len(shape) :]
    dtype = smem.type.dtype
    layout = vector_layout(shape, dtype, lw.threads, lw.target)
    src = GlobalAccess(lw, tensor, layout, src_offsets)
    dst = user_access(lw, smem, layout, dst_offsets)
    v = min(src.vector, dst.vector)
    width = v * dtype.bits // 8
    if src.packed or width not in lw.target.async_copy_bytes or dtype.bits % 8:
        staged = Var(f"{smem.name}_copy", TileType(dtype, tuple(shape), layout))
        global_load(lw, staged, src, t.Encode(t.Const(0, dts.i32), dtype))
        shared_store(lw, staged, dst)
        return
    with lw.first_holders(layout):  # replicated runs: the first holder copies
        lw.slots(layout.local_size, lambda i: _copy_run(lw, src, dst, i, v, width), step=v)


def _copy_run(lw: Lowerer, src: GlobalAccess, dst, i: t.Expr, v: int, width: int) -> None:
    index = src.index(i)
    last = len(index) - 1
    rows_inside = all_of(
        [cmp("ult", x, lw.shape_sym(src.tensor, d)) for d, x in enumerate(index)]
    )  # the run's first element is inside (so are its rows)
    remaining = sub(lw.shape_sym(src.tensor, last), index[last])
    elements = t.Call("min", (remaining, t.Const(v, remaining.dtype)), remaining.dtype)
    if elements.dtype != dts.i32:  # at most v: narrow it for the byte count
        elements = t.Convert(elements, dts.i32)
    nbytes = t.Select(rows_inside, mul(elements, width // v), const(0), dts.i32)
    # a copy of 0 source bytes reads nothing, so the address of a run outside may dangle
    call = t.Call(
        f"cp_async_{width}",
        (t.Addr(dst.mem(i), src.dtype), t.Addr(src.mem(index), src.dtype), nbytes),
        dts.i32,
    )
    lw.emit(t.Effect(call))


@lowers("commit_async")
def _commit_async(lw: Lowerer, ins: Instr) -> None:
    if lw.target.async_copy_bytes:
        lw.emit(t.Effect(t.Call("cp_async_commit", (), dts.i32)))


@lowers("wait_async")
def _wait_async(lw: Lowerer, ins: Instr) -> None:
    """This thread's copies land, then the barrier makes every thread's visible."""
    if lw.target.async_copy_bytes:
        pending = t.Const(int(ins.attr("pending")), dts.i32)
        lw.emit(t.Effect(t.Call("cp_async_wait", (pending,), dts.i32)))
    lw.emit(t.Barrier())
