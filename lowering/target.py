"""Target capabilities: everything the lowering may know about a machine.

The lowering never names a backend; it reads one of these values. A backend contributes its own
value (warp size, shared memory, vector width, native float types, matrix atoms as layouts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Target:
    name: str  # e.g. "cuda-sm_90a": names generated code and cache entries
    warp_size: int
    max_threads: int = 1024
    shared_bytes: int = 48 * 1024  # per block, the most a kernel may plan for
    vector_bytes: int = 16  # widest single global/shared access per thread
    native_floats: frozenset[str] = frozenset({"f16", "bf16", "f32", "f64"})
    # Matrix instructions as layout values (filled in by the tensor-core work); the lowering
    # chooses one when the operands' layouts divide by the atom's fragment layouts.
    atoms: tuple[Any, ...] = field(default=())

    def __str__(self) -> str:
        return self.name
