"""Executes a kernel's VM IR block by block; each instruction runs for the whole block at once."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tilevm import dtypes as dts
from tilevm.dtypes import DataType
from tilevm.errors import TilevmError
from tilevm.interp import accumulate, arith
from tilevm.interp.values import GlobalTensor, Scalar, Shared, Tile
from tilevm.ir.nodes import Assign, For, If, Instr, KernelIR, Literal, Operand, Stmt, Var, While
from tilevm.ir.types import ScalarType, TileType, accumulator_dtype
from tilevm.layouts import RegisterLayout
from tilevm.layouts.defaults import default_layout

Value = Tile | Scalar | Shared | GlobalTensor


class RuntimeFault(TilevmError, RuntimeError):
    """A kernel did something its semantics forbid (an out-of-bounds shared access, a false
    tv.assume) while running on the interpreter."""

    code = "runtime"


class Interpreter:
    def __init__(self, kernel: KernelIR, grid: tuple[int, int, int]) -> None:
        self.kernel = kernel
        self.grid = grid
        self.threads = kernel.num_threads
        self.block: tuple[int, int, int] = (0, 0, 0)
        self.env: dict[Var, Value] = {}
        self._layouts: dict[tuple[int, ...], RegisterLayout] = {}

    def run(self, args: dict[Var, Value]) -> None:
        for block in itertools.product(*(range(n) for n in self.grid)):
            self.block = block
            self.env = dict(args)
            self.body(self.kernel.body)

    # ----- statements -------------------------------------------------------------------------
    def body(self, stmts: Sequence[Stmt]) -> None:
        for stmt in stmts:
            if isinstance(stmt, Instr):
                self.instr(stmt)
            elif isinstance(stmt, Assign):
                value = self.operand(stmt.value)
                if isinstance(value, Tile):
                    value = self.relayout(value, self.layout_of(stmt.target.type))
                self.env[stmt.target] = value
            elif isinstance(stmt, For):
                start, stop, step = (self.scalar(o) for o in (stmt.start, stmt.stop, stmt.step))
                if step == 0:
                    raise self.fault(stmt, "range() step is zero")
                for i in range(start, stop, step):
                    self.env[stmt.var] = Scalar(dts.i32, i)
                    self.body(stmt.body)
            elif isinstance(stmt, If):
                self.body(stmt.then_body if self.scalar(stmt.cond) else stmt.else_body)
            elif isinstance(stmt, While):
                while True:
                    self.body(stmt.cond_body)
                    if not self.scalar(stmt.cond):
                        break
                    self.body(stmt.body)

    def fault(self, stmt: Stmt, message: str) -> RuntimeFault:
        return RuntimeFault(f"{message} (block {self.block})", location=stmt.loc)

    # ----- operands ---------------------------------------------------------------------------
    def operand(self, op: Operand) -> Value:
        if isinstance(op, Literal):
            return Scalar(op.dtype, op.value)
        return self.env[op]

    def scalar(self, op: Operand) -> Any:
        value = self.operand(op)
        assert isinstance(value, Scalar), value
        return value.value

    def layout_of(self, type_: TileType) -> RegisterLayout:
        if type_.layout is not None:
            return type_.layout
        if type_.shape not in self._layouts:
            self._layouts[type_.shape] = default_layout(type_.shape, self.threads)
        return self._layouts[type_.shape]

    def values(self, op: Operand) -> np.ndarray:
        """An operand's logical values (scalars as 0-d arrays)."""
        value = self.operand(op)
        if isinstance(value, Scalar):
            return np.asarray(value.value)
        return value.values()

    def result(self, out: Var, values: np.ndarray, overflow: str | None = None) -> None:
        dtype = out.type.dtype
        policy = overflow or ("wrap" if dtype.is_integer else "default")
        if isinstance(out.type, ScalarType):
            code = dtype.encode(np.asarray(values).reshape(1), overflow=policy)
            self.env[out] = Scalar(dtype, _python(dtype.decode(code)[0]))
            return
        layout = self.layout_of(out.type)
        codes = dtype.encode(np.broadcast_to(values, layout.shape), overflow=policy)
        self.env[out] = Tile.from_codes(dtype, layout, codes)

    def relayout(self, tile: Tile, layout: RegisterLayout) -> Tile:
        if tile.layout == layout:
            return tile
        return Tile.from_codes(tile.dtype, layout, tile.codes())

    # ----- instructions -----------------------------------------------------------------------
    def instr(self, ins: Instr) -> None:
        handler = _HANDLERS.get(ins.op)
        if handler is None:  # pragma: no cover - the verifier rejects unknown ops
            raise self.fault(ins, f"the interpreter has no instruction {ins.op!r}")
        handler(self, ins)


