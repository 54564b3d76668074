"""Target-driven default layouts for tiles nothing else constrains."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tilevm.dtypes import DataType
from tilevm.ir.nodes import Instr
from tilevm.layouts import RegisterLayout, local, replicate, spatial
from tilevm.layouts.defaults import default_layout
from tilevm.layouts.errors import LayoutError
from tilevm.layouts.ops import reshape
from tilevm.lowering.layout_rules import dot_candidates, dot_fragments
from tilevm.lowering.target import Target


def vector_layout(shape: Sequence[int], dtype: DataType, threads: int, target: Target):
    """Runs of up to ``target.vector_bytes`` contiguous elements along the last dimension per
    thread, neighbouring threads on neighbouring runs (coalesced), repeated over slots::

        local(reps) * spatial(threads) * local(vector)     (flattened, then reshaped)
    """
    shape = tuple(int(n) for n in shape)
    size = int(np.prod(shape))
    widest = max(1, target.vector_bytes * 8 // max(dtype.bits, 1))
    vector = 1 << (min(widest, shape[-1]).bit_length() - 1)
    while vector >= 1:
        layout = _runs(shape, size, vector, threads)
        if layout is not None:
            return layout
        vector //= 2
    return default_layout(shape, threads)


def _runs(shape: tuple[int, ...], size: int, vector: int, threads: int) -> RegisterLayout | None:
    if shape[-1] % vector:
        return None
    runs = size // vector
    if runs % threads == 0:
        flat = local(runs // threads) * spatial(threads) * local(vector)
    elif threads % runs == 0:
        flat = replicate(threads // runs) * spatial(runs) * local(vector)
    else:
        return None
    try:
        return reshape(flat, shape)
    except LayoutError:
        return None


def dot_layout(ins: Instr, warps: int, threads: int, target: Target) -> RegisterLayout:
    """An accumulator layout for a dot nothing else constrains: built on the target's first
    matrix atom that fits the dtypes and the tile (warps side by side, each repeating the atom
    over its part of the tile), else a SIMT one. A batched dot (``[*B, M, N]``) spreads its
    warps over the batch first, as far as they divide it: batch elements share no operands, so
    no warp loads what another one does; the warps left form the grid over M and N."""
    *batch, m, n = ins.out.type.shape
    for atom in dot_candidates(target, ins):
        if m % atom.m or n % atom.n or atom.c.num_threads * warps != threads:
            continue
        per_batch = split_batch(batch, warps)
        rest = warps // math.prod(per_batch)
        grid = _warp_grid(m // atom.m, n // atom.n, rest, (atom.m, atom.n))
        if grid is not None:
            wm, wn = grid
            reps = [b // w for b, w in zip(batch, per_batch)]
            c = dot_fragments(atom, len(batch) + 2)[2]
            blocks = local(*reps, m // atom.m // wm, n // atom.n // wn)
            return spatial(*per_batch, wm, wn) * blocks * c
    return simt_dot_layout(ins.out.type.shape, threads)


def split_batch(batch: Sequence[int], workers: int) -> list[int]:
    """How many of ``workers`` go to each batch dimension, outermost first: as many as divide
    both the dimension and the workers still free."""
    out = []
    for size in batch:
        share = math.gcd(size, workers)
        out.append(share)
        workers //= share
    return out


def _warp_grid(
    tiles_m: int, tiles_n: int, warps: int, atom_mn: tuple[int, int]
) -> tuple[int, int] | None:
    """Warps as a ``wm x wn`` grid over the atom tiles, each warp an equal block: the grid whose
    warps load the fewest operand elements per step (``rows + cols`` of their block)."""
    best = None
    for wm in range(1, warps + 1):
        wn = warps // wm
        if wm * wn != warps or tiles_m % wm or tiles_n % wn:
            continue
        cost = tiles_m // wm * atom_mn[0] + tiles_n // wn * atom_mn[1]
        if best is None or cost < best[0]:
            best = (cost, (wm, wn))
    return None if best is None else best[1]


def simt_dot_layout(shape: Sequence[int], threads: int) -> RegisterLayout:
    """An accumulator layout for a SIMT dot: each thread a block of up to 4x4 outputs (A and B
    elements reused across it), 4 contiguous along N for vector stores. Leading batch
    dimensions take threads first (as many as divide them), each thread repeating its block
    over the batch elements it is given; the threads left share each batch element's tile."""
    *batch, m, n = (int(s) for s in shape)
    if not batch:
        return _simt_tile_layout(m, n, threads)
    per_batch = split_batch(batch, threads)
    tile = _shared_tile(m, n, threads // math.prod(per_batch))
    unit = [1] * len(batch)
    reps = [b // t for b, t in zip(batch, per_batch)]
    return spatial(*per_batch, 1, 1) * local(*reps, 1, 1) * reshape(tile, [*unit, m, n])


def _shared_tile(m: int, n: int, threads: int) -> RegisterLayout:
    """One batch element's tile over its ``threads``: spread over as many of them as leave each
    thread the fewest outputs, the others replicating that. (A tile whose blocks do not fit all
    the threads would otherwise be replicated whole, and a sum over the batch would exchange
    every thread's whole tile.)"""
    best = _simt_tile_layout(m, n, threads)
    for share in range(threads // 2, 0, -1):
        if threads % share == 0:
            tile = _simt_tile_layout(m, n, share)
            if tile.local_size < best.local_size:
                best = replicate(threads // share, 2) * tile
    return best


def _simt_tile_layout(m: int, n: int, threads: int) -> RegisterLayout:
    """The SIMT layout of one ``m x n`` tile over ``threads``."""
    shape = (m, n)
    rm, rn = min(4, m), min(4, n)
    while (m // rm) * (n // rn) > threads:  # too many blocks: grow them
        if rm <= rn and rm * 2 <= m and m % (rm * 2) == 0:
            rm *= 2
        elif rn * 2 <= n and n % (rn * 2) == 0:
            rn *= 2
        else:
            break
    while (m // rm) * (n // rn) < threads and (rm > 1 or rn > 1):  # too few: shrink
        if rm >= rn and rm > 1:
            rm //= 2
        else:
            rn //= 2
    tm, tn = m // rm, n // rn
    if m % rm or n % rn or threads % (tm * tn) and (tm * tn) % threads:
        return default_layout(shape, threads)
    if tm * tn <= threads:
        return replicate(threads // (tm * tn), 2) * spatial(tm, tn) * local(rm, rn)
    # more blocks than threads: each thread repeats its block over the tile
    outer = tm * tn // threads
    try:
        return reshape(local(outer) * spatial(threads), [tm, tn]) * local(rm, rn)
    except LayoutError:
        return default_layout(shape, threads)
