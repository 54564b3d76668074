"""The instructions of the language: type checks, constant folding, emission."""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from tilevm.dtypes import DataType
from tilevm.errors import KernelTypeError, KernelValueError, ShapeError
from tilevm.frontend.builder import (
    ARITH,
    BITWISE,
    BOOL,
    BOOL_UNARY,
    COMPARE,
    FLOAT_UNARY,
    INDEX,
    INT_UNARY,
    Builder,
    describe,
)
from tilevm.ir.math import FLOAT_MATH, float_math
from tilevm.ir.nodes import Literal, Var
from tilevm.ir.types import ATOMIC_ADD_DTYPES, ScalarType, SharedType, TileType
from tilevm.layouts import RegisterLayout, SharedLayout, swizzled_row_major

_PY_BINARY = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
    "floordiv": operator.floordiv,
    "mod": operator.mod,
    "pow": operator.pow,
    "and": operator.and_,
    "or": operator.or_,
    "xor": operator.xor,
    "lshift": operator.lshift,
    "rshift": operator.rshift,
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "maximum": max,
    "minimum": min,
}


def is_runtime(*values: Any) -> bool:
    return any(isinstance(v, Var) for v in values)


def binary(b: Builder, op: str, lhs: Any, rhs: Any, approx: bool = False) -> Any:
    """``lhs op rhs``; ``approx`` (``tv.fdiv``) lets GPUs divide with a reciprocal estimate."""
    if not is_runtime(lhs, rhs):
        if op in ("lshift", "rshift") and isinstance(rhs, (int, np.integer)) and rhs < 0:
            raise _negative_shift(b, op, lhs, rhs)
        return _fold(b, op, lhs, rhs)
    dtype, args = b.unify(lhs, rhs, what=f"'{op}'")
    if op == "div" and not dtype.is_float:
        raise b.type_error(
            "'/' divides floats",
            expected="float operands",
            found=f"{dtype} operands",
            hint="use // for integer division, or convert with .to(tv.f32)",
        )
    if op in BITWISE and not dtype.is_integer:
        raise b.type_error(f"'{op}' needs integer operands", expected="integers", found=str(dtype))
    shape = b.broadcast_shape(lhs, rhs, what=f"'{op}'")
    out_dtype = BOOL if op in COMPARE else dtype
    op_kind = "compare" if op in COMPARE else "binary"
    assert op in ARITH | BITWISE | COMPARE, op
    attrs = {"approx": True} if approx else {}  # absent when exact: the IR reads as before
    return b.instr(op_kind, b.result_type(out_dtype, shape), args, name=op, op=op, **attrs)


def _fold(b: Builder, op: str, lhs: Any, rhs: Any) -> Any:
    """A binary operation on compile-time values, as Python computes it, except that integer
    ``//`` and ``%`` by zero give 0 and ``lhs`` as at run time; what Python refuses is an
    error at the kernel's line."""
    ints = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (lhs, rhs))
    if ints and op in ("floordiv", "mod") and rhs == 0:
        return 0 if op == "floordiv" else lhs
    try:
        return _PY_BINARY[op](lhs, rhs)
    except ZeroDivisionError:
        raise KernelValueError(
            f"a compile-time division by zero: {lhs!r} {_SYMBOLS.get(op, op)} {rhs!r}",
            expected="a non-zero divisor",
            found=repr(rhs),
            hint="integer // and % by 0 give 0 and the dividend; for a float, compute it at run "
            "time (a tensor or scalar value) to get IEEE infinities",
            location=b.loc,
            code="division-by-zero",
        ) from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise b.type_error(
            f"compile-time {_SYMBOLS.get(op, op)} of {describe(lhs)} and {describe(rhs)}: {exc}",
            expected="operands Python can combine",
            found=f"{describe(lhs)}, {describe(rhs)}",
        ) from None


_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "floordiv": "//", "mod": "%",
            "pow": "**", "and": "&", "or": "|", "xor": "^", "lshift": "<<", "rshift": ">>"}  # fmt: skip


