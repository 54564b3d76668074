"""Target capabilities: everything the lowering may know about a machine.

The lowering never names a backend; it reads one of these values. A backend contributes its own
value (warp size, shared memory, vector width, native float types, matrix atoms as layouts).
"""

from __future__ import annotations

from dataclasses import dataclass

from tilevm.ir.types import ATOMIC_ADD_DTYPES
from tilevm.layouts.atoms import MatrixLoadAtom, MmaAtom

# Registers one thread may use on NVIDIA GPUs: 255 of 32 bits (every arch since sm_35). The
# CPU's own target and the interpreter use the same figure, so a kernel tested there fits a GPU.
NVIDIA_REGISTER_BITS = 255 * 32


@dataclass(frozen=True)
class Target:
    name: str  # e.g. "cuda-sm_90a": names generated code and cache entries
    warp_size: int
    max_threads: int = 1024
    shared_bytes: int = 48 * 1024  # per block, the most a kernel may plan for
    vector_bytes: int = 16  # widest single global/shared access per thread
    native_floats: frozenset[str] = frozenset({"f16", "bf16", "f32", "f64"})
    # Matrix instructions as layout values: a dot uses an atom when its accumulator's layout
    # divides by the atom's C fragment (and the operands' by A and B).
    atoms: tuple[MmaAtom, ...] = ()
    # Warp-wide shared -> register matrix loads: a shared load uses one when the tile's layout
    # divides by the atom's one-matrix fragment and the shared rows are contiguous.
    matrix_loads: tuple[MatrixLoadAtom, ...] = ()
    # Sizes (bytes) of asynchronous global -> shared copies per thread; () when the target has
    # none (tv.copy_async then copies through registers).
    async_copy_bytes: tuple[int, ...] = ()
    # The most blocks a launch may have along x, y and z.
    max_grid: tuple[int, int, int] = (2**31 - 1, 2**31 - 1, 2**31 - 1)
    # Element types global atomic adds exist for (tv.atomic_add); others are compile errors.
    atomic_add_dtypes: frozenset[str] = ATOMIC_ADD_DTYPES
    # Bits of registers one thread may use; a register tile may need at most a few times this
    # (``lowering.budget``) before a kernel is refused.
    register_bits: int = NVIDIA_REGISTER_BITS

    def __str__(self) -> str:
        return self.name
