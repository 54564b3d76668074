"""AMD target capabilities (read by the target-neutral lowering): CDNA and RDNA3."""

from __future__ import annotations

from tilevm.errors import CompileError
from tilevm.layouts.atoms import MFMA_ATOMS, WMMA_ATOMS
from tilevm.lowering.target import Target

# CDNA2 (gfx90a, MI200) and CDNA3 (gfx940/941/942, MI300) all have the f16 and bf16 ("_1k")
# MFMA instructions with f32 accumulators and 64 KiB of LDS per workgroup.
MFMA_ARCHS = ("gfx90a", "gfx940", "gfx941", "gfx942")
# RDNA3 (gfx1100, Radeon RX 7900): wave32 WMMA with f16/bf16 inputs and f32 accumulators.
WMMA_ARCHS = ("gfx1100",)
AMD_ARCHS = MFMA_ARCHS + WMMA_ARCHS

# Registers one lane may use, in bits: 512 VGPRs on CDNA2/3 (256 architected plus 256
# accumulation registers, one unified file), 256 VGPRs on RDNA3 in wave32.
CDNA_REGISTER_BITS = 512 * 32
RDNA_REGISTER_BITS = 256 * 32


def amd_target(arch: str = "gfx942") -> Target:
    if arch in MFMA_ARCHS:
        return _cdna(arch)
    if arch in WMMA_ARCHS:
        return _rdna3(arch)
    raise CompileError(
        f"no AMD target for arch {arch!r}",
        expected=f"one of {', '.join(AMD_ARCHS)} (CDNA2, CDNA3, RDNA3)",
        found=repr(arch),
        hint="rocminfo or amd-smi names the device's gfx arch",
        code="unsupported-target",
    )


def _cdna(arch: str) -> Target:
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
        register_bits=CDNA_REGISTER_BITS,
    )


def _rdna3(arch: str) -> Target:
    return Target(
        name=f"hip-{arch}",
        # RDNA runs wave32 or wave64; HIP compiles gfx11 for wave32, the mode WMMA's _w32
        # builtins (and their fragment layouts) are defined for
        warp_size=32,
        max_threads=1024,
        shared_bytes=64 * 1024,  # LDS a workgroup may allocate
        vector_bytes=16,  # global_load_b128 / ds_load_b128
        atoms=WMMA_ATOMS,
        # no matrix loads from LDS (ds_load_tr arrives with gfx12.5) and no direct global ->
        # LDS copies: WMMA operands are read with plain loads, tv.copy_async goes through
        # registers
        matrix_loads=(),
        async_copy_bytes=(),
        register_bits=RDNA_REGISTER_BITS,
    )