def _negative_shift(b: Builder, op: str, lhs: Any, rhs: Any) -> KernelValueError:
    """Compile-time shifts are Python's, on ints without a width to shift out of: a negative
    count has no meaning there (a run-time count reads as unsigned, see the language's
    semantics)."""
    sym = "<<" if op == "lshift" else ">>"
    return KernelValueError(
        f"a compile-time shift by a negative count: {lhs!r} {sym} {rhs!r}",
        expected="a count >= 0 (Python's ints have no width to shift out of)",
        found=f"count {rhs!r}",
        hint="make the count non-negative; a run-time value of a fixed-width type shifts by any "
        "count (a negative one, or one of its width or more, shifts every bit out)",
        location=b.loc,
        code="shift-count",
    )


def unary(b: Builder, op: str, x: Any, approx: bool = False) -> Any:
    """``op(x)``; ``approx`` lets GPUs use their fast approximate instruction (compile-time
    values fold exactly, as the CPU and the interpreter compute at run time)."""
    if not is_runtime(x):
        return _fold_unary(b, op, x)
    b.require_values(x, what=f"tv.{op}")
    dtype = x.type.dtype
    if op in FLOAT_UNARY and not dtype.is_float:
        raise b.type_error(
            f"{op} needs a float operand",
            expected="a float tile or scalar",
            found=str(dtype),
            hint="convert first: x.to(tv.f32)",
        )
    if op in INT_UNARY and not dtype.is_integer:
        raise b.type_error("'~' needs an integer operand", expected="integers", found=str(dtype))
    if op in BOOL_UNARY and dtype != BOOL:
        x = binary(b, "ne", x, 0)
    shape = x.type.shape if isinstance(x.type, TileType) else None
    attrs = {"approx": True} if approx else {}
    return b.instr("unary", b.result_type(x.type.dtype, shape), [x], name=op, op=op, **attrs)


_FOLD_EXACT = {
    "neg": operator.neg,
    "abs": abs,
    "invert": operator.invert,
    "not": operator.not_,
    "floor": math.floor,
    "ceil": math.ceil,
}


def _fold_unary(b: Builder, op: str, x: Any) -> Any:
    """A unary operation on a compile-time value: math functions as at run time (IEEE
    results: ``exp`` of a large number is inf, ``log`` of a negative one nan), the rest as
    Python computes them; anything else is an error at the kernel's line."""
    if op == "not":
        return not x
    if not isinstance(x, (int, float, np.number, np.bool_)):
        raise b.type_error(
            f"{op} of {describe(x)}",
            expected="a number, or a tile or scalar value",
            found=describe(x),
        )
    if op in FLOAT_MATH:
        return float(float_math(op, x))
    try:
        return _FOLD_EXACT[op](x)
    except (TypeError, ValueError, OverflowError) as exc:  # ~1.5, floor(inf), floor(nan)
        raise b.type_error(
            f"compile-time {op} of {describe(x)}: {exc}",
            expected="an operand the operation takes (an int for ~, a finite number to round)",
            found=describe(x),
        ) from None


def where(b: Builder, cond: Any, a: Any, c: Any) -> Any:
    if not is_runtime(cond, a, c):
        return a if cond else c
    if isinstance(cond, Var) and cond.type.dtype != BOOL:
        cond = binary(b, "ne", cond, 0)
    cond_op = cond if isinstance(cond, Var) else b.literal(bool(cond), BOOL)
    dtype, args = b.unify(a, c, what="where")
    shape = b.broadcast_shape(cond, a, c, what="where")
    return b.instr("where", b.result_type(dtype, shape), [cond_op, *args], name="sel")


