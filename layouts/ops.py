"""Layout operations besides ``*`` and ``/``: each one rewrites modes, so results stay exact."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tilevm.layouts.errors import LayoutError
from tilevm.layouts.modes import CutError, ModeTable
from tilevm.layouts.register import RegisterLayout, _check_shape


def register_layout(
    shape: Sequence[int],
    modes: Sequence[Sequence[int]],
    spatial: Sequence[int],
    local: Sequence[int],
) -> RegisterLayout:
    """A layout from its modes (see ``tilevm.layouts.modes``); the general constructor."""
    return RegisterLayout(shape, modes, spatial, local)


def reduce(layout: RegisterLayout, dims: Sequence[int], keepdims: bool = False) -> RegisterLayout:
    """The layout of ``x.sum(dims)`` when ``x`` has ``layout``: threads that differed only along
    ``dims`` now hold the same element (replication), and slots along ``dims`` disappear."""
    dims = _check_dims(layout, dims, "reduce")
    table = layout._table()
    gone = {m for d in dims for m in table.dims[d]}
    table.spatial = [-table.size[e] if e in gone else e for e in table.spatial]
    table.local = [e for e in table.local if e not in gone]
    for d in dims:
        table.dims[d] = []
        table.shape[d] = 1
    if not keepdims:
        keep = [d for d in range(layout.rank) if d not in dims] or [0]
        table.shape = [table.shape[d] for d in keep]
        table.dims = [table.dims[d] for d in keep]
    return RegisterLayout._from_table(table)


def permute(layout: RegisterLayout, dims: Sequence[int]) -> RegisterLayout:
    """Dimension ``i`` of the result is dimension ``dims[i]`` of ``layout`` (a transpose)."""
    if sorted(dims) != list(range(layout.rank)):
        raise LayoutError(
            "permute needs a permutation of the dimensions",
            expected=f"each of 0..{layout.rank - 1} once",
            found=str(list(dims)),
            code="layout-args",
        )
    table = layout._table()
    table.shape = [table.shape[d] for d in dims]
    table.dims = [table.dims[d] for d in dims]
    return RegisterLayout._from_table(table)


def reshape(layout: RegisterLayout, shape: Sequence[int]) -> RegisterLayout:
    """The same threads and slots seen through a row-major reshape of the tile."""
    shape = _check_shape(shape, "reshape")
    if int(np.prod(shape)) != layout.size:
        raise LayoutError(
            "reshape must keep the number of elements",
            expected=f"a shape of {layout.size} elements (from {list(layout.shape)})",
            found=f"{list(shape)} ({int(np.prod(shape))} elements)",
            code="layout-shape",
        )
    table = layout._table()
    sequence = [m for ids in table.dims for m in ids]  # row-major digits of the flat index
    table.dims = [sequence]
    new_dims: list[list[int]] = []
    try:
        for n in reversed(shape):
            count = table.cut_tail(sequence, n)
            new_dims.insert(0, sequence[len(sequence) - count :])
            del sequence[len(sequence) - count :]
    except CutError as exc:
        raise LayoutError(
            f"cannot reshape {layout!r} to {list(shape)}",
            expected="new dimension boundaries that fall between (or inside divisible) factors",
            found=str(exc),
            hint="reshape through a layout whose factors line up, or convert the layout first",
            code="layout-shape",
        ) from None
    table.shape = list(shape)
    table.dims = new_dims
    return RegisterLayout._from_table(table)


def flatten(layout: RegisterLayout) -> RegisterLayout:
    """``reshape`` to one dimension (always possible)."""
    return reshape(layout, [layout.size])


def concat(a: RegisterLayout, b: RegisterLayout) -> RegisterLayout:
    """Side by side in new dimensions: shape ``a.shape + b.shape``, threads ``t_a * T_b + t_b``,
    slots ``i_a * R_b + i_b`` (the outer product of two layouts)."""
    ta, tb = a._table(), b._table()
    offset = len(ta.size)
    table = ModeTable(
        ta.shape + tb.shape,
        ta.size + tb.size,
        ta.dims + [[m + offset for m in ids] for ids in tb.dims],
        ta.spatial + [e if e < 0 else e + offset for e in tb.spatial],
        ta.local + [e + offset for e in tb.local],
    )
    return RegisterLayout._from_table(table)


def _check_dims(layout: RegisterLayout, dims: Sequence[int] | int, what: str) -> list[int]:
    dims = [dims] if isinstance(dims, (int, np.integer)) else list(dims)
    normalized = [d + layout.rank if d < 0 else d for d in dims]
    if any(not 0 <= d < layout.rank for d in normalized) or len(set(normalized)) != len(normalized):
        raise LayoutError(
            f"{what}: bad dimensions",
            expected=f"distinct dimensions in 0..{layout.rank - 1}",
            found=str(dims),
            code="layout-args",
        )
    return normalized
