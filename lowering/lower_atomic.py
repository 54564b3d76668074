"""Lowering of atomic adds to global memory.

A tile's atomic add is one relaxed atomic per element, issued by the first thread holding the
element (a replicated layout adds each element once) and masked at the tensor's edges as a
store is. The scalar form is one atomic by thread 0; the old value it returns reaches every
thread through a shared-memory cell:

    barrier                                        an earlier user of the cell is done with it
    thread 0: cell = atomic_add(&t[offsets], v)    (cell = 0 outside the tensor)
    barrier
    every thread: old = cell

The renderers spell the intrinsic ``atomic_add(address, value) -> old value`` (CUDA
``atomicAdd``, LLVM ``atomicrmw add``/``fadd``, both relaxed).
"""

from __future__ import annotations

from tilevm.dtypes import DataType
from tilevm.errors import KernelTypeError
from tilevm.ir.nodes import Instr
from tilevm.layouts import local
from tilevm.lowering import thread_ir as t
from tilevm.lowering.exprs import cmp, compute_type, const
from tilevm.lowering.lower import Lowerer, lowers
from tilevm.lowering.lower_memory import GlobalAccess


def atomic_scratch(ins: Instr) -> int:
    """Shared bytes an instruction needs for its atomic's result: one element."""
    if ins.op != "atomic_fetch_add":
        return 0
    return ins.out.type.dtype.storage.itemsize


def _check_target(lw: Lowerer, ins: Instr, dtype: DataType) -> None:
    if dtype.name in lw.target.atomic_add_dtypes:
        return
    have = ", ".join(sorted(lw.target.atomic_add_dtypes))
    raise KernelTypeError(
        f"{lw.target} has no atomic add of {dtype}",
        expected=f"a tensor of {have} (the atomic adds {lw.target} has)",
        found=f"a {dtype} tensor",
        hint="accumulate into an f32 tensor, or compile for a newer arch (f16 atomics need "
        "sm_70, bf16 sm_80)",
        location=ins.loc,
        code="atomic-dtype",
    )


def _atomic(mem: t.Mem, value: t.Expr) -> t.Call:
    """``atomic_add(&mem, value)``: the element's old value, as stored (``mem.dtype``)."""
    return t.Call("atomic_add", (t.Addr(mem, mem.dtype), value), mem.dtype)


@lowers("atomic_add")
def _atomic_add(lw: Lowerer, ins: Instr) -> None:
    tensor, value, *offsets = ins.args
    _check_target(lw, ins, tensor.type.dtype)
    layout = value.type.layout
    access = GlobalAccess(lw, tensor, layout, offsets)
    name = lw.name(value)

    def element(i: t.Expr) -> None:
        index = access.index(i)
        add = _atomic(access.mem(index), t.Elem(name, i, value.type.dtype))
        lw.emit(t.IfThen(access.inside(index), (t.Effect(add),)))

    with lw.first_holders(layout):
        lw.slots(layout.local_size, element)


@lowers("atomic_fetch_add")
def _atomic_fetch_add(lw: Lowerer, ins: Instr) -> None:
    tensor, value, *offsets = ins.args
    dtype = tensor.type.dtype
    _check_target(lw, ins, dtype)
    # the element is a one-element tile at ``offsets``
    access = GlobalAccess(lw, tensor, local(*[1] * len(offsets)), offsets)
    index = access.index(const(0))
    cell = t.Mem("shared", "tv_smem", const(0), dtype, lw.plan.offsets[ins])
    add = _atomic(access.mem(index), t.Encode(lw.scalar(value), dtype))
    outside = t.Store(cell, t.Encode(t.Const(0, compute_type(dtype)), dtype))
    lw.emit(t.Barrier())
    first = (t.IfThen(access.inside(index), (t.Store(cell, add),), (outside,)),)
    lw.emit(t.IfThen(cmp("eq", lw.tid, 0), first))
    lw.emit(t.Barrier())
    lw.emit(t.Declare(lw.name(ins.out), dtype, None, t.Load(cell, dtype)))
