"""The order a reduction combines a tile's elements in, from its register layout alone.

Each thread first combines its own slots, in slot order; threads of a warp that hold parts of
one result then exchange partials with xor-shuffles (``masks``, in order); the groups left
(across warps) meet in shared memory (``shared``: the ``(radix, stride)`` of each thread digit,
read most significant first). The lowering emits this order, and the interpreter follows it
for sums, whose partial sums round (docs/language.md, "Accumulation").
"""

from __future__ import annotations

from tilevm.layouts import RegisterLayout
from tilevm.lowering.exprs import digits


def _reduced_entries(layout: RegisterLayout, axes) -> set[int]:
    mode, out = 0, set()
    for d, dim in enumerate(layout.modes):
        for _ in dim:
            if d in axes:
                out.add(mode)
            mode += 1
    return out


def thread_groups(
    layout: RegisterLayout, axes, warp_size: int
) -> tuple[list[int], list[tuple[int, int]]]:
    """The thread digits along reduced dimensions: (xor-shuffle masks for the part of each digit
    inside a warp, the ``(radix, stride)`` of the parts that meet in shared memory)."""
    gone = _reduced_entries(layout, axes)
    masks, shared = [], []
    for entry, radix, stride in digits(layout.spatial_modes, layout.mode_sizes):
        if entry < 0 or entry not in gone:
            continue
        inside = 1
        if radix & (radix - 1) == 0 and stride & (stride - 1) == 0 and stride < warp_size:
            inside = min(radix, warp_size // stride)
            masks += [stride << b for b in range((inside - 1).bit_length())]
        if radix > inside:
            shared.append((radix // inside, stride * inside))
    return masks, shared
