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
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tilevm.layouts.errors import LayoutError
from tilevm.layouts.register import RegisterLayout, primitive


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
)
# bf16 uses the same fragments as f16; only the instruction's type suffixes differ.
MMA_M16N8K16_BF16 = replace(
    MMA_M16N8K16_F16,
    name="mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32",
    input_dtypes=("bf16",),
)


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
    matrix = _cs(4, 8) * _l(2, 1) if trans else _s(8, 4) * _l(1, 2)
    arrangement = {1: _l(1, 1), 2: _l(2, 1), 4: _cl(2, 2)}[count]
    return arrangement * matrix
