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


def ptx_m16n8k32_s8(operand: str, lane: int, i: int) -> tuple[int, int]:
    group, tig = lane >> 2, lane % 4
    if operand == "a":
        row = group + (8 if i in (4, 5, 6, 7, 12, 13, 14, 15) else 0)
        return row, tig * 4 + (i & 3) + (16 if i >= 8 else 0)
    if operand == "b":
        return tig * 4 + (i & 3) + (16 if i >= 4 else 0), group
    return (group if i < 2 else group + 8), tig * 2 + (i & 1)


def test_mma_m16n8k32_s8_fragments_match_the_ptx_isa() -> None:
    atom = tl.atoms.MMA_M16N8K32_S8
    for name, shape, slots in (("a", (16, 32), 16), ("b", (32, 8), 8), ("c", (16, 8), 4)):
        layout = getattr(atom, name)
        assert layout.shape == shape and layout.num_threads == 32 and layout.local_size == slots
        for lane in range(32):
            for i in range(slots):
                assert layout(lane, i) == ptx_m16n8k32_s8(name, lane, i)


def ldmatrix_received(lane: int, word_elems: int, trans: bool) -> list[tuple[int, int]]:
    """(memory row, element column) each of a lane's elements comes from, per the PTX ISA:
    without .trans lane l gets 32-bit word l % 4 of row l / 4; with .trans the 16-bit
    elements (2 * (l % 4) + h, l / 4)."""
    if trans:
        return [(2 * (lane % 4) + h, lane // 4) for h in range(2)]
    return [(lane // 4, (lane % 4) * word_elems + e) for e in range(word_elems)]


@pytest.mark.parametrize("atom", tl.atoms.matrix_load_atoms(), ids=lambda a: a.name)
def test_one_matrix_load_fragments_match_the_ptx_isa(atom) -> None:
    word = 32 // atom.element_bits
    layout = atom.layout
    assert layout.num_threads == 32 and layout.local_size == word
    assert atom.rows * atom.row_bytes * 8 == layout.size * atom.element_bits
    for lane in range(32):
        for slot, (row, col) in enumerate(ldmatrix_received(lane, word, atom.trans)):
            logical = (row, col) if atom.row_dim == 0 else (col, row)
            assert layout(lane, slot) == logical


def test_the_mma_operands_divide_by_one_matrix_loads() -> None:
    atoms = {(a.element_bits, a.trans, a.row_dim): a.layout for a in tl.atoms.matrix_load_atoms()}
    f16 = MMA_M16N8K16_F16
    assert tl.divisible(f16.a, atoms[16, False, 0])  # A row-major: ldmatrix
    assert tl.divisible(f16.b, atoms[16, True, 0])  # B [K, N] row-major: ldmatrix.trans
    assert tl.divisible(f16.b, atoms[16, False, 1])  # B stored [N, K]: plain ldmatrix
    assert tl.divisible(tl.transpose(f16.a), atoms[16, True, 0])  # A stored [K, M]: .trans
    s8 = tl.atoms.MMA_M16N8K32_S8
    assert tl.divisible(s8.a, atoms[8, False, 0]) and tl.divisible(s8.b, atoms[8, False, 1])


# AMD MFMA (wave64), per AMD's Matrix Instruction Calculator and lab-notes examples: a lane packs
# 4 16-bit inputs (v = 0..3, VGPR v // 2, half v % 2); C slot v is accumulator VGPR v.
def mfma_16x16x16(operand: str, lane: int, v: int) -> tuple[int, int]:
    if operand == "a":  # A[i][k]
        return lane % 16, 4 * (lane // 16) + v
    return 4 * (lane // 16) + v, lane % 16  # B[k][j] and C[i][j] alike


def mfma_32x32x8(operand: str, lane: int, v: int) -> tuple[int, int]:
    if operand == "a":
        return lane % 32, 4 * (lane // 32) + v
    if operand == "b":
        return 4 * (lane // 32) + v, lane % 32
    return 8 * (v // 4) + 4 * (lane // 32) + v % 4, lane % 32


MFMA_CASES = [
    pytest.param(atom, formula, id=atom.name)
    for atom, formula in (
        (tl.atoms.MFMA_F32_16X16X16_F16, mfma_16x16x16),
        (tl.atoms.MFMA_F32_16X16X16_BF16, mfma_16x16x16),
        (tl.atoms.MFMA_F32_32X32X8_F16, mfma_32x32x8),
        (tl.atoms.MFMA_F32_32X32X8_BF16, mfma_32x32x8),
    )
]


@pytest.mark.parametrize(("atom", "formula"), MFMA_CASES)
def test_mfma_fragments_match_amds_formulas(atom: tl.atoms.MmaAtom, formula) -> None:
    m, n, k = atom.m, atom.n, atom.k
    for name, shape in (("a", (m, k)), ("b", (k, n)), ("c", (m, n))):
        layout = getattr(atom, name)
        slots = m * n // 64 if name == "c" else 4
        assert layout.shape == shape and layout.num_threads == 64 and layout.local_size == slots
        assert layout.replication == 1
        seen = {}
        for lane in range(64):
            for v in range(slots):
                index = layout(lane, v)
                assert index == formula(name, lane, v), (name, lane, v)
                seen[index] = seen.get(index, 0) + 1
        # every element of the operand is held by exactly one (lane, slot)
        assert seen == {(r, c): 1 for r in range(shape[0]) for c in range(shape[1])}


def test_mfma_atoms_are_the_f16_and_bf16_forms_of_two_shapes() -> None:
    atoms = tl.atoms.MFMA_ATOMS
    assert [(a.m, a.n, a.k, a.input_dtypes, a.acc_dtype) for a in atoms] == [
        (16, 16, 16, ("f16",), "f32"),
        (16, 16, 16, ("bf16",), "f32"),
        (32, 32, 8, ("f16",), "f32"),
        (32, 32, 8, ("bf16",), "f32"),
    ]
    assert [a.intrinsic for a in atoms] == [
        "mfma_f32_16x16x16_f16",
        "mfma_f32_16x16x16_bf16",
        "mfma_f32_32x32x8_f16",
        "mfma_f32_32x32x8_bf16",
    ]
    assert atoms[0].accepts("f16", "f32") and not atoms[0].accepts("bf16", "f32")


@pytest.mark.parametrize("atom", tl.atoms.MFMA_ATOMS[::2], ids=lambda a: a.name)
def test_a_block_tile_divides_by_the_mfma_fragments(atom: tl.atoms.MmaAtom) -> None:
    # four waves in a 2x2 grid, each holding 2x2 accumulator atoms
    acc = tl.spatial(2, 2) * tl.local(2, 2) * atom.c
    assert acc / atom.c == tl.spatial(2, 2) * tl.local(2, 2)
    a = tl.spatial(2, 1) * tl.local(2, 3) * atom.a  # each wave: 2 atoms of M, 3 steps of K
    assert a / atom.a == tl.spatial(2, 1) * tl.local(2, 3)
    # the transposed fragment (lanes along rows, slots along columns) is another layout
    with pytest.raises(tl.LayoutDivisionError):
        tl.local(2, 2) * tl.transpose(atom.c) / atom.c
