"""mma.sync and ldmatrix fragment layouts against the PTX ISA's formulas, lane by lane."""

from __future__ import annotations

import pytest

import tilevm.layouts as tl
from tilevm.layouts.atoms import MMA_M16N8K16_BF16, MMA_M16N8K16_F16, ldmatrix


def ptx_m16n8k16_a(lane: int, i: int) -> tuple[int, int]:
    group, tig = lane >> 2, lane % 4
    row = group if (0 <= i < 2 or 4 <= i < 6) else group + 8
    col = tig * 2 + (i & 1) + (8 if i >= 4 else 0)
    return row, col


def ptx_m16n8k16_b(lane: int, i: int) -> tuple[int, int]:
    group, tig = lane >> 2, lane % 4
    row = tig * 2 + (i & 1) + (8 if i >= 2 else 0)
    return row, group


def ptx_m16n8k16_c(lane: int, i: int) -> tuple[int, int]:
    group, tig = lane >> 2, lane % 4
    row = group if i < 2 else group + 8
    return row, tig * 2 + (i & 1)


@pytest.mark.parametrize(
    "atom", [MMA_M16N8K16_F16, MMA_M16N8K16_BF16], ids=lambda a: a.input_dtypes[0]
)
def test_mma_m16n8k16_fragments_match_the_ptx_isa(atom: tl.atoms.MmaAtom) -> None:
    for operand, formula, shape, slots in (
        (atom.a, ptx_m16n8k16_a, (16, 16), 8),
        (atom.b, ptx_m16n8k16_b, (16, 8), 4),
        (atom.c, ptx_m16n8k16_c, (16, 8), 4),
    ):
        assert operand.shape == shape and operand.num_threads == 32 and operand.local_size == slots
        assert operand.replication == 1
        for lane in range(32):
            for i in range(slots):
                assert operand(lane, i) == formula(lane, i)


def ptx_ldmatrix(lane: int, slot: int, trans: bool) -> tuple[int, int, int]:
    """(matrix, row, col) that lane's register ``slot // 2`` half ``slot % 2`` receives."""
    matrix, half = slot // 2, slot % 2
    row, col = lane // 4, 2 * (lane % 4) + half
    return (matrix, col, row) if trans else (matrix, row, col)


@pytest.mark.parametrize("count", [1, 2, 4])
@pytest.mark.parametrize("trans", [False, True])
def test_ldmatrix_fragments_match_the_ptx_isa(count: int, trans: bool) -> None:
    layout = ldmatrix(count, trans)
    assert layout.num_threads == 32 and layout.local_size == 2 * count
    for lane in range(32):
        for slot in range(2 * count):
            matrix, r, c = ptx_ldmatrix(lane, slot, trans)
            # x2 stacks matrices vertically; x4 is 2x2 with matrix j at (8 * (j % 2), 8 * (j // 2))
            expected = (8 * (matrix % 2) + r, 8 * (matrix // 2) + c)
            assert layout(lane, slot) == expected


def test_ldmatrix_x4_feeds_the_a_operand_and_x2_trans_the_b_operand() -> None:
    assert ldmatrix(4) == MMA_M16N8K16_F16.a
    assert ldmatrix(2, trans=True) == MMA_M16N8K16_F16.b


def test_a_warp_tile_divides_by_the_atom_and_the_quotient_says_who_does_what() -> None:
    a = MMA_M16N8K16_F16.a
    tile = tl.local(2, 2) * a  # one warp, 2x2 atoms of 16x16 each, in its registers
    quotient = tile / a
    assert quotient == tl.local(2, 2) and quotient.num_threads == 1
    block = tl.spatial(2, 2) * tile  # four warps side by side
    assert block / a == tl.spatial(2, 2) * tl.local(2, 2)
    with pytest.raises(tl.LayoutDivisionError):
        tl.spatial(16, 8) / MMA_M16N8K16_F16.c


def test_ldmatrix_count_is_checked() -> None:
    with pytest.raises(tl.LayoutError, match="1, 2 or 4"):
        ldmatrix(3)
