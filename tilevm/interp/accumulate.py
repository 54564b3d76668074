"""Sums and dots as the compiled code computes them: partial sums rounded to the accumulator.

Float partial sums are kept in the accumulator dtype (``accumulator_dtype``: f32, or f64 for
f64 results) and rounded to it after every addition, as every backend does. The interpreter
adds in the order the lowering uses for the tile's layout (``lowering.reduce_order``): each
thread's slots in order, then the xor-shuffle steps, then the warps' partials in shared memory.
Where a compiled kernel's layouts differ from the interpreter's (inferred rather than pinned)
or a GPU's matrix unit adds in its own order, results agree to the accumulator's rounding, not
bit for bit. A dot adds one product after another along K, each fused (the exact product added
with one rounding), as the multiply-add loop and the emulated matrix instructions do.

Integer sums wrap, so every order gives the same result: they are computed exactly, modulo
2**64, and wrapped to the result's width.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from tilevm.dtypes import DataType
from tilevm.interp import arith
from tilevm.interp.values import Tile
from tilevm.layouts import RegisterLayout
from tilevm.layouts.ops import reduce
from tilevm.lowering.reduce_order import thread_groups


def _numpy_float(acc: DataType) -> type:
    return np.float64 if acc.bits == 64 else np.float32


def sum_tile(
    tile: Tile, axes: Sequence[int], keepdims: bool, acc: DataType, warp_size: int
) -> np.ndarray:
    """``tile`` summed over ``axes`` in the accumulator dtype ``acc``: the logical result (shape
    with or without the unit dimensions), in ``acc``'s numpy type."""
    axes = tuple(axes)
    if acc.is_integer:
        wide = tile.values().astype(arith.compute_type(acc))
        return wide.sum(axis=axes, keepdims=keepdims)
    with np.errstate(over="ignore", invalid="ignore"):  # inf and NaN sums, as on devices
        values = tile.dtype.decode(tile.bits).astype(_numpy_float(acc))
        partial = _own_slots(tile.layout, axes, values)
        partial = _across_threads(tile.layout, axes, partial, warp_size)
    kept = reduce(tile.layout, axes, keepdims=True)
    out = np.empty(kept.shape, dtype=partial.dtype)
    index = kept.indices()
    out[tuple(index[..., d] for d in range(kept.rank))] = partial  # replicas hold equal sums
    if keepdims:
        return out
    return out.reshape([n for d, n in enumerate(kept.shape) if d not in axes])


def _own_slots(layout: RegisterLayout, axes: tuple[int, ...], values: np.ndarray) -> np.ndarray:
    """Each thread adds its slots, in slot order, into the slot of the reduced layout that holds
    their result: ``partial[thread, kept_slot]``."""
    to_kept = _kept_slots(layout, axes)
    threads = np.arange(layout.num_threads)
    kept_size = reduce(layout, axes, keepdims=True).local_size
    partial = np.zeros((layout.num_threads, kept_size), dtype=values.dtype)
    for slot in range(layout.local_size):
        partial[threads, to_kept[:, slot]] += values[:, slot]
    return partial


def _kept_slots(layout: RegisterLayout, axes: tuple[int, ...]) -> np.ndarray:
    """``[thread, slot]`` -> the slot of the reduced layout (keepdims) in which the same thread
    holds the element's projection (its index with the reduced dimensions at 0)."""
    kept = reduce(layout, axes, keepdims=True)
    src = layout.indices().copy()
    src[..., list(axes)] = 0
    size = int(np.prod(kept.shape))
    lin = np.ravel_multi_index(tuple(np.moveaxis(src, -1, 0)), kept.shape)
    kept_lin = np.ravel_multi_index(tuple(np.moveaxis(kept.indices(), -1, 0)), kept.shape)
    order = np.argsort(kept_lin, axis=1, kind="stable")
    rows = np.arange(layout.num_threads)[:, None]
    flat_sorted = (np.take_along_axis(kept_lin, order, axis=1) + rows * size).reshape(-1)
    found = np.searchsorted(flat_sorted, (lin + rows * size).reshape(-1)).reshape(lin.shape)
    return np.take_along_axis(order, found - rows * kept.local_size, axis=1)


