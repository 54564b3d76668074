"""Shared -> register loads through the target's warp-wide matrix loads (``ldmatrix``).

A tile's layout that divides by a one-matrix fragment (``target.matrix_loads``) is loaded one
matrix per quotient slot, up to four matrices per instruction: lane ``l`` gives the shared
address of row ``l % 8`` of matrix ``(l / 8) % count``, whose place in the tile the quotient
layout says (``coords`` of the warp and slot). This needs each matrix row to be 16 contiguous,
16-byte aligned bytes in shared memory: unit stride along the row, other strides and the
row's starting offset multiples of the row, and a swizzle (if any) that moves whole rows.
Anything else loads element by element (``lower_memory``).
"""

from __future__ import annotations

from collections.abc import Sequence

from tilevm import dtypes as dts
from tilevm.ir.nodes import Instr, Operand, Var
from tilevm.layouts import divide, divisible
from tilevm.layouts.atoms import MatrixLoadAtom
from tilevm.lowering import lower_memory
from tilevm.lowering import thread_ir as t
from tilevm.lowering.exprs import add, coords, div, mod, mul
from tilevm.lowering.lower import Lowerer, lowers


@lowers("load_shared")  # registered after lower_memory's: tries matrix loads first
def _load_shared(lw: Lowerer, ins: Instr) -> None:
    smem, *offsets = ins.args
    atom = _matrix_atom(lw, ins.out, smem, offsets)
    if atom is None:
        lower_memory.load_shared_plain(lw, ins)
        return
    _emit(lw, ins.out, smem, offsets, atom)


def _matrix_atom(
    lw: Lowerer, out: Var, smem: Var, offsets: Sequence[Operand]
) -> MatrixLoadAtom | None:
    tile = out.type.layout
    bits = smem.type.dtype.storage.itemsize * 8
    if tile.rank != 2:
        return None
    for atom in lw.target.matrix_loads:
        if atom.element_bits != bits or atom.layout.num_threads != lw.target.warp_size:
            continue
        if divisible(tile, atom.layout) and _rows_fit(lw, smem, offsets, atom, bits):
            return atom
    return None


def _rows_fit(
    lw: Lowerer, smem: Var, offsets: Sequence[Operand], atom: MatrixLoadAtom, bits: int
) -> bool:
    layout = smem.type.layout
    lead = len(layout.shape) - 2
    along = lead + 1 - atom.row_dim  # the shared dimension a matrix row runs along
    row = atom.row_bytes * 8 // bits  # elements per row
    swizzle = layout.swizzle
    return (
        layout.strides[along] == 1
        and all(s % row == 0 for d, s in enumerate(layout.strides) if d != along)
        and lw.plan.offsets[smem] % atom.row_bytes == 0
        and lw.div.of(offsets[along]) % row == 0
        and (swizzle is None or 1 << swizzle.base >= row)
    )


def _emit(
    lw: Lowerer, out: Var, smem: Var, offsets: Sequence[Operand], atom: MatrixLoadAtom
) -> None:
    tile = out.type.layout
    quotient = divide(tile, atom.layout)  # over warps: slot j is a whole matrix
    n = quotient.local_size
    count = 4 if n % 4 == 0 else 2 if n % 2 == 0 else 1
    access = lower_memory.user_access(lw, smem, tile, offsets)
    warp_size = lw.target.warp_size
    lane = mod(lw.tid, warp_size)
    warp = div(lw.tid, warp_size)
    matrix = mod(div(lane, atom.rows), count)
    row = mod(lane, atom.rows)
    name = lw.declare_tile(out)
    fn = f"{atom.intrinsic}{'_trans' if atom.trans else ''}_x{count}"

    def group(first: t.Expr) -> None:
        origin = coords(quotient, warp, add(first, matrix))
        index = [mul(o, extent) for o, extent in zip(origin, atom.layout.shape)]
        index[atom.row_dim] = add(index[atom.row_dim], row)
        address = t.Addr(access.at(index), out.type.dtype)
        dst = t.Ref(name, mul(first, atom.layout.local_size), out.type.dtype)
        lw.emit(t.Effect(t.Call(fn, (dst, address), dts.i32)))

    lw.slots(n, group, step=count)
