"""Shared layouts: strides, swizzles, offsets."""

from __future__ import annotations

import numpy as np
import pytest

import tilevm.layouts as tl


def test_row_and_column_major_offsets() -> None:
    row = tl.shared_layout([3, 5])
    assert row.strides == (5, 1) and row.offset(2, 3) == 13
    col = tl.shared_layout([3, 5], order="column")
    assert col.strides == (1, 3) and col.offset(2, 3) == 11
    padded = tl.shared_layout([4, 8], strides=[9, 1])
    assert padded.cosize == 3 * 9 + 8 and padded.is_injective()
    assert np.array_equal(row.offsets(), np.arange(15).reshape(3, 5))


@pytest.mark.parametrize(
    ("bits", "base", "shift"), [(1, 0, 1), (2, 1, 3), (3, 3, 3), (3, 4, 3), (2, 0, 5)]
)
def test_swizzle_is_a_permutation_of_each_aligned_block(bits: int, base: int, shift: int) -> None:
    sw = tl.swizzle(bits, base, shift)
    block = 1 << (bits + base + shift)
    offsets = np.arange(4 * block)
    out = sw(offsets)
    for start in range(0, offsets.size, block):
        assert sorted(out[start : start + block].tolist()) == list(range(start, start + block))
    assert np.array_equal(sw(out), offsets)  # an XOR swizzle is its own inverse
    # the definition, bit by bit
    for o in range(0, 4 * block, 7):
        yyy = (o >> (base + shift)) & ((1 << bits) - 1)
        assert sw(o) == o ^ (yyy << base)


def test_swizzled_f16_tile_rows_spread_over_all_16_byte_chunks() -> None:
    """A 8x64 f16 tile (128-byte rows) with swizzle(3, 3, 3): the 16-byte chunk holding column
    block 0 lands in a different chunk in each of the 8 rows, the ldmatrix-friendly property."""
    layout = tl.shared_layout([8, 64]).swizzled(3, 3, 3)
    chunks = [layout.byte_offset((r, 0), 16) // 16 % 8 for r in range(8)]
    assert sorted(chunks) == list(range(8))
    assert layout.is_injective() and layout.cosize == 8 * 64


def test_byte_offsets_and_errors() -> None:
    layout = tl.shared_layout([4, 8])
    assert layout.byte_offset((1, 2), 16) == 20
    assert layout.byte_offset((0, 2), 4) == 1
    with pytest.raises(tl.LayoutError, match="byte boundary"):
        layout.byte_offset((0, 1), 4)
    with pytest.raises(tl.LayoutError, match="outside"):
        layout.offset(4, 0)
    with pytest.raises(tl.LayoutError, match="permutation"):
        tl.swizzle(3, 0, 2)
    with pytest.raises(tl.LayoutError, match="stride"):
        tl.shared_layout([4, 8], strides=[1])
    with pytest.raises(tl.LayoutError, match="order"):
        tl.shared_layout([4, 8], order="diagonal")
