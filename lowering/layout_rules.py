"""One layout rule per VM instruction.

A rule relates an instruction's result layout to its tile operands' layouts:

* ``forward(ins, operands)``: the result layout the operands' layouts imply (None: the result is
  free, or not enough is known yet);
* ``backward(ins, out, target)``: the layout each tile operand must have for the instruction to
  run on a result of layout ``out`` on ``target`` (None: any layout works for that operand);
  only the dot's rule reads the target (its matrix atoms).

Layout inference propagates with both; lowering inserts conversions where a value's layout
differs from what its user needs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

from tilevm.errors import CompileError
from tilevm.ir.nodes import Instr, Operand, Var
from tilevm.ir.types import TileType
from tilevm.layouts import RegisterLayout, divide, divisible, local
from tilevm.layouts.atoms import MmaAtom
from tilevm.layouts.errors import LayoutError
from tilevm.layouts.ops import permute, reduce, reshape
from tilevm.lowering.exprs import broadcast_project, slot_map
from tilevm.lowering.target import Target

Layouts = Sequence[RegisterLayout | None]
Forward = Callable[[Instr, Layouts], RegisterLayout | None]
Backward = Callable[[Instr, RegisterLayout, Target], list[RegisterLayout | None]]

FORWARD: dict[str, Forward] = {}
BACKWARD: dict[str, Backward] = {}


def rule(*ops: str, forward: Forward, backward: Backward) -> None:
    for op in ops:
        FORWARD[op] = forward
        BACKWARD[op] = backward


def is_tile(op: Operand) -> bool:
    return isinstance(op, Var) and isinstance(op.type, TileType)


def broadcast_layout(out: RegisterLayout, shape: Sequence[int]) -> RegisterLayout:
    """The layout an operand of ``shape`` needs to be broadcast to a result of layout ``out``:
    threads that differ only along the broadcast dimensions hold the same operand element."""
    rank = len(out.shape)
    padded = (1,) * (rank - len(shape)) + tuple(shape)
    dims = [d for d in range(rank) if padded[d] == 1 and out.shape[d] != 1]
    layout = reduce(out, dims, keepdims=True) if dims else out
    return layout if len(shape) == rank else reshape(layout, shape)


@lru_cache(maxsize=4096)
def reads_in_place(out: RegisterLayout, operand: RegisterLayout) -> bool:
    """Whether an elementwise result of layout ``out`` can read an operand held in ``operand``
    without moving data: every thread already holds what it needs, at slots that compile-time
    arithmetic finds (the two layouts differ only in how each thread orders its slots, or in
    broadcasting). Such an operand needs no conversion."""
    if operand == out or operand.num_threads != out.num_threads:
        return operand == out
    try:
        slot_map(out, operand, broadcast_project(out.shape, operand.shape))
    except CompileError:
        return False
    return True


def try_reshape(layout: RegisterLayout, shape: Sequence[int]) -> RegisterLayout | None:
    try:
        return reshape(layout, shape)
    except LayoutError:
        return None


# A thread's own multiply-add is the trivial atom: 1x1x1, one thread, one slot per operand.
SIMT_FMA = MmaAtom("fma", 1, 1, 1, (), "", local(1, 1), local(1, 1), local(1, 1), "fma")


@lru_cache(maxsize=256)
def dot_fragments(
    atom: MmaAtom, rank: int
) -> tuple[RegisterLayout, RegisterLayout, RegisterLayout]:
    """The atom's A, B and C fragments for a dot of ``rank`` (``[*batch, M, K]`` operands):
    one atom covers one batch element, so its 2-D fragments gain leading unit dimensions and
    the batch lands in the quotient, like the atom's repetitions over M and N."""
    if rank == 2:
        return atom.a, atom.b, atom.c
    unit = [1] * (rank - 2)
    return tuple(reshape(f, [*unit, *f.shape]) for f in (atom.a, atom.b, atom.c))


def dot_candidates(target: Target, ins: Instr) -> list[MmaAtom]:
    """The target's atoms that take the dot's dtypes and whose K divides the dot's."""
    a, _, c = ins.args
    k = a.type.shape[-1]
    return [
        atom
        for atom in target.atoms
        if atom.accepts(a.type.dtype.name, c.type.dtype.name) and k % atom.k == 0
    ]


def dot_atom(target: Target, ins: Instr, acc: RegisterLayout) -> MmaAtom:
    """The matrix instruction a dot with accumulator layout ``acc`` runs on: the first candidate
    whose C fragment divides ``acc``, else the thread's own multiply-add."""
    return next(
        (
            atom
            for atom in dot_candidates(target, ins)
            if divisible(acc, dot_fragments(atom, acc.rank)[2])
        ),
        SIMT_FMA,
    )