def cast(b: Builder, x: Any, dtype: DataType) -> Any:
    if not isinstance(dtype, DataType):
        raise b.type_error(
            "cast needs a dtype", expected="a dtype such as tv.f16", found=describe(dtype)
        )
    if not is_runtime(x):
        return x
    b.require_values(x, what=f"a conversion to {dtype}")
    if x.type.dtype == dtype:
        return x
    shape = x.type.shape if isinstance(x.type, TileType) else None
    return b.instr("cast", b.result_type(dtype, shape), [x], name="cvt", dtype=dtype)


def _check_layout(b: Builder, layout: Any, shape: tuple[int, ...]) -> None:
    if not isinstance(layout, RegisterLayout):
        raise b.type_error(
            "a register layout is needed", expected="a layout", found=describe(layout)
        )
    if layout.shape != shape:
        raise b.shape_error(
            "layout shape differs from the tile's",
            expected=str(list(shape)),
            found=f"{layout!r} of shape {list(layout.shape)}",
        )


def check_threads(b: Builder, layout: Any, threads: int) -> None:
    """A layout the kernel gives spreads a tile over exactly the block's threads: with fewer
    or more, part of the block would hold nothing or part of the tile would be held by no thread
    (the block is warps x the target's warp size: 32 on NVIDIA, 64 on AMD CDNA, 16 on Intel)."""
    if isinstance(layout, RegisterLayout) and layout.num_threads != threads:
        raise b.shape_error(
            "the layout's threads differ from the block's",
            expected=f"a layout over the block's {threads} threads",
            found=f"{layout!r}: {layout.num_threads} threads",
            hint="build the layout from tv.num_threads() (the warp size depends on the target)",
        )


def annotate(b: Builder, x: Any, layout: RegisterLayout) -> Var:
    x = b.require_tile(x, "annotate")
    _check_layout(b, layout, x.type.shape)
    if x.type.layout == layout:
        return x
    return b.instr("annotate", TileType(x.type.dtype, x.type.shape, layout), [x], name=x.name)


def reshape(b: Builder, x: Any, shape: Sequence[int]) -> Var:
    x = b.require_tile(x, "tv.reshape")
    shape = tuple(int(n) for n in shape)
    if int(np.prod(shape)) != int(np.prod(x.type.shape)):
        raise b.shape_error(
            "reshape must keep the element count",
            expected=f"{int(np.prod(x.type.shape))} elements",
            found=str(list(shape)),
        )
    return b.instr("reshape", TileType(x.type.dtype, shape), [x], name=x.name, shape=shape)


def transpose(b: Builder, x: Any, dims: Sequence[int] | None) -> Var:
    x = b.require_tile(x, "tv.transpose")
    rank = len(x.type.shape)
    dims = tuple(range(rank))[::-1] if dims is None else tuple(dims)
    if sorted(dims) != list(range(rank)):
        raise b.shape_error(
            "transpose needs a permutation",
            expected=f"each of 0..{rank - 1} once",
            found=str(list(dims)),
        )
    shape = tuple(x.type.shape[d] for d in dims)
    return b.instr("transpose", TileType(x.type.dtype, shape), [x], name=x.name, dims=dims)


def expand_dims(b: Builder, x: Var, shape: tuple[int, ...]) -> Var:
    """``x[:, None]``: the same elements with unit dimensions inserted (a reshape)."""
    return b.instr("reshape", TileType(x.type.dtype, shape), [x], name=x.name, shape=shape)


def full(b: Builder, shape: Sequence[int], value: Any, dtype: DataType) -> Var:
    shape = static_shape(b, shape, "shape")
    if isinstance(value, Var):
        if not isinstance(value.type, ScalarType):
            raise b.type_error(
                "fill value must be a scalar", expected="a scalar", found=describe(value)
            )
        value = cast(b, value, dtype)
        return b.instr("full", TileType(dtype, shape), [value], name="full")
    return b.instr("full", TileType(dtype, shape), [b.literal(value, dtype)], name="full")


