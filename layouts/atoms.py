"""Hardware matrix atoms as layout values.

An instruction's operand fragment is a register layout over one warp, so an instruction applies
to a tile when the tile's layout divides by the fragment's; the quotient says which warp runs
which atom with which slots. Layouts here are checked against the PTX ISA's fragment formulas by
enumeration in the tests. For mma.m16n8k16 with 16-bit inputs (groupID = lane / 4,
threadID_in_group = lane % 4)::

    A (16x16)  = column_local(2, 2).spatial(8, 4).local(1, 2)
                 row = groupID (+8 for a2,a3,a6,a7), col = 2*tig + (i & 1) (+8 for a4..a7)
    B (16x8)   = local(2, 1).column_spatial(4, 8).local(2, 1)
                 row = 2*tig + (i & 1) (+8 for b2,b3), col = groupID
    C (16x8)   = local(2, 1).spatial(8, 4).local(1, 2)
                 row = groupID (+8 for c2,c3), col = 2*tig + (i & 1)

mma.m16n8k32 with 8-bit integers has the same shapes with quads in place of pairs (A 16x32,
B 32x8). ``ldmatrix`` moves 8x8 matrices of 16-bit words (8 rows of 16 bytes) from shared memory
into exactly these fragments; ``.trans`` transposes each matrix on the way.

AMD CDNA MFMA instructions run on a wave of 64 lanes. The fragments below follow AMD's Matrix
Instruction Calculator (its CDNA register/lane equations for blocks == 1) and the matrix-core
examples of AMD's lab notes (``mfma_fp32_16x16x16fp16.cpp``, ``mfma_fp32_32x32x8fp16.cpp``). A
lane packs 4 16-bit inputs into 2 VGPRs, element ``v`` (0..3) in VGPR ``v / 2``, half ``v % 2``;
the bf16 ``_1k`` forms are listed with the same shapes and input width, so they share the f16
fragments. With ``v`` the slot (for C the accumulator VGPR)::

    16x16x16  A (16x16) = column_spatial(16, 4).local(1, 4)
                          row = lane % 16, col = 4 * (lane / 16) + v
              B (16x16) = spatial(4, 16).local(4, 1)
                          row = 4 * (lane / 16) + v, col = lane % 16
              C (16x16) = spatial(4, 16).local(4, 1)
                          row = 4 * (lane / 16) + v, col = lane % 16
    32x32x8   A (32x8)  = column_spatial(32, 2).local(1, 4)
                          row = lane % 32, col = 4 * (lane / 32) + v
              B (8x32)  = spatial(2, 32).local(4, 1)
                          row = 4 * (lane / 32) + v, col = lane % 32
              C (32x32) = local(4, 1).spatial(2, 32).local(4, 1), v in 0..15
                          row = 8 * (v / 4) + 4 * (lane / 32) + v % 4, col = lane % 32

AMD RDNA3 WMMA instructions (gfx11) run on a wave of 32 lanes; the fragments below follow AMD's
Matrix Instruction Calculator (ROCm/amd_matrix_instruction_calculator, its ``rdna3`` input and
output register/lane maps in wave32) and the example kernel of AMD's GPUOpen post "How to
accelerate AI applications on RDNA 3 using WMMA" (gpuopen.com/learn/wmma_on_rdna3). A lane packs its
16 inputs into 8 VGPRs, element ``v`` in VGPR ``v / 2``, half ``v % 2``; only 16 lanes' worth of
A and B is distinct, lanes 16-31 holding a copy of lanes 0-15. The f32 accumulator puts row
``2 v`` in lanes 0-15 and row ``2 v + 1`` in lanes 16-31 of VGPR ``v``::

    16x16x16  A (16x16) = replicate(2) . spatial(16, 1) . local(1, 16)
                          row = lane % 16, col = v          (lanes l and l + 16 alike)
              B (16x16) = replicate(2) . spatial(1, 16) . local(16, 1)
                          row = v, col = lane % 16          (lanes l and l + 16 alike)
              C (16x16) = local(8, 1) . spatial(2, 16), v in 0..7
                          row = 2 * v + lane / 16, col = lane % 16

            C, VGPR v:   col 0 .. 15
                row 2v   | lane  0 .. 15 |
                row 2v+1 | lane 16 .. 31 |
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tilevm.layouts.errors import LayoutError
from tilevm.layouts.ops import permute
from tilevm.layouts.register import RegisterLayout, primitive, replicate


@dataclass(frozen=True)
class MmaAtom:
    """One warp-level matrix instruction: ``c[m, n] += a[m, k] @ b[k, n]`` on fragments."""

    name: str
    m: int
    n: int
    k: int
    input_dtypes: tuple[str, ...]  # dtype names the a/b operands may have
    acc_dtype: str
    a: RegisterLayout
    b: RegisterLayout
    c: RegisterLayout
    intrinsic: str = ""  # the backend helper that issues it (named by the target caps)

    def accepts(self, input_dtype: str, acc_dtype: str) -> bool:
        return input_dtype in self.input_dtypes and acc_dtype == self.acc_dtype


@dataclass(frozen=True)
class MatrixLoadAtom:
    """One matrix of a warp-wide shared-memory -> register load (``ldmatrix``).

    ``layout`` is the fragment one matrix lands in (32 lanes); ``rows`` memory rows of
    ``row_bytes`` contiguous bytes each are read, lane ``r`` of each group of ``rows`` lanes giving
    the address of row ``r``. ``row_dim`` is the logical dimension the rows run along: 0 when the
    memory rows are the fragment's rows, 1 when they are its columns (a transposed tile).
    """

    name: str
    element_bits: int
    layout: RegisterLayout
    row_dim: int
    trans: bool
    rows: int = 8
    row_bytes: int = 16
    intrinsic: str = "ldmatrix"


def _l(*s: int) -> RegisterLayout:
    return primitive("local", s)


def _cl(*s: int) -> RegisterLayout:
    return primitive("column_local", s)


def _s(*s: int) -> RegisterLayout:
    return primitive("spatial", s)


def _cs(*s: int) -> RegisterLayout:
    return primitive("column_spatial", s)


MMA_M16N8K16_F16 = MmaAtom(
    name="mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32",
    m=16,
    n=8,
    k=16,
    input_dtypes=("f16",),
    acc_dtype="f32",
    a=_cl(2, 2) * _s(8, 4) * _l(1, 2),
    b=_l(2, 1) * _cs(4, 8) * _l(2, 1),
    c=_l(2, 1) * _s(8, 4) * _l(1, 2),
    intrinsic="mma_m16n8k16_f32_f16",
)
# bf16 uses the same fragments as f16; only the instruction's type suffixes differ.
MMA_M16N8K16_BF16 = replace(
    MMA_M16N8K16_F16,
    name="mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32",
    input_dtypes=("bf16",),
    intrinsic="mma_m16n8k16_f32_bf16",
)
MMA_M16N8K32_S8 = MmaAtom(
    name="mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32",
    m=16,
    n=8,
    k=32,
    input_dtypes=("i8",),
    acc_dtype="i32",
    a=_cl(2, 2) * _s(8, 4) * _l(1, 4),
    b=_l(2, 1) * _cs(4, 8) * _l(4, 1),
    c=_l(2, 1) * _s(8, 4) * _l(1, 2),
    intrinsic="mma_m16n8k32_s32_s8",
)
MMA_ATOMS = (MMA_M16N8K16_F16, MMA_M16N8K16_BF16, MMA_M16N8K32_S8)

# AMD CDNA MFMA (wave64). Each lane holds 4 consecutive K of one A row / one B column; the lane
# groups of 16 (or 32) take successive runs of 4 along K. C keeps each lane on one column with runs
# of 4 rows, and the 32x32 form repeats that run every 8 rows over its 16 accumulators.
MFMA_F32_16X16X16_F16 = MmaAtom(
    name="v_mfma_f32_16x16x16f16",
    m=16,
    n=16,
    k=16,
    input_dtypes=("f16",),
    acc_dtype="f32",
    a=_cs(16, 4) * _l(1, 4),
    b=_s(4, 16) * _l(4, 1),
    c=_s(4, 16) * _l(4, 1),
    intrinsic="mfma_f32_16x16x16_f16",
)
# bf16 (the "_1k" forms of CDNA2, spelled v_mfma_f32_*_bf16 from gfx940 on): same fragments.
MFMA_F32_16X16X16_BF16 = replace(
    MFMA_F32_16X16X16_F16,
    name="v_mfma_f32_16x16x16bf16_1k",
    input_dtypes=("bf16",),
    intrinsic="mfma_f32_16x16x16_bf16",
)
MFMA_F32_32X32X8_F16 = MmaAtom(
    name="v_mfma_f32_32x32x8f16",
    m=32,
    n=32,
    k=8,
    input_dtypes=("f16",),
    acc_dtype="f32",
    a=_cs(32, 2) * _l(1, 4),
    b=_s(2, 32) * _l(4, 1),
    c=_l(4, 1) * _s(2, 32) * _l(4, 1),
    intrinsic="mfma_f32_32x32x8_f16",
)
MFMA_F32_32X32X8_BF16 = replace(
    MFMA_F32_32X32X8_F16,
    name="v_mfma_f32_32x32x8bf16_1k",
    input_dtypes=("bf16",),
    intrinsic="mfma_f32_32x32x8_bf16",
)
# The default accumulator layout takes the first atom that fits, so 16x16 comes first: it fits
# any tile whose M and N are multiples of 16; both shapes have the same peak rate.
MFMA_ATOMS = (
    MFMA_F32_16X16X16_F16,
    MFMA_F32_16X16X16_BF16,
    MFMA_F32_32X32X8_F16,
    MFMA_F32_32X32X8_BF16,
)


# AMD RDNA3 WMMA (wave32). The upper half-wave repeats the lower one's A and B: the replication
# is the outermost thread factor (lane / 16), so ``replicate`` composes on the left.
_HALF_WAVES = replicate(2, 2)
WMMA_F32_16X16X16_F16 = MmaAtom(
    name="v_wmma_f32_16x16x16_f16",
    m=16,
    n=16,
    k=16,
    input_dtypes=("f16",),
    acc_dtype="f32",
    a=_HALF_WAVES * _s(16, 1) * _l(1, 16),
    b=_HALF_WAVES * _s(1, 16) * _l(16, 1),
    c=_l(8, 1) * _s(2, 16),
    intrinsic="wmma_f32_16x16x16_f16",
)
# bf16 has the same fragments; only the input type differs.
WMMA_F32_16X16X16_BF16 = replace(
    WMMA_F32_16X16X16_F16,
    name="v_wmma_f32_16x16x16_bf16",
    input_dtypes=("bf16",),
    intrinsic="wmma_f32_16x16x16_bf16",
)
WMMA_ATOMS = (WMMA_F32_16X16X16_F16, WMMA_F32_16X16X16_BF16)


def _one_matrix(element_bits: int, trans: bool) -> RegisterLayout:
    per_word = 32 // element_bits  # elements in each 32-bit register a lane receives
    if trans:
        return _cs(4, 8) * _l(per_word, 1)
    return _s(8, 4) * _l(1, per_word)


def matrix_load_atoms() -> tuple[MatrixLoadAtom, ...]:
    """The one-matrix ``ldmatrix`` fragments the lowering divides shared-memory tiles by: for
    16-bit and 8-bit elements, rows along either dimension, plain and (16-bit) ``.trans``."""
    out = []
    for bits in (16, 8):
        for trans in (False, True) if bits == 16 else (False,):
            base = _one_matrix(bits, trans)
            for row_dim in (0, 1):
                layout = base if row_dim == 0 else permute(base, [1, 0])
                suffix = ".trans" if trans else ""
                name = f"ldmatrix.m8n8{suffix}.b16 ({bits}-bit, rows along dim {row_dim})"
                out.append(MatrixLoadAtom(name, bits, layout, row_dim, trans))
    return tuple(out)


def ldmatrix(count: int = 1, trans: bool = False) -> RegisterLayout:
    """The register layout ``ldmatrix.sync.aligned.m8n8.x{count}[.trans].b16`` produces.

    Each 8x8 matrix of 16-bit elements lands with lane ``l`` holding row ``l / 4``, columns
    ``2 * (l % 4) + {0, 1}`` (``.trans``: the transpose). Slot ``2 * j + e`` holds element ``e`` of
    matrix ``j``. Matrices are arranged as the instruction is used for mma operands: x2 stacks two
    matrices vertically (16x8); x4 is 2x2, matrix ``j`` at rows ``8 * (j % 2)``, columns
    ``8 * (j // 2)`` (16x16).
    """
    if count not in (1, 2, 4):
        raise LayoutError(
            "ldmatrix loads 1, 2 or 4 matrices",
            expected="count in (1, 2, 4)",
            found=repr(count),
            code="layout-args",
        )
    matrix = _one_matrix(16, trans)
    arrangement = {1: _l(1, 1), 2: _l(2, 1), 4: _cl(2, 2)}[count]
    return arrangement * matrix
