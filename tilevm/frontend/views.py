"""``tv.view``: the bits each thread holds, read as another dtype, layout and shape.

A thread's slots, concatenated with slot 0 in the lowest bits, are cut into slots of the new
width. Without ``layout=``, the new layout is derived: along one dimension ``d`` (the last, or
the one ``shape=`` changes), each group of ``s`` consecutive elements a thread holds becomes
``s'`` elements of the new dtype, where ``s * old_bits == s' * new_bits`` is the smallest whole
number of both. For a u8 run of 6 bytes viewed as i3 (``s = 3``, ``s' = 8``):

    bytes  | b0 | b1 | b2 | b3 | b4 | b5 |      48 bits, b0's bit 0 lowest
    i3     |0|1|2|3|4|5|6|7|8|9|...      |15|   element j: bits [3j, 3j + 3)

so the elements come out in the order bit-packed memory has them (``tv.unpack``).
"""

from __future__ import annotations

import math
from typing import Any

from tilevm.dtypes import DataType
from tilevm.frontend.builder import Builder, describe
from tilevm.frontend.ops import annotate, static_shape
from tilevm.ir.nodes import Var
from tilevm.ir.types import TileType
from tilevm.layouts import RegisterLayout, local
from tilevm.layouts.defaults import default_layout


def view(
    b: Builder,
    x: Any,
    dtype: DataType | None,
    layout: RegisterLayout | None,
    shape: Any,
    threads: int,
) -> Var:
    """Reinterpret the bits each thread holds: the same bits per thread, another dtype/layout."""
    x = b.require_tile(x, "view")
    if layout is not None and not isinstance(layout, RegisterLayout):
        raise b.type_error(
            "tv.view's layout must be a register layout",
            expected="a layout such as tv.layouts.spatial(n) * tv.layouts.local(k)",
            found=describe(layout),
        )
    shape = None if shape is None else static_shape(b, shape, "tv.view shape")
    src = x.type.layout or default_layout(x.type.shape, threads)
    dtype = dtype or x.type.dtype
    if layout is None:
        layout = _derived_layout(b, src, x.type.dtype, dtype, shape)
    elif shape is not None and layout.shape != shape:
        raise b.shape_error(
            "tv.view's layout and shape disagree",
            expected=f"a layout of shape {list(shape)}",
            found=f"{layout!r} of shape {list(layout.shape)}",
            hint="give one of them: the shape alone derives the layout",
        )
    _check_bits(b, src, x.type.dtype, layout, dtype)
    return b.instr("view", TileType(dtype, layout.shape, layout), [annotate(b, x, src)], name="view")


def _check_bits(
    b: Builder, src: RegisterLayout, old: DataType, layout: RegisterLayout, new: DataType
) -> None:
    bits_per_thread = src.local_size * old.bits
    if layout.num_threads == src.num_threads and layout.local_size * new.bits == bits_per_thread:
        return
    per_thread = (
        f"{bits_per_thread // new.bits} slots of {new}"
        if bits_per_thread % new.bits == 0
        else f"a whole number of {new.bits}-bit elements (it holds {bits_per_thread} bits)"
    )
    raise b.shape_error(
        "view must keep the bits each thread holds",
        expected=f"{src.num_threads} threads x {per_thread}",
        found=f"{layout!r}: {layout.num_threads} threads x {layout.local_size} slots of {new}",
        hint="choose layouts where local_size * bits is the same before and after the view",
    )


def _derived_layout(
    b: Builder,
    src: RegisterLayout,
    old: DataType,
    new: DataType,
    shape: tuple[int, ...] | None,
) -> RegisterLayout:
    """Along dimension ``d``: ``src`` divided by runs of ``s`` old elements, times runs of
    ``s'`` new ones (see the module's docstring)."""
    rank = src.rank
    d = _changed_dim(b, src, old, new, shape)
    common = math.gcd(old.bits, new.bits)
    s, s_new = new.bits // common, old.bits // common
    run, run_new = [1] * rank, [1] * rank
    run[d], run_new[d] = s, s_new
    try:
        derived = (src / local(*run)) * local(*run_new)
    except ValueError:
        raise _underivable(b, src, old, new, d, s) from None
    if shape is not None and derived.shape != shape:
        raise b.shape_error(
            f"tv.view from {old} to {new} cannot give shape {list(shape)}",
            expected=f"shape {list(derived.shape)}: dimension {d} scaled by {s_new}/{s}, as "
            "each thread's bits allow",
            found=str(list(shape)),
            hint="view to that shape, then tv.reshape; or give layout=",
        )
    return derived


def _changed_dim(
    b: Builder,
    src: RegisterLayout,
    old: DataType,
    new: DataType,
    shape: tuple[int, ...] | None,
) -> int:
    """The dimension a view without a layout grows or shrinks: the last one, or the one
    ``shape=`` changes (only one may change, by the ratio of the bit widths)."""
    if shape is None:
        return src.rank - 1
    changed = [d for d, (n, m) in enumerate(zip(src.shape, shape)) if n != m]
    if len(shape) != src.rank or len(changed) > 1 or (not changed and old.bits != new.bits):
        raise b.shape_error(
            f"tv.view from {old} to {new} changes one dimension of the tile",
            expected=f"the tile's shape {list(src.shape)} with one dimension scaled by "
            f"{old.bits}/{new.bits}" if old.bits != new.bits else
            f"the tile's shape {list(src.shape)} (the bit widths are equal)",
            found=str(list(shape)),
            hint="view along one dimension, then tv.reshape to the shape you want",
        )  # fmt: skip
    return changed[0] if changed else src.rank - 1


def _underivable(
    b: Builder, src: RegisterLayout, old: DataType, new: DataType, d: int, s: int
) -> Exception:
    bits = src.local_size * old.bits
    why = (
        f"each thread holds {bits} bits, not a whole number of {new.bits}-bit elements"
        if bits % new.bits
        else f"each thread's elements along dimension {d} do not come in runs of {s}"
    )
    unit = ", ".join(str(s) if i == d else "1" for i in range(src.rank))
    return b.shape_error(
        f"tv.view cannot derive the layout of a {old} -> {new} view",
        expected=f"each thread holding runs of {s} consecutive {old} elements along dimension "
        f"{d} ({s} x {old.bits} bits = a whole number of {new} elements)",
        found=f"source layout {src!r}: {why}",
        hint=f"load the tile with layout=... * tv.layouts.local({unit}) (or a multiple of "
        f"{s}), or give the view's layout= explicitly",
    )