def _across_threads(
    layout: RegisterLayout, axes: tuple[int, ...], partial: np.ndarray, warp_size: int
) -> np.ndarray:
    """The xor-shuffle steps inside warps, then each group's partials from shared memory, read
    by every thread from its group's first thread on, in the same order."""
    masks, shared = thread_groups(layout, axes, warp_size)
    tid = np.arange(layout.num_threads)
    for mask in masks:
        partial = partial + partial[tid ^ mask]
    if not shared:
        return partial
    first = tid.copy()
    for radix, stride in shared:
        first -= (tid // stride) % radix * stride
    total = np.zeros_like(partial)
    for steps in itertools.product(*(range(radix) for radix, _ in shared)):
        member = first + sum(w * stride for w, (_, stride) in zip(steps, shared))
        total = total + partial[member]
    return total


def dot(a: np.ndarray, b: np.ndarray, c: np.ndarray, acc: DataType) -> np.ndarray:
    """``c + a @ b`` (``[*B, M, K] @ [*B, K, N]``) with the inputs converted to the accumulator
    dtype ``acc`` and one fused multiply-add per step of K, in order."""
    if acc.is_integer:
        wide = arith.compute_type(acc)
        return a.astype(wide) @ b.astype(wide) + c.astype(wide)
    ftype = _numpy_float(acc)
    with np.errstate(over="ignore", invalid="ignore"):
        a, b, total = a.astype(ftype), b.astype(ftype), c.astype(ftype)
        step = _fma_f32 if ftype is np.float32 else _fma_f64
        for k in range(a.shape[-1]):
            total = step(a[..., :, k : k + 1], b[..., k : k + 1, :], total)
    return total


def _two_sum(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``s + e == x + y`` exactly, ``s`` the rounded sum (Knuth)."""
    s = x + y
    yy = s - x
    return s, (x - (s - yy)) + (y - yy)


def _round_to_odd(s: np.ndarray, e: np.ndarray) -> np.ndarray:
    """``s + e`` (``s`` its nearest float64, ``e`` the rest) rounded to odd: where inexact and
    ``s``'s last bit is 0, the neighbour toward ``e``. A narrower rounding of it is then the
    rounding of the exact value (53 bits carry at least two more than f32 needs)."""
    even = (s.view(np.uint64) & np.uint64(1)) == 0
    inexact = np.isfinite(e) & (e != 0)
    nudged = np.nextafter(s, np.where(e > 0, np.inf, -np.inf))
    return np.where(inexact & even, nudged, s)


def _fma_f32(x: np.ndarray, y: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``round_f32(x * y + c)`` once: f32 products are exact in float64."""
    p = x.astype(np.float64) * y.astype(np.float64)
    s, e = _two_sum(c.astype(np.float64), p)
    return _round_to_odd(s, e).astype(np.float32)


_SPLIT = 2.0**27 + 1  # Veltkamp: a float64 in two halves of 26 bits


def _two_product(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``h + l == x * y`` exactly (Dekker), barring overflow and underflow."""
    h = x * y

    def split(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = _SPLIT * v
        hi = t - (t - v)
        return hi, v - hi

    xh, xl = split(x)
    yh, yl = split(y)
    return h, ((xh * yh - h) + xh * yl + xl * yh) + xl * yl


def _fma_f64(x: np.ndarray, y: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``round_f64(x * y + c)`` once: the exact product's two halves added to ``c``, the small
    part rounded to odd (Boldo and Melquiond's emulated FMA). Where the parts are not finite
    (overflow), the plain rounded product and sum, whose infinities are the FMA's."""
    h, low = _two_product(x, y)
    th, tl = _two_sum(c, h)
    v, err = _two_sum(tl, low)
    z = th + _round_to_odd(v, err)
    plain = c + h
    return np.where(np.isfinite(z) & np.isfinite(low), z, plain)
