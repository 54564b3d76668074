"""tilevm layouts: register layouts and their algebra, shared-memory layouts, hardware atoms.

>>> from tilevm.layouts import local, spatial
>>> f = local(2, 1).spatial(4, 8)       # 8x8 tile, 32 threads, 2 slots each
>>> f(5, 1)                             # thread 5, slot 1 -> index
(4, 5)
>>> (f / spatial(4, 8)) == local(2, 1)
True
"""

from __future__ import annotations

from collections.abc import Sequence

from tilevm.layouts import atoms
from tilevm.layouts.errors import LayoutDivisionError, LayoutError
from tilevm.layouts.ops import concat, flatten, permute, reduce, register_layout, reshape
from tilevm.layouts.register import RegisterLayout, compose, divide, divisible, primitive, replicate
from tilevm.layouts.shared import (
    SharedLayout,
    Swizzle,
    shared_layout,
    swizzle,
    swizzled_row_major,
)


def local(*shape: int) -> RegisterLayout:
    """One thread holds the whole ``shape``, slots in row-major order."""
    return primitive("local", shape)


def spatial(*shape: int) -> RegisterLayout:
    """One element per thread, threads in row-major order."""
    return primitive("spatial", shape)


def column_local(*shape: int) -> RegisterLayout:
    """One thread holds the whole ``shape``, slots in column-major order."""
    return primitive("column_local", shape)


def column_spatial(*shape: int) -> RegisterLayout:
    """One element per thread, threads in column-major order."""
    return primitive("column_spatial", shape)


def transpose(layout: RegisterLayout) -> RegisterLayout:
    """Swap the last two dimensions."""
    dims: Sequence[int] = [*range(layout.rank - 2), layout.rank - 1, layout.rank - 2]
    return permute(layout, dims)


__all__ = [
    "LayoutDivisionError",
    "LayoutError",
    "RegisterLayout",
    "SharedLayout",
    "Swizzle",
    "atoms",
    "column_local",
    "column_spatial",
    "compose",
    "concat",
    "divide",
    "divisible",
    "flatten",
    "local",
    "permute",
    "reduce",
    "register_layout",
    "replicate",
    "reshape",
    "shared_layout",
    "spatial",
    "swizzle",
    "swizzled_row_major",
    "transpose",
]
