"""CUDA target capabilities (read by the target-neutral lowering)."""

from __future__ import annotations

from tilevm.ir.types import ATOMIC_ADD_DTYPES
from tilevm.layouts.atoms import MMA_ATOMS, matrix_load_atoms
from tilevm.lowering.target import NVIDIA_REGISTER_BITS, Target

# Static shared memory per block without opting in is 48 KiB; sm_80 and sm_90 allow more per
# block once the kernel raises its limit, which the runtime does when a plan needs it.
SHARED_OPTIN = {"sm_80": 163 * 1024, "sm_86": 99 * 1024, "sm_89": 99 * 1024, "sm_90": 227 * 1024,
                "sm_90a": 227 * 1024}  # fmt: skip


# The first arch with a global atomicAdd of each type that not every arch has.
ATOMIC_ADD_SINCE = {"f64": 60, "f16": 70, "bf16": 80}


def cuda_target(arch: str = "sm_90a") -> Target:
    number = int("".join(c for c in arch[3:] if c.isdigit()) or 0)
    ampere = number >= 80
    return Target(
        name=f"cuda-{arch}",
        warp_size=32,
        max_threads=1024,
        shared_bytes=SHARED_OPTIN.get(arch, 48 * 1024),
        vector_bytes=16,
        # mma.sync m16n8k16 / m16n8k32, ldmatrix and cp.async all exist from sm_80 on
        atoms=MMA_ATOMS if ampere else (),
        matrix_loads=matrix_load_atoms() if ampere else (),
        async_copy_bytes=(16, 8, 4) if ampere else (),
        max_grid=(2**31 - 1, 65535, 65535),
        atomic_add_dtypes=frozenset(
            name for name in ATOMIC_ADD_DTYPES if number >= ATOMIC_ADD_SINCE.get(name, 0)
        ),
        register_bits=NVIDIA_REGISTER_BITS,
    )
