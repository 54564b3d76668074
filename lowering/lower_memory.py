"""Lowering of global and shared memory accesses, and of layout conversions.

Each thread walks its slots in runs: a run is ``vector`` consecutive slots that hold consecutive
elements of the last dimension, accessed with one aligned load or store. The width is the
widest that every fact proves: the layout's innermost slot mode, the target's widest access,
the tensor's contiguity and alignment (from the launch's specialization), the divisibility of
the offsets and strides (``divisibility``). Edge tiles check bounds once per run; a run that
crosses the edge falls back to per-element accesses. Sub-byte elements in global memory are
bit-packed and use bit-field loads and (atomic) stores; shared memory keeps one byte each.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import gcd

from tilevm import dtypes as dts
from tilevm.dtypes import DataType
from tilevm.ir.nodes import Instr, Operand, Var
from tilevm.ir.types import TileType
from tilevm.layouts import RegisterLayout, SharedLayout
from tilevm.lowering import thread_ir as t
from tilevm.lowering.exprs import add, all_of, cmp, const, coords, mul, slot_map
from tilevm.lowering.layout_rules import reads_in_place
from tilevm.lowering.lower import Lowerer, TensorFacts, lowers

NATIVE_BITS = (8, 16, 32, 64)


def run_length(layout: RegisterLayout) -> int:
    """Consecutive slots holding consecutive elements of the last dimension (1 if none)."""
    if not layout.local_modes:
        return 1
    inner = layout.local_modes[-1]
    if not layout.modes[-1] or inner != len(layout.mode_sizes) - 1:  # the last dim's last mode
        return 1
    return layout.mode_sizes[inner]


def _pow2_floor(n: int) -> int:
    return 1 << (max(n, 1).bit_length() - 1)


def _pow2_divisor(n: int) -> int:
    return n & -n if n else 1 << 16


def vector_width(
    lw: Lowerer, layout: RegisterLayout, dtype: DataType, divisors: Sequence[int]
) -> int:
    """The widest run (elements, a power of two) every fact allows; ``divisors`` are what is
    known to divide the run's starting element offset (offsets, strides, alignment)."""
    if dtype.bits not in NATIVE_BITS:
        return 1
    width = _pow2_floor(max(1, lw.target.vector_bytes * 8 // dtype.bits))
    width = min(width, _pow2_divisor(run_length(layout)))
    for d in divisors:
        width = min(width, _pow2_divisor(d))
    return max(1, width)


# ----- global memory --------------------------------------------------------------------------


class GlobalAccess:
    """Addresses and bounds of a tile at ``offsets`` of global tensor ``tensor``."""

    def __init__(
        self, lw: Lowerer, tensor: Var, layout: RegisterLayout, offsets: Sequence[Operand]
    ):
        self.lw, self.tensor, self.layout = lw, tensor, layout
        self.dtype = tensor.type.dtype
        rank = tensor.type.rank
        offsets_ = [lw.index(o) for o in offsets]
        # 64-bit arithmetic where the tensor passes 2**31 elements of offset or an offset is
        # 64-bit: offset + coordinate is then exact (no 32-bit wrap), as the semantics say
        wide = tensor.type.wide or any(o.dtype.bits > 32 for o in offsets_)
        self.index_dtype = dts.i64 if wide else dts.i32
        self.offsets = [widen(o, self.index_dtype) for o in offsets_]
        facts = lw.facts.get(tensor.name, TensorFacts())
        packed = self.dtype.bits not in NATIVE_BITS
        divisors = [lw.div.of(offsets[-1])]
        if rank > 1:
            divisors.append(facts.stride_align)
        if not facts.contiguous or not facts.aligned16 or packed:
            divisors.append(1)
        elif self.dtype.bits * 16 > 128:  # the base is 16-byte aligned: so many elements
            divisors.append(max(1, 128 // self.dtype.bits))
        self.vector = vector_width(lw, layout, self.dtype, divisors)
        self.packed = packed
        # a run starts at a multiple of its width; when the last extent is one too, a run is
        # all inside or all outside: no element-by-element edge path
        self.whole_runs = self.vector > 1 and facts.extent_align % self.vector == 0

    def index(self, slot: t.Expr) -> list[t.Expr]:
        return [
            add(o, widen(c, self.index_dtype))
            for o, c in zip(self.offsets, coords(self.layout, self.lw.tid, slot))
        ]

    def mem(self, index: list[t.Expr]) -> t.Mem:
        offset: t.Expr = const(0)
        for d, i in enumerate(index):
            offset = add(offset, mul(i, self.lw.stride_sym(self.tensor, d)))
        return t.Mem("global", self.lw.name(self.tensor), offset, self.dtype)

    def inside(self, index: list[t.Expr], extra: int = 0) -> t.Expr:
        """All coordinates within the tensor (unsigned compares catch negatives too); the
        last one ``extra`` elements further as well."""
        conds = []
        for d, i in enumerate(index):
            probe = add(i, extra) if d == len(index) - 1 and extra else i
            conds.append(cmp("ult", probe, self.lw.shape_sym(self.tensor, d)))
        return all_of(conds)

    def load(self, index: list[t.Expr]) -> t.Expr:
        if not self.packed:
            return t.Load(self.mem(index), self.dtype)
        call = t.Call("load_bits", self._bit_args(index), dts.u32)
        return t.FromBits(call, self.dtype)

    def store(self, index: list[t.Expr], value: t.Expr) -> t.Stmt:
        if not self.packed:
            return t.Store(self.mem(index), value)
        bits = t.ToBits(value, dts.u32)
        return t.Effect(t.Call("store_bits", (*self._bit_args(index), bits), dts.u32))

    def _bit_args(self, index: list[t.Expr]) -> tuple[t.Expr, ...]:
        element = t.Convert(self.mem(index).offset, dts.i64)
        position = t.Bin("mul", element, t.Const(self.dtype.bits, dts.i64), dts.i64)
        return (t.Sym(self.lw.name(self.tensor), dts.u8), position, const(self.dtype.bits))


def widen(e: t.Expr, dtype: DataType) -> t.Expr:
    """``e`` as an index of ``dtype`` (i32 indices sign-extend to i64)."""
    if e.dtype == dtype:
        return e
    if isinstance(e, t.Const):
        return t.Const(e.value, dtype)
    return t.Convert(e, dtype)


@lowers("load")
def _load(lw: Lowerer, ins: Instr) -> None:
    tensor, other, *offsets = ins.args
    access = GlobalAccess(lw, tensor, ins.out.type.layout, offsets)
    global_load(lw, ins.out, access, t.Encode(lw.scalar(other), ins.out.type.dtype))


def global_load(lw: Lowerer, out: Var, access: GlobalAccess, fill: t.Expr) -> None:
    """Declare ``out`` and fill it from ``access``; elements outside the tensor get ``fill``."""
    layout = out.type.layout
    name = lw.declare_tile(out)
    v = access.vector

    def element(i: t.Expr) -> list[t.Stmt]:
        index = access.index(i)
        target = t.Elem(name, i, out.type.dtype)
        return [
            t.Set(target, fill),
            t.IfThen(access.inside(index), (t.Set(target, access.load(index)),)),
        ]

    def run(i: t.Expr) -> None:
        if v == 1:
            for stmt in element(i):
                lw.emit(stmt)
            return
        index = access.index(i)
        fast = t.VecLoad(name, i, access.mem(index), v)
        with lw.block() as slow:
            if access.whole_runs:  # the whole run is outside: one vector of the fill value
                ref = t.Ref(name, i, out.type.dtype)
                lw.emit(t.Effect(t.Call("vfill", (ref, fill, const(v)), out.type.dtype)))
            else:
                lw.slots(v, lambda j: [lw.emit(s) for s in element(add(i, j))], var="tv_j")
        lw.emit(t.IfThen(access.inside(index, v - 1), (fast,), tuple(slow)))

    lw.slots(layout.local_size, run, step=v)


@lowers("store")
def _store(lw: Lowerer, ins: Instr) -> None:
    tensor, value, *offsets = ins.args
    layout = value.type.layout
    access = GlobalAccess(lw, tensor, layout, offsets)
    name = lw.name(value)
    v = access.vector

    def element(i: t.Expr) -> t.Stmt:
        index = access.index(i)
        return t.IfThen(
            access.inside(index), (access.store(index, t.Elem(name, i, value.type.dtype)),)
        )

    def run(i: t.Expr) -> None:
        if v == 1:
            lw.emit(element(i))
            return
        index = access.index(i)
        fast = t.VecStore(access.mem(index), name, i, v)
        with lw.block() as slow:
            if not access.whole_runs:
                lw.slots(v, lambda j: lw.emit(element(add(i, j))), var="tv_j")
        lw.emit(t.IfThen(access.inside(index, v - 1), (fast,), tuple(slow)))

    with lw.first_holders(layout):
        lw.slots(layout.local_size, run, step=v)


# ----- shared memory --------------------------------------------------------------------------


class SharedAccess:
    def __init__(
        self,
        lw: Lowerer,
        layout: SharedLayout,
        base_bytes: int,
        dtype: DataType,
        tile: RegisterLayout,
        offsets: Sequence[t.Expr],
        offset_divisors: Sequence[int],
    ):
        self.lw, self.layout, self.base, self.dtype, self.tile = lw, layout, base_bytes, dtype, tile
        self.offsets = list(offsets)
        strides = layout.strides
        divisors = [gcd(d * s, 1 << 16) for d, s in zip(offset_divisors, strides)]
        divisors += list(strides[:-1]) + [base_bytes * 8 // max(dtype.storage.itemsize * 8, 1)]
        if strides[-1] != 1:
            divisors.append(1)
        if layout.swizzle is not None:
            divisors.append(1 << layout.swizzle.base)
        storage = dts.int_type(dtype.storage.itemsize * 8, signed=False)
        self.vector = vector_width(lw, tile, storage, divisors)

    def mem(self, slot: t.Expr) -> t.Mem:
        return self.at(coords(self.tile, self.lw.tid, slot))

    def at(self, tile_index: Sequence[t.Expr]) -> t.Mem:
        """The element at ``tile_index`` of the tile (which covers the trailing dimensions)."""
        lead = len(self.offsets) - len(tile_index)
        trailing = [add(o, c) for o, c in zip(self.offsets[lead:], tile_index)]
        index = self.offsets[:lead] + trailing
        sw = self.layout.swizzle
        # A swizzle permutes offsets within blocks of ``period`` elements, so terms whose stride
        # is a multiple of it (a pipeline stage, whole swizzle blocks of rows) are added after
        # it: the swizzled part stays loop-invariant and the compiler hoists it.
        period = 1 << (sw.base + sw.shift + sw.bits) if sw is not None else 1
        inner: t.Expr = const(0)
        outer: t.Expr = const(0)
        for i, s in zip(index, self.layout.strides):
            if s % period == 0:
                outer = add(outer, mul(i, s))
            else:
                inner = add(inner, mul(i, s))
        if sw is not None:
            mask = const(((1 << sw.bits) - 1) << sw.base)
            moved = t.Bin("and", t.Bin("shr", inner, const(sw.shift), dts.i32), mask, dts.i32)
            inner = t.Bin("xor", inner, moved, dts.i32)
        return t.Mem("shared", "tv_smem", add(inner, outer), self.dtype, self.base)


def shared_load(lw: Lowerer, out: Var, access: SharedAccess) -> None:
    name = lw.declare_tile(out)
    v = access.vector

    def run(i: t.Expr) -> None:
        if v > 1:
            lw.emit(t.VecLoad(name, i, access.mem(i), v))
        else:
            lw.emit(t.Set(t.Elem(name, i, out.type.dtype), t.Load(access.mem(i), out.type.dtype)))

    lw.slots(out.type.layout.local_size, run, step=v)


def shared_store(lw: Lowerer, value: Var, access: SharedAccess) -> None:
    name = lw.name(value)
    layout = value.type.layout
    v = access.vector

    def run(i: t.Expr) -> None:
        if v > 1:
            lw.emit(t.VecStore(access.mem(i), name, i, v))
        else:
            lw.emit(t.Store(access.mem(i), t.Elem(name, i, value.type.dtype)))

    with lw.first_holders(layout):
        lw.slots(layout.local_size, run, step=v)


def user_access(lw: Lowerer, smem: Var, tile: RegisterLayout, offsets: Sequence[Operand]):
    return SharedAccess(
        lw,
        smem.type.layout,
        lw.plan.offsets[smem],
        smem.type.dtype,
        tile,
        [lw.index(o) for o in offsets],
        [lw.div.of(o) for o in offsets],
    )


def load_shared_plain(lw: Lowerer, ins: Instr) -> None:
    """A shared load through ordinary (vector) accesses; ``lower_matrix_load`` tries the
    target's matrix loads first."""
    smem, *offsets = ins.args
    shared_load(lw, ins.out, user_access(lw, smem, ins.out.type.layout, offsets))


@lowers("store_shared")
def _store_shared(lw: Lowerer, ins: Instr) -> None:
    smem, value, *offsets = ins.args
    shared_store(lw, value, user_access(lw, smem, value.type.layout, offsets))


def row_major(shape: Sequence[int]) -> SharedLayout:
    strides, step = [], 1
    for n in reversed(shape):
        strides.insert(0, step)
        step *= n
    return SharedLayout(tuple(shape), tuple(strides))


def in_registers(src: RegisterLayout, out: RegisterLayout) -> bool:
    """A conversion where every thread already holds what it needs: register moves only."""
    return src.shape == out.shape and reads_in_place(out, src)


def conversion_bytes(ins: Instr) -> int:
    if ins.op != "convert" or in_registers(ins.args[0].type.layout, ins.out.type.layout):
        return 0
    tile = ins.args[0].type
    return tile.layout.size * max(1, tile.dtype.storage.itemsize)


@lowers("convert")
def _convert(lw: Lowerer, ins: Instr) -> None:
    """Through shared memory in row-major order (which also reshapes): every thread writes what
    it holds, then reads what it needs. When each thread holds what it needs already (the two
    layouts order a thread's slots differently), a copy between its registers."""
    src, out = ins.args[0], ins.out
    if in_registers(src.type.layout, out.type.layout):
        _permute_registers(lw, src, out)
        return
    base = lw.plan.offsets[ins]
    zeros = [const(0)] * len(src.type.shape)
    lw.emit(t.Barrier())  # the scratch bytes may still be read by an earlier user
    write = SharedAccess(
        lw, row_major(src.type.shape), base, src.type.dtype, src.type.layout, zeros, [0] * 8
    )
    shared_store(lw, src, write)
    lw.emit(t.Barrier())
    zeros = [const(0)] * len(out.type.shape)
    read = SharedAccess(
        lw, row_major(out.type.shape), base, out.type.dtype, out.type.layout, zeros, [0] * 8
    )
    shared_load(lw, out, read)


def _permute_registers(lw: Lowerer, src: Var, out: Var) -> None:
    permute = slot_map(out.type.layout, src.type.layout, lambda index: index)
    name, source, dtype = lw.declare_tile(out), lw.name(src), out.type.dtype
    lw.slots(
        out.type.layout.local_size,
        lambda i: lw.emit(t.Set(t.Elem(name, i, dtype), t.Elem(source, permute(i), dtype))),
    )


def _printable(value: t.Expr, dtype: DataType) -> tuple[str, t.Expr]:
    if dtype.is_float:
        return "%g", t.Convert(value, dts.f64)
    return "%lld", t.Convert(value, dts.i64)


@lowers("print")
def _print(lw: Lowerer, ins: Instr) -> None:
    """``tv.print``: thread 0 prints the line (scalars inline); each element of a tile is printed
    by its first holder, one line per element (GPU printf lines from different threads come in
    no particular order)."""
    block = [t.Call("block_id", (const(axis),), dts.i32) for axis in range(3)]
    head = "[block (%d, %d, %d)]"
    values = iter(ins.args)
    parts, args, tiles = [], list(block), []
    for label in ins.attr("labels"):
        if not label.startswith("%"):
            parts.append(label.replace("%", "%%"))
            continue
        op = next(values)
        if isinstance(op.type, TileType):
            parts.append(f"{label.replace('%', '%%')}=<tile, below>")
            tiles.append((label, op))
        else:
            spec, expr = _printable(lw.scalar(op), op.type.dtype)
            parts.append(f"{label.replace('%', '%%')}={spec}")
            args.append(expr)
    line = t.Const(" ".join([head, *parts]) + "\n", dts.u8)
    lw.emit(t.IfThen(cmp("eq", lw.tid, 0), (t.Effect(t.Call("printf", (line, *args), dts.i32)),)))
    for label, op in tiles:
        layout = op.type.layout
        with lw.first_holders(layout):

            def slot(i: t.Expr, op=op, label=label, layout=layout) -> None:
                index = coords(layout, lw.tid, i)
                spec, value = _printable(lw.element(op, i), op.type.dtype)
                where = ", ".join(["%d"] * len(index))
                fmt = t.Const(f"{head} {label.replace('%', '%%')}[{where}]={spec}\n", dts.u8)
                call = t.Call("printf", (fmt, *block, *index, value), dts.i32)
                lw.emit(t.Effect(call))

            lw.slots(layout.local_size, slot)