def arange(b: Builder, start: Any, stop: Any) -> Var:
    if (
        is_runtime(start, stop)
        or not all(isinstance(v, int) for v in (start, stop))
        or stop <= start
    ):
        raise b.type_error(
            "tv.arange needs compile-time bounds with start < stop",
            expected="ints (constexprs)",
            found=f"start={describe(start)}, stop={describe(stop)}",
            hint="add a runtime offset afterwards: offset + tv.arange(0, BLOCK)",
        )
    return b.instr("arange", TileType(INDEX, (stop - start,)), [], name="idx", start=start)


def static_shape(b: Builder, shape: Any, what: str) -> tuple[int, ...]:
    if isinstance(shape, int):
        shape = (shape,)
    if (
        not isinstance(shape, (tuple, list))
        or not shape
        or any(not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1 for n in shape)
    ):
        raise b.type_error(
            f"{what} must be compile-time positive ints",
            expected="a tuple/list of ints, e.g. [BLOCK_M, BLOCK_N]",
            found=describe(shape),
            hint="tile shapes come from constexpr parameters",
        )
    return tuple(int(n) for n in shape)


def load(b: Builder, tensor: Any, offsets: Any, shape: Any, other: Any, layout: Any) -> Var:
    tensor = b.require_global(tensor, "tv.load")
    rank = tensor.type.rank
    offsets = _offsets(b, offsets, rank, "tv.load")
    shape = static_shape(b, shape, "tv.load shape")
    if len(shape) != rank:
        raise b.shape_error(
            "tv.load tile rank",
            expected=f"{rank} sizes (the tensor's rank)",
            found=str(list(shape)),
        )
    other_op = (
        b.literal(other, tensor.type.dtype)
        if not isinstance(other, Var)
        else cast(b, other, tensor.type.dtype)
    )
    out_type = TileType(tensor.type.dtype, shape)
    if layout is not None:
        _check_layout(b, layout, shape)
        out_type = TileType(tensor.type.dtype, shape, layout)
    return b.instr("load", out_type, [tensor, other_op, *offsets], name=tensor.name)


def store(b: Builder, tensor: Any, value: Any, offsets: Any) -> None:
    tensor = b.require_global(tensor, "tv.store")
    rank = tensor.type.rank
    if not isinstance(value, Var) or not isinstance(value.type, TileType):
        raise b.type_error(
            "tv.store writes a tile", expected="a register tile", found=describe(value)
        )
    _check_tile_for(b, value, tensor, "tv.store")
    offsets = _offsets(b, offsets, rank, "tv.store")
    b.instr("store", None, [tensor, value, *offsets])


def _check_tile_for(b: Builder, value: Var, tensor: Var, what: str) -> None:
    """A tile written into ``tensor`` has its rank and its dtype."""
    rank = tensor.type.rank
    if len(value.type.shape) != rank:
        raise b.shape_error(
            f"{what} tile rank",
            expected=f"a {rank}-D tile (the tensor's rank)",
            found=str(list(value.type.shape)),
        )
    _check_same_dtype(b, value, tensor, what)


def _check_same_dtype(b: Builder, value: Var, tensor: Var, what: str) -> None:
    if value.type.dtype != tensor.type.dtype:
        raise b.type_error(
            f"{what} dtype differs from the tensor's",
            expected=str(tensor.type.dtype),
            found=str(value.type.dtype),
            hint=f"convert first: value.to(tv.{tensor.type.dtype})",
        )


