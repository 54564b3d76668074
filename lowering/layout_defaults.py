"""Target-driven default layouts for tiles nothing else constrains."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tilevm.dtypes import DataType
from tilevm.layouts import RegisterLayout, local, replicate, spatial
from tilevm.layouts.defaults import default_layout
from tilevm.layouts.errors import LayoutError
from tilevm.layouts.ops import reshape
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


def dot_layout(shape: Sequence[int], threads: int) -> RegisterLayout:
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