def dot_operand_layouts(
    acc: RegisterLayout, k: int, atom: MmaAtom = SIMT_FMA
) -> tuple[RegisterLayout, RegisterLayout]:
    """Divide the accumulator by the atom's C fragment: the quotient says which warp (thread,
    for SIMT) runs which atom. The warp running atom ``(i, j)`` holds atoms ``(i, :)`` of A and
    ``(:, j)`` of B, all ``k / atom.k`` of them in its own slots. For SIMT: the thread holding
    ``acc[m, n]`` holds row ``m`` of A and column ``n`` of B. Leading batch dimensions stay as
    they are in the quotient: the atoms of batch element ``e`` read only A and B of ``e``."""
    rank = acc.rank
    frag_a, frag_b, frag_c = dot_fragments(atom, rank)
    quotient = divide(acc, frag_c)
    steps = k // atom.k
    unit = [1] * (rank - 2)
    a = reduce(quotient, [rank - 1], keepdims=True) * local(*unit, 1, steps) * frag_a
    b = reduce(quotient, [rank - 2], keepdims=True) * local(*unit, steps, 1) * frag_b
    return a, b


# ----- the rules ------------------------------------------------------------------------------


def _elementwise_forward(ins: Instr, operands: Layouts) -> RegisterLayout | None:
    for op, layout in zip(ins.args, operands):
        if is_tile(op) and op.type.shape == ins.out.type.shape and layout is not None:
            return layout
    return None


def _elementwise_backward(
    ins: Instr, out: RegisterLayout, target: Target
) -> list[RegisterLayout | None]:
    return [broadcast_layout(out, op.type.shape) if is_tile(op) else None for op in ins.args]


ELEMENTWISE = frozenset({"binary", "compare", "unary", "where", "cast"})
rule(*sorted(ELEMENTWISE), forward=_elementwise_forward, backward=_elementwise_backward)
# a scan's result has its operand's layout (lowering scans along any layout)
rule("scan", forward=_elementwise_forward, backward=_elementwise_backward)


def _free(ins: Instr, operands: Layouts) -> RegisterLayout | None:
    return ins.out.type.layout if ins.out is not None and is_tile(ins.out) else None


def _any_operand(ins: Instr, out: RegisterLayout, target: Target) -> list[RegisterLayout | None]:
    return [None] * len(ins.args)


rule("load", "load_shared", "full", "arange", forward=_free, backward=_any_operand)


def _reduce_forward(ins: Instr, operands: Layouts) -> RegisterLayout | None:
    src = operands[0]
    if src is None or not is_tile(ins.out):
        return None
    return reduce(src, ins.attr("axes"), keepdims=ins.attr("keepdims"))


rule("reduce", forward=_reduce_forward, backward=_any_operand)


def _reshape_forward(ins: Instr, operands: Layouts) -> RegisterLayout | None:
    return None if operands[0] is None else try_reshape(operands[0], ins.out.type.shape)


def _reshape_backward(
    ins: Instr, out: RegisterLayout, target: Target
) -> list[RegisterLayout | None]:
    return [try_reshape(out, ins.args[0].type.shape)]


rule("reshape", forward=_reshape_forward, backward=_reshape_backward)


def _transpose_forward(ins: Instr, operands: Layouts) -> RegisterLayout | None:
    return None if operands[0] is None else permute(operands[0], ins.attr("dims"))


def _transpose_backward(
    ins: Instr, out: RegisterLayout, target: Target
) -> list[RegisterLayout | None]:
    dims = ins.attr("dims")
    inverse = [dims.index(d) for d in range(len(dims))]
    return [permute(out, inverse)]


rule("transpose", forward=_transpose_forward, backward=_transpose_backward)


def _fixed_backward(ins: Instr, out: RegisterLayout, target: Target) -> list[RegisterLayout | None]:
    """The operand keeps the layout the frontend fixed (a view reads its input's bits)."""
    return [op.type.layout if is_tile(op) else None for op in ins.args]


rule("view", forward=_free, backward=_fixed_backward)
# annotate is a conversion: it accepts any input, and proposes its layout to a free input
rule("annotate", "convert", forward=_free, backward=lambda ins, out, target: [out])


def _dot_forward(ins: Instr, operands: Layouts) -> RegisterLayout | None:
    return operands[2]


def _dot_backward(ins: Instr, out: RegisterLayout, target: Target) -> list[RegisterLayout | None]:
    atom = dot_atom(target, ins, out)
    a, b = dot_operand_layouts(out, ins.args[0].type.shape[-1], atom)
    return [a, b, out]


rule("dot", forward=_dot_forward, backward=_dot_backward)


# instructions that take a tile of any layout and produce no tile
rule("store", "store_shared", "print", "atomic_add", forward=_free, backward=_any_operand)
# a scalar atomic: no tile operand, a scalar result
rule("atomic_fetch_add", forward=_free, backward=_any_operand)

# ops whose result layout does not follow from the operands: inference never overrides them
FREE_RESULT = frozenset({"load", "load_shared", "full", "arange", "view", "annotate", "convert"})
# ops whose operands need not match ``backward`` exactly (the lowering handles any layout)
FLEXIBLE_OPERANDS = frozenset(
    {"annotate", "convert", "store", "store_shared", "print", "reduce", "atomic_add"}
)