def atomic_add(b: Builder, tensor: Any, value: Any, offsets: Any) -> Var | None:
    """``tensor[offsets + i] += value[i]``, atomically, for each element of a tile inside the
    tensor (nothing returned); with a scalar value, one add at ``offsets`` that returns the old
    value (a block-uniform scalar)."""
    tensor = b.require_global(tensor, "tv.atomic_add")
    dtype = tensor.type.dtype
    if dtype.name not in ATOMIC_ADD_DTYPES:
        raise KernelTypeError(
            f"tv.atomic_add has no {dtype} form",
            expected="a tensor of " + ", ".join(sorted(ATOMIC_ADD_DTYPES)),
            found=f"a {dtype} tensor",
            hint="accumulate into a wider tensor (f32 or i32) and convert it afterwards",
            location=b.loc,
            code="atomic-dtype",
        )
    rank = tensor.type.rank
    if isinstance(value, Var) and isinstance(value.type, TileType):
        _check_tile_for(b, value, tensor, "tv.atomic_add")
        b.instr("atomic_add", None, [tensor, value, *_offsets(b, offsets, rank, "tv.atomic_add")])
        return None
    if isinstance(value, Var) and isinstance(value.type, ScalarType):
        _check_same_dtype(b, value, tensor, "tv.atomic_add")
        operand = value
    elif isinstance(value, (int, float, np.integer, np.floating)):
        operand = b.literal(value, dtype)
    else:
        raise b.type_error(
            "tv.atomic_add adds a tile or a scalar",
            expected="a register tile, or a block-uniform scalar or number",
            found=describe(value),
        )
    offs = _offsets(b, offsets, rank, "tv.atomic_add")
    return b.instr(
        "atomic_fetch_add", ScalarType(dtype), [tensor, operand, *offs], name=f"{tensor.name}_old"
    )


def _offsets(b: Builder, offsets: Any, rank: int, what: str) -> list:
    if not isinstance(offsets, (list, tuple)):
        offsets = [offsets]
    if len(offsets) != rank:
        raise b.shape_error(
            f"{what} offsets",
            expected=f"{rank} offsets (one per dimension)",
            found=f"{len(offsets)}",
        )
    return [b.scalar_index(o, f"{what} offset") for o in offsets]


# More shared memory than any target gives one block (H100/H200: 227 KiB; the OpenCL CPU
# device: 256 KiB). Each target checks its own limit when the kernel is lowered; this bound
# stops a tile no device could hold before anything (the interpreter too) allocates it.
MAX_SHARED_BYTES = 256 * 1024


def shared(b: Builder, shape: Any, dtype: DataType, layout: Any) -> Var:
    shape = static_shape(b, shape, "tv.shared shape")
    nbytes = math.prod(shape) * max(dtype.bits, 8) // 8  # shared memory keeps a byte each
    if nbytes > MAX_SHARED_BYTES:
        raise ShapeError(
            f"tv.shared of {list(shape)} {dtype} needs {nbytes} bytes",
            expected=f"at most {MAX_SHARED_BYTES} bytes (no target gives a block more)",
            found=f"{nbytes} bytes",
            hint="use a smaller tile or fewer pipeline stages",
            location=b.loc,
            code="shared-memory",
        )
    # by default rows are swizzled in 16-byte chunks: column walks stay free of bank conflicts
    layout = layout if layout is not None else swizzled_row_major(shape, dtype.bits)
    if not isinstance(layout, SharedLayout) or layout.shape != shape:
        raise b.type_error(
            "tv.shared layout",
            expected=f"a shared layout of shape {list(shape)}",
            found=describe(layout),
        )
    return b.instr("shared", SharedType(dtype, shape, layout), [], name="smem")


def load_shared(b: Builder, smem: Any, offsets: Any, shape: Any) -> Var:
    """A tile of ``shape`` at ``offsets``; a shape of lower rank than the shared tile reads the
    trailing dimensions (the leading offsets pick one index each: a pipeline stage)."""
    smem = b.require_shared(smem, "tv.load_shared")
    rank = len(smem.type.shape)
    shape = smem.type.shape if shape is None else static_shape(b, shape, "tv.load_shared shape")
    _check_trailing(b, shape, smem, "tv.load_shared")
    offsets = [0] * rank if offsets is None else offsets
    offs = _offsets(b, offsets, rank, "tv.load_shared")
    _check_inside(b, offs, shape, smem, "tv.load_shared")
    return b.instr("load_shared", TileType(smem.type.dtype, shape), [smem, *offs], name=smem.name)


