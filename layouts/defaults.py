"""A simple default register layout for tiles nobody gave a layout to.

Used by the reference interpreter and as the starting point before layout inference: spread the
tile row-major over the threads with contiguous runs per thread, replicate small tiles, and fall
back to every thread holding the whole tile when nothing divides.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tilevm.layouts.errors import LayoutError
from tilevm.layouts.ops import reshape
from tilevm.layouts.register import RegisterLayout, primitive, replicate


def default_layout(shape: Sequence[int], num_threads: int) -> RegisterLayout:
    shape = tuple(int(n) for n in shape)
    size = int(np.prod(shape))
    candidates: list[RegisterLayout] = []
    if size % num_threads == 0:
        per_thread = size // num_threads
        candidates.append(primitive("spatial", (num_threads,)) * primitive("local", (per_thread,)))
        candidates.append(primitive("local", (per_thread,)) * primitive("spatial", (num_threads,)))
    elif num_threads % size == 0:
        candidates.append(replicate(num_threads // size) * primitive("spatial", (size,)))
    for flat in candidates:
        try:
            return reshape(flat, shape)
        except LayoutError:
            continue
    return replicate(num_threads, len(shape)) * primitive("local", shape)
