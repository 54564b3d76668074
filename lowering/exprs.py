"""Building thread-IR expressions: folding constants as they are built, and turning layouts into
index arithmetic (a layout's digits are ``(x >> shift) & mask`` for power-of-two radices)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache

import numpy as np

from tilevm import dtypes as dts
from tilevm.dtypes import DataType
from tilevm.errors import CompileError
from tilevm.layouts import RegisterLayout
from tilevm.lowering.thread_ir import Bin, Const, Expr

I32 = dts.i32


def const(value: int) -> Const:
    value = int(value)
    return Const(value, I32 if -(2**31) <= value < 2**31 else dts.i64)


def _wider(a: Expr, b: Expr) -> DataType:
    """The type of index arithmetic on ``a`` and ``b``: a 64-bit integer operand (an offset
    into a tensor past 2**31 elements) makes the whole expression 64-bit."""
    da, db = a.dtype, b.dtype
    if da.is_integer and db.is_integer and db.bits > da.bits:
        return db
    return da


def is_const(e: Expr, value: int | None = None) -> bool:
    return isinstance(e, Const) and (value is None or e.value == value)


def add(a: Expr, b: Expr | int) -> Expr:
    b = const(b) if isinstance(b, int) else b
    if is_const(a) and is_const(b):
        return const(a.value + b.value)
    if is_const(b, 0):
        return a
    if is_const(a, 0):
        return b
    return Bin("add", a, b, _wider(a, b))


def sub(a: Expr, b: Expr | int) -> Expr:
    b = const(b) if isinstance(b, int) else b
    if is_const(a) and is_const(b):
        return const(a.value - b.value)
    return a if is_const(b, 0) else Bin("sub", a, b, _wider(a, b))


def mul(a: Expr, b: Expr | int) -> Expr:
    b = const(b) if isinstance(b, int) else b
    if is_const(a) and is_const(b):
        return const(a.value * b.value)
    if is_const(b, 1):
        return a
    if is_const(a, 1):
        return b
    if is_const(a, 0) or is_const(b, 0):
        return const(0)
    return Bin("mul", a, b, _wider(a, b))


def div(a: Expr, n: int) -> Expr:
    """``a // n`` for ``a >= 0`` (indices): a shift for powers of two."""
    if n == 1:
        return a
    if is_const(a):
        return const(a.value // n)
    if n & (n - 1) == 0:
        return Bin("shr", a, const(n.bit_length() - 1), a.dtype)
    return Bin("div", a, const(n), a.dtype)


def mod(a: Expr, n: int) -> Expr:
    """``a % n`` for ``a >= 0``: a mask for powers of two."""
    if n == 1:
        return const(0)
    if is_const(a):
        return const(a.value % n)
    if n & (n - 1) == 0:
        return Bin("and", a, const(n - 1), a.dtype)
    return Bin("mod", a, const(n), a.dtype)


def cmp(op: str, a: Expr, b: Expr | int) -> Expr:
    b = const(b) if isinstance(b, int) else b
    return Bin(op, a, b, dts.u1)


def all_of(conds: Sequence[Expr]) -> Expr | None:
    out: Expr | None = None
    for c in conds:
        out = c if out is None else Bin("land", out, c, dts.u1)
    return out


# ----- layouts as arithmetic ------------------------------------------------------------------


def digits(entries: Sequence[int], sizes: Sequence[int]) -> list[tuple[int, int, int]]:
    """``(entry, radix, stride)`` of each digit of a thread or slot index, most significant
    first: ``digit = (index // stride) % radix``."""
    radices = [-e if e < 0 else sizes[e] for e in entries]
    out, stride = [], 1
    for entry, radix in zip(reversed(entries), reversed(radices)):
        out.append((entry, radix, stride))
        stride *= radix
    return out[::-1]


def digit(index: Expr, radix: int, stride: int, outermost: bool) -> Expr:
    q = div(index, stride)
    return q if outermost else mod(q, radix)


def coords(layout: RegisterLayout, tid: Expr, slot: Expr) -> list[Expr]:
    """The logical index held by ``tid`` in ``slot``, one expression per dimension."""
    sizes = layout.mode_sizes
    values: dict[int, Expr] = {}
    for index, entries in ((tid, layout.spatial_modes), (slot, layout.local_modes)):
        for pos, (entry, radix, stride) in enumerate(digits(entries, sizes)):
            if entry >= 0:
                values[entry] = digit(index, radix, stride, pos == 0)
    out, mode = [], 0
    for dim in layout.modes:
        coord: Expr = const(0)
        for radix in dim:
            coord = add(mul(coord, radix), values[mode])
            mode += 1
        out.append(coord)
    return out


def replica_guard(layout: RegisterLayout, tid: Expr) -> Expr | None:
    """True on the first of the threads holding each element (None: no replication)."""
    conds = [
        cmp("eq", digit(tid, radix, stride, pos == 0), 0)
        for pos, (entry, radix, stride) in enumerate(
            digits(layout.spatial_modes, layout.mode_sizes)
        )
        if entry < 0
    ]
    return all_of(conds)


Project = Callable[[tuple[np.ndarray, ...]], tuple[np.ndarray, ...]]


def broadcast_project(out_shape: Sequence[int], shape: Sequence[int]) -> Project:
    """The operand index a broadcast reads for each result index (numpy broadcasting)."""
    skip = len(out_shape) - len(shape)

    def project(index: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        return tuple(np.zeros_like(i) if n == 1 else i for i, n in zip(index[skip:], shape))

    return project


def slot_map(src: RegisterLayout, dst: RegisterLayout, project: Project) -> Callable[[Expr], Expr]:
    """For a slot ``i`` of ``src``, the slot of ``dst`` (held by the same thread) that holds
    ``project(index of i)``. The map must not depend on the thread; it is returned as digit
    arithmetic on ``i`` that folds to constants in unrolled loops."""
    table = _slot_table(src, dst, project)
    fitted = _fit(table, [r for _, r, _ in digits(src.local_modes, src.mode_sizes)])
    if fitted is None:
        bits = [2] * (len(table) - 1).bit_length() if len(table) & (len(table) - 1) == 0 else None
        fitted = _fit(table, bits) if bits else None
    if fitted is None:
        raise CompileError(
            f"internal: no slot arithmetic maps {src!r} onto {dst!r}", code="internal-lowering"
        )
    base, terms = fitted

    def build(i: Expr) -> Expr:
        out: Expr = const(base)
        for radix, stride, coeff in terms:
            out = add(out, mul(digit(i, radix, stride, False), coeff))
        return out

    return build


def slot_table(src: RegisterLayout, dst: RegisterLayout, project: Project | None = None):
    """For each slot of ``src``, the slot of ``dst`` (same thread) holding the same element
    (or ``project`` of it); a CompileError if some thread's slot would differ."""
    return _slot_table(src, dst, project or (lambda index: index))


def _slot_table(src: RegisterLayout, dst: RegisterLayout, project: Project) -> np.ndarray:
    src_idx = src.indices()  # [T, R, rank]
    dst_idx = dst.indices()
    threads = src.num_threads
    flat_dst = np.ravel_multi_index(tuple(np.moveaxis(dst_idx, -1, 0)), dst.shape)
    inverse = np.full((threads, dst.size), -1, dtype=np.int64)
    t = np.arange(threads)[:, None]
    inverse[np.broadcast_to(t, flat_dst.shape), flat_dst] = np.arange(dst.local_size)[None, :]
    projected = project(tuple(np.moveaxis(src_idx, -1, 0)))
    flat = np.ravel_multi_index(projected, dst.shape)
    table = inverse[np.broadcast_to(t, flat.shape), flat]
    if (table < 0).any() or (table != table[:1]).any():
        raise CompileError(
            f"internal: {dst!r} does not hold what {src!r} needs in the same thread",
            code="internal-lowering",
        )
    return table[0]


@cache
def _radix_digits(n: int, radices: tuple[int, ...]) -> np.ndarray:
    i = np.arange(n)
    out, stride = [], 1
    for r in reversed(radices):
        out.append((i // stride) % r)
        stride *= r
    return np.stack(out[::-1], axis=1) if out else np.zeros((n, 0), dtype=np.int64)


def _fit(table: np.ndarray, radices: Sequence[int] | None):
    """``table[i] == base + sum(digit_j(i) * coeff_j)``: the coefficients, or None."""
    if radices is None or int(np.prod(radices)) != len(table):
        return None
    radices = tuple(radices)
    d = _radix_digits(len(table), radices)
    strides = [int(np.prod(radices[j + 1 :])) for j in range(len(radices))]
    base = int(table[0])
    coeffs = [int(table[s]) - base if r > 1 else 0 for s, r in zip(strides, radices)]
    if not np.array_equal(base + d @ np.array(coeffs, dtype=np.int64), table):
        return None
    return base, [(r, s, c) for r, s, c in zip(radices, strides, coeffs) if r > 1 and c != 0]


def compute_type(dtype: DataType) -> DataType:
    """The type arithmetic on ``dtype`` runs in."""
    if dtype.is_float:
        return dts.f64 if dtype.bits == 64 else dts.f32
    if dtype.bits > 32:
        return dts.i64 if dtype.kind == "int" else dts.u64
    if dtype.kind == "uint" and dtype.bits == 32:
        return dts.u32
    return dts.i32