_HANDLERS: dict[str, Callable[[Interpreter, Instr], None]] = {}


def handles(*names: str) -> Callable:
    def register(fn: Callable[[Interpreter, Instr], None]) -> Callable:
        for name in names:
            _HANDLERS[name] = fn
        return fn

    return register


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@handles("const")
def _const(it: Interpreter, ins: Instr) -> None:
    it.result(ins.out, it.values(ins.args[0]))


@handles("block_id")
def _block_id(it: Interpreter, ins: Instr) -> None:
    it.env[ins.out] = Scalar(dts.i32, it.block[ins.attr("axis")])


@handles("num_blocks")
def _num_blocks(it: Interpreter, ins: Instr) -> None:
    it.env[ins.out] = Scalar(dts.i32, it.grid[ins.attr("axis")])


@handles("dim", "stride")
def _dim(it: Interpreter, ins: Instr) -> None:
    tensor = it.operand(ins.args[0])
    sizes = tensor.shape if ins.op == "dim" else tensor.strides
    it.env[ins.out] = Scalar(dts.i32, int(sizes[ins.attr("axis")]))


@handles("binary")
def _binary(it: Interpreter, ins: Instr) -> None:
    dtype = ins.out.type.dtype
    a, b = (it.values(x) for x in ins.args)
    it.result(ins.out, arith.binary(ins.attr("op"), a, b, dtype))


@handles("compare")
def _compare(it: Interpreter, ins: Instr) -> None:
    dtype = _operand_dtype(ins.args[0])
    a, b = (it.values(x) for x in ins.args)
    it.result(ins.out, arith.compare(ins.attr("op"), a, b, dtype))


def _operand_dtype(op: Operand) -> DataType:
    return op.dtype if isinstance(op, Literal) else op.type.dtype


@handles("unary")
def _unary(it: Interpreter, ins: Instr) -> None:
    it.result(ins.out, arith.unary(ins.attr("op"), it.values(ins.args[0]), ins.out.type.dtype))


@handles("where")
def _where(it: Interpreter, ins: Instr) -> None:
    cond, a, b = (it.values(x) for x in ins.args)
    it.result(ins.out, np.where(cond.astype(bool), a, b))


@handles("cast")
def _cast(it: Interpreter, ins: Instr) -> None:
    src, dst = _operand_dtype(ins.args[0]), ins.out.type.dtype
    values = arith.convert(it.values(ins.args[0]), src, dst)
    it.result(ins.out, values, overflow="saturate" if src.is_float and dst.is_integer else None)


@handles("full")
def _full(it: Interpreter, ins: Instr) -> None:
    it.result(ins.out, it.values(ins.args[0]))


@handles("arange")
def _arange(it: Interpreter, ins: Instr) -> None:
    (n,) = ins.out.type.shape
    it.result(ins.out, np.arange(n) + ins.attr("start"))


@handles("annotate")
def _annotate(it: Interpreter, ins: Instr) -> None:
    it.env[ins.out] = it.relayout(it.operand(ins.args[0]), ins.out.type.layout)


@handles("convert")
def _convert(it: Interpreter, ins: Instr) -> None:
    """A layout change inserted by the lowering (reshaping through row-major order)."""
    tile = it.operand(ins.args[0])
    codes = tile.codes().reshape(ins.out.type.shape)
    it.env[ins.out] = Tile.from_codes(tile.dtype, ins.out.type.layout, codes)


@handles("reshape")
def _reshape(it: Interpreter, ins: Instr) -> None:
    tile = it.operand(ins.args[0])
    layout = it.layout_of(ins.out.type)
    it.env[ins.out] = Tile.from_codes(tile.dtype, layout, tile.codes().reshape(ins.out.type.shape))


@handles("transpose")
def _transpose(it: Interpreter, ins: Instr) -> None:
    tile = it.operand(ins.args[0])
    layout = it.layout_of(ins.out.type)
    it.env[ins.out] = Tile.from_codes(tile.dtype, layout, tile.codes().transpose(ins.attr("dims")))


