"""AMD CDNA target capabilities (read by the target-neutral lowering)."""

from __future__ import annotations

from tilevm.errors import CompileError
from tilevm.layouts.atoms import MFMA_ATOMS
from tilevm.lowering.target import Target

# CDNA2 (gfx90a, MI200) and CDNA3 (gfx940/941/942, MI300) all have the f16 and bf16 ("_1k")
# MFMA instructions with f32 accumulators and 64 KiB of LDS per workgroup.
MFMA_ARCHS = ("gfx90a", "gfx940", "gfx941", "gfx942")


def amd_target(arch: str = "gfx942") -> Target:
    if arch not in MFMA_ARCHS:
        raise CompileError(
            f"no AMD target for arch {arch!r}",
            expected=f"one of {', '.join(MFMA_ARCHS)} (CDNA2, CDNA3)",
            found=repr(arch),
            hint="rocminfo or amd-smi names the device's gfx arch",
            code="unsupported-target",
        )
    return Target(
        name=f"hip-{arch}",
        warp_size=64,  # CDNA runs waves of 64 lanes only
        max_threads=1024,
        shared_bytes=64 * 1024,
        vector_bytes=16,  # global_load_dwordx4 / ds_read_b128
        atoms=MFMA_ATOMS,
        # no ldmatrix counterpart before gfx950: MFMA operands come from LDS with plain reads;
        # direct global -> LDS loads move at most 4 bytes per lane here, so tv.copy_async goes
        # through registers
        matrix_loads=(),
        async_copy_bytes=(),
    )