def _check_trailing(b: Builder, shape: Sequence[int], smem: Var, what: str) -> None:
    full = smem.type.shape
    if len(shape) > len(full) or any(n > m for n, m in zip(shape[::-1], full[::-1])):
        raise b.shape_error(
            f"{what} tile does not fit the shared tile",
            expected=f"at most {len(full)} sizes, each within {list(full)} (trailing dimensions)",
            found=str(list(shape)),
        )


def _check_inside(b: Builder, offsets: Sequence[Any], shape: Sequence[int], smem: Var, what: str):
    """Shared accesses have no bounds checks at run time (shared memory is the block's own, its
    tiles fixed when it compiles): offsets known when it compiles must keep the tile inside."""
    full = smem.type.shape
    lead = len(full) - len(shape)
    for d, (off, n) in enumerate(zip(offsets, full)):
        size = 1 if d < lead else shape[d - lead]
        if isinstance(off, Literal) and not 0 <= int(off.value) <= n - size:
            raise b.shape_error(
                f"{what} at offset {int(off.value)} of dimension {d} leaves the shared tile",
                expected=f"an offset in [0, {n - size}] ({size} of {n} elements from it)",
                found=str(int(off.value)),
            )


def store_shared(b: Builder, smem: Any, value: Any, offsets: Any) -> None:
    smem = b.require_shared(smem, "tv.store_shared")
    value = b.require_tile(value, "tv.store_shared")
    if value.type.dtype != smem.type.dtype:
        raise b.type_error(
            "tv.store_shared dtype", expected=str(smem.type.dtype), found=str(value.type.dtype)
        )
    _check_trailing(b, value.type.shape, smem, "tv.store_shared")
    rank = len(smem.type.shape)
    offs = _offsets(b, [0] * rank if offsets is None else offsets, rank, "tv.store_shared")
    _check_inside(b, offs, value.type.shape, smem, "tv.store_shared")
    b.instr("store_shared", None, [smem, value, *offs])


def copy_async(b: Builder, dst: Any, src: Any, offsets: Any, dst_offsets: Any, shape: Any) -> None:
    """``dst[dst_offsets...] = src[offsets...]`` for a tile of ``shape`` (default: ``dst``'s
    trailing dimensions, as many as ``src`` has), started now, complete after ``tv.wait_async``.
    Elements outside ``src`` arrive as zeros."""
    dst = b.require_shared(dst, "tv.copy_async destination")
    src = b.require_global(src, "tv.copy_async source")
    if src.type.dtype != dst.type.dtype:
        raise b.type_error(
            "tv.copy_async copies one dtype",
            expected=f"a {dst.type.dtype} source (the shared tile's dtype)",
            found=str(src.type.dtype),
        )
    rank = src.type.rank
    if shape is None:
        if rank > len(dst.type.shape):
            raise b.shape_error(
                "tv.copy_async source rank",
                expected=f"at most {len(dst.type.shape)} dimensions (the shared tile's)",
                found=str(rank),
            )
        shape = dst.type.shape[len(dst.type.shape) - rank :]
    shape = static_shape(b, shape, "tv.copy_async shape")
    if len(shape) != rank:
        raise b.shape_error(
            "tv.copy_async shape", expected=f"{rank} sizes (the source's rank)", found=str(shape)
        )
    _check_trailing(b, shape, dst, "tv.copy_async")
    src_offs = _offsets(b, offsets, rank, "tv.copy_async")
    dst_rank = len(dst.type.shape)
    dst_offs = _offsets(
        b, [0] * dst_rank if dst_offsets is None else dst_offsets, dst_rank, "tv.copy_async"
    )
    b.instr("copy_async", None, [dst, src, *src_offs, *dst_offs], shape=tuple(shape))


def wait_async(b: Builder, pending: Any) -> None:
    if not isinstance(pending, int) or isinstance(pending, bool) or not 0 <= pending <= 7:
        raise b.type_error(
            "tv.wait_async(pending) counts copy groups still allowed in flight",
            expected="a compile-time int from 0 to 7",
            found=describe(pending),
        )
    b.instr("wait_async", None, [], pending=pending)