@handles("view")
def _view(it: Interpreter, ins: Instr) -> None:
    """Each thread's slots, concatenated as one bit string (slot 0 in the lowest bits), read back
    as slots of the new dtype: what a register reinterpretation does on hardware."""
    tile = it.operand(ins.args[0])
    dtype, layout = ins.out.type.dtype, ins.out.type.layout
    stream = dts.pack_codes(tile.bits.reshape(-1), tile.dtype.bits)
    codes = dts.unpack_codes(stream, dtype.bits, layout.num_threads * layout.local_size)
    it.env[ins.out] = Tile(
        dtype, layout, codes.astype(dtype.storage).reshape(layout.num_threads, -1)
    )


@handles("reduce")
def _reduce(it: Interpreter, ins: Instr) -> None:
    axes, keepdims, op = ins.attr("axes"), ins.attr("keepdims"), ins.attr("op")
    if op == "sum":  # partial sums rounded to the accumulator, in the lowering's order
        acc = accumulator_dtype(ins.out.type.dtype)
        tile = it.operand(ins.args[0])
        result = accumulate.sum_tile(tile, axes, keepdims, acc, it.kernel.warp_size)
    else:
        values = it.values(ins.args[0])
        result = (np.max if op == "max" else np.min)(values, axis=axes, keepdims=keepdims)
    it.result(ins.out, result)


@handles("dot")
def _dot(it: Interpreter, ins: Instr) -> None:
    a, b, c = (it.values(x) for x in ins.args)
    it.result(ins.out, accumulate.dot(a, b, c, accumulator_dtype(ins.out.type.dtype)))


def _tile_indices(shape: Sequence[int], offsets: Sequence[int]) -> tuple[np.ndarray, ...]:
    """Indices of a tile at ``offsets``; a tile of lower rank covers the trailing dimensions
    (the leading offsets pick one index each)."""
    lead = len(offsets) - len(shape)
    grids = np.indices(shape)
    leading = tuple(np.full(shape, o, dtype=np.int64) for o in offsets[:lead])
    return leading + tuple(g + o for g, o in zip(grids, offsets[lead:]))


def _inside(index: tuple[np.ndarray, ...], bounds: Sequence[int]) -> np.ndarray:
    inside = np.ones(index[0].shape, dtype=bool)
    for idx, n in zip(index, bounds):
        inside &= (idx >= 0) & (idx < n)
    return inside


def _gather(tensor: GlobalTensor, shape, offsets: Sequence[int], fill: float) -> np.ndarray:
    """The codes of a tile of ``tensor`` at ``offsets``; elements outside read as ``fill``."""
    index = _tile_indices(shape, offsets)
    inside = _inside(index, tensor.shape)
    safe = tuple(np.where(inside, idx, 0) for idx in index)
    codes = tensor.codes[safe] if tensor.codes.size else np.zeros(shape, tensor.codes.dtype)
    fill_code = tensor.dtype.encode(np.asarray(fill).reshape(1))[0]
    return np.where(inside, codes, fill_code)


@handles("load")
def _load(it: Interpreter, ins: Instr) -> None:
    tensor: GlobalTensor = it.operand(ins.args[0])
    offsets = [it.scalar(o) for o in ins.args[2:]]
    codes = _gather(tensor, ins.out.type.shape, offsets, it.values(ins.args[1]))
    it.env[ins.out] = Tile.from_codes(tensor.dtype, it.layout_of(ins.out.type), codes)


@handles("store")
def _store(it: Interpreter, ins: Instr) -> None:
    tensor: GlobalTensor = it.operand(ins.args[0])
    tile: Tile = it.operand(ins.args[1])
    offsets = [it.scalar(o) for o in ins.args[2:]]
    index = _tile_indices(tile.shape, offsets)
    inside = _inside(index, tensor.shape)
    tensor.codes[tuple(idx[inside] for idx in index)] = tile.codes()[inside]


