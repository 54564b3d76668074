"""Target-driven default layouts for tiles nothing else constrains."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tilevm.dtypes import DataType
from tilevm.ir.nodes import Instr
from tilevm.layouts import RegisterLayout, local, replicate, spatial
from tilevm.layouts.defaults import default_layout
from tilevm.layouts.errors import LayoutError
from tilevm.layouts.ops import reshape
from tilevm.lowering.layout_rules import dot_candidates
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
    over its part of the tile), else a SIMT one."""
    m, n = ins.out.type.shape
    for atom in dot_candidates(target, ins):
        if m % atom.m or n % atom.n or atom.c.num_threads * warps != threads:
            continue
        grid = _warp_grid(m // atom.m, n // atom.n, warps, (atom.m, atom.n))
        if grid is not None:
            wm, wn = grid
            return spatial(wm, wn) * local(m // atom.m // wm, n // atom.n // wn) * atom.c
    return simt_dot_layout((m, n), threads)


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
    elements reused across it), 4 contiguous along N for vector stores."""
    m, n = (int(s) for s in shape)
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
