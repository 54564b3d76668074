"""Check: every register tile fits (generously) in a thread's registers.

A register tile is held by the block's threads, ``layout.local_size`` slots each. A tile far
beyond the target's register file cannot live in registers: the vendor compiler spills all of
it, and takes minutes doing so. Spilling some is legal and common, so a kernel is refused only
when one tile needs more than ``REGISTER_FACTOR`` times a thread's registers
(``Target.register_bits``).

The estimate is a lower bound of what any compiler needs: the largest tile the program reads,
its slots times its element bits (packed, as if sub-byte elements shared registers). Tiles live
at the same time are not added up: a compiler may stream one tile into the next (a
conversion's shared-memory reads into the dot that consumes them), so their sum is no bound
every compiler meets, and it is over this budget for kernels that run well. A tile without a
layout (the interpreter's VM IR) counts the slots of its fairest spread over the block:
ceil(elements / threads).
"""

from __future__ import annotations

import math

from tilevm.errors import ShapeError
from tilevm.ir.nodes import Assign, Instr, KernelIR, Var, walk
from tilevm.ir.types import TileType

REGISTER_FACTOR = 4  # how far past the register file one tile may go (spilling)


def tile_bits(t: TileType, num_threads: int) -> int:
    """The bits of a tile one thread holds: its slots times the element width."""
    if t.layout is not None:
        slots = t.layout.local_size
    else:
        slots = math.ceil(math.prod(t.shape) / num_threads)
    return slots * t.dtype.bits


def largest_tile(kernel: KernelIR) -> tuple[int, Instr | None]:
    """The most bits one thread holds of a tile the program reads, and the instruction that
    makes that tile (None when there is no tile)."""
    read: set[Var] = set()
    for stmt in walk(kernel.body):
        operands = stmt.args if isinstance(stmt, Instr) else (stmt.value,)
        read.update(op for op in operands if isinstance(op, Var))
    best, maker = 0, None
    for stmt in walk(kernel.body):
        if isinstance(stmt, Assign) or stmt.out is None or stmt.out not in read:
            continue  # an unread result takes no registers
        if isinstance(stmt.out.type, TileType):
            bits = tile_bits(stmt.out.type, kernel.num_threads)
            if bits > best:
                best, maker = bits, stmt
    return best, maker


def check_registers(kernel: KernelIR, register_bits: int, target: str) -> None:
    """Refuse a kernel with a tile over ``REGISTER_FACTOR`` times a thread's ``register_bits``
    on ``target``, at the line that makes the tile."""
    limit = REGISTER_FACTOR * register_bits
    bits, maker = largest_tile(kernel)
    if bits <= limit or maker is None:
        return
    t = maker.out.type
    tile = f"{t.dtype}[{', '.join(map(str, t.shape))}]"
    raise ShapeError(
        f"the tile {maker.out.name}: {tile} needs {bits} bits of registers per thread (in a "
        f"block of {kernel.num_threads}); {target} has {register_bits}, and at most "
        f"{REGISTER_FACTOR}x that may spill",
        expected=f"a tile of at most {limit} bits per thread",
        found=f"{bits} bits per thread ({bits // t.dtype.bits} elements of {t.dtype})",
        hint="use a smaller BLOCK, more warps (warps=), or a loop over sub-tiles (tv.range)",
        location=maker.loc,
        code="register-budget",
    )