def _added(dtype: DataType, codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The codes of ``codes + values``: one rounding (floats), or wrapping (integers)."""
    total = arith.binary("add", dtype.decode(codes), values, dtype)
    return dtype.encode(total, overflow="wrap" if dtype.is_integer else "default")


@handles("atomic_add")
def _atomic_add(it: Interpreter, ins: Instr) -> None:
    """Blocks run one after another here, so each element's adds happen in block order."""
    tensor: GlobalTensor = it.operand(ins.args[0])
    tile: Tile = it.operand(ins.args[1])
    offsets = [it.scalar(o) for o in ins.args[2:]]
    index = _tile_indices(tile.shape, offsets)
    inside = _inside(index, tensor.shape)
    where = tuple(idx[inside] for idx in index)
    tensor.codes[where] = _added(tensor.dtype, tensor.codes[where], tile.values()[inside])


@handles("atomic_fetch_add")
def _atomic_fetch_add(it: Interpreter, ins: Instr) -> None:
    """One add; the old value in blocks' order (0 outside the tensor, where nothing is added)."""
    tensor: GlobalTensor = it.operand(ins.args[0])
    index = tuple(it.scalar(o) for o in ins.args[2:])
    if not all(0 <= i < n for i, n in zip(index, tensor.shape)):
        it.result(ins.out, np.zeros(()))
        return
    old = tensor.codes[index]
    value = it.values(ins.args[1]).reshape(1)
    tensor.codes[index] = _added(tensor.dtype, np.reshape(old, 1), value)[0]
    it.result(ins.out, tensor.dtype.decode(np.reshape(old, 1)))


@handles("shared")
def _shared(it: Interpreter, ins: Instr) -> None:
    layout = ins.out.type.layout
    # fresh shared memory holds garbage: poison it so reads before writes are visible in tests
    poison = np.full(
        layout.cosize, np.iinfo(ins.out.type.dtype.storage).max, ins.out.type.dtype.storage
    )
    poison &= ins.out.type.dtype.storage.type((1 << ins.out.type.dtype.bits) - 1)
    it.env[ins.out] = Shared(ins.out.type.dtype, layout, poison)


def _shared_offsets(
    it: Interpreter, ins: Instr, smem: Shared, shape: Sequence[int], offsets: Sequence[int]
) -> np.ndarray:
    index = _tile_indices(shape, offsets)
    for d, (idx, n) in enumerate(zip(index, smem.layout.shape)):
        if idx.min() < 0 or idx.max() >= n:
            raise it.fault(
                ins,
                f"shared access out of bounds in dimension {d}: indices "
                f"{int(idx.min())}..{int(idx.max())} of a shared tile of shape "
                f"{list(smem.layout.shape)}",
            )
    linear = sum(idx * s for idx, s in zip(index, smem.layout.strides))
    return smem.layout.swizzle(linear) if smem.layout.swizzle else linear


@handles("load_shared")
def _load_shared(it: Interpreter, ins: Instr) -> None:
    smem: Shared = it.operand(ins.args[0])
    offsets = [it.scalar(o) for o in ins.args[1:]]
    where = _shared_offsets(it, ins, smem, ins.out.type.shape, offsets)
    it.env[ins.out] = Tile.from_codes(smem.dtype, it.layout_of(ins.out.type), smem.codes[where])


@handles("store_shared")
def _store_shared(it: Interpreter, ins: Instr) -> None:
    smem: Shared = it.operand(ins.args[0])
    tile: Tile = it.operand(ins.args[1])
    offsets = [it.scalar(o) for o in ins.args[2:]]
    where = _shared_offsets(it, ins, smem, tile.shape, offsets)
    smem.codes[where] = tile.codes()


@handles("sync", "commit_async", "wait_async")
def _sync(it: Interpreter, ins: Instr) -> None:
    """Instructions already run for the whole block at once: every write is visible (an
    asynchronous copy is complete when it returns)."""


@handles("copy_async")
def _copy_async(it: Interpreter, ins: Instr) -> None:
    smem: Shared = it.operand(ins.args[0])
    tensor: GlobalTensor = it.operand(ins.args[1])
    shape = ins.attr("shape")
    rank = len(shape)
    src_offsets = [it.scalar(o) for o in ins.args[2 : 2 + rank]]
    dst_offsets = [it.scalar(o) for o in ins.args[2 + rank :]]
    codes = _gather(tensor, shape, src_offsets, 0.0)
    smem.codes[_shared_offsets(it, ins, smem, shape, dst_offsets)] = codes


@handles("assume")
def _assume(it: Interpreter, ins: Instr) -> None:
    if not it.scalar(ins.args[0]):
        raise it.fault(ins, "tv.assume(...) does not hold")


@handles("print")
def _print(it: Interpreter, ins: Instr) -> None:
    values = iter(ins.args)
    parts = []
    for label in ins.attr("labels"):
        if label.startswith("%"):
            parts.append(f"{label}={it.values(next(values))}")
        else:
            parts.append(label)
    print(f"[block {it.block}]", *parts)
