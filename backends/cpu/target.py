"""The CPU's own target, and the GPU targets it can emulate.

``device="cpu"`` lowers for the CPU: warps of 32 threads, no matrix atoms (dots use the
multiply-add loop, which LLVM vectorizes). ``device="cpu:amd"`` (or ``cpu:cuda``, ``cpu:intel``,
optionally with an arch: ``cpu:amd-gfx90a``, ``cpu:cuda-sm_90a``) lowers for that GPU's
capabilities -- its warp size, matrix atoms and matrix loads -- and runs the result here, so the
lowering of every vendor is executed and checked on any machine.
"""

from __future__ import annotations

from tilevm.backends.cuda.target import cuda_target
from tilevm.backends.hip.target import amd_target
from tilevm.backends.sycl.target import intel_target
from tilevm.errors import DeviceError
from tilevm.lowering.target import NVIDIA_REGISTER_BITS, Target

EMULATED = {"cuda": (cuda_target, "sm_80"), "amd": (amd_target, "gfx942"),
            "intel": (intel_target, "xe")}  # fmt: skip


def cpu_target() -> Target:
    return Target(
        name="cpu",
        warp_size=32,
        max_threads=1024,
        shared_bytes=96 * 1024,  # a workspace in host memory; kept GPU-sized for portability
        vector_bytes=16,
        # registers: a CUDA GPU's, so that a kernel tested here is one a GPU can hold (the
        # emulated targets bring their own)
        register_bits=NVIDIA_REGISTER_BITS,
    )


def target_for(device: str) -> Target:
    """The target ``device`` ("cpu" or "cpu:<vendor>[-<arch>]") lowers for."""
    _, _, emulated = device.partition(":")
    if not emulated:
        return cpu_target()
    vendor, _, arch = emulated.partition("-")
    if vendor not in EMULATED:
        raise DeviceError(
            f"the CPU cannot emulate {emulated!r}",
            expected="'cpu', or 'cpu:' + one of "
            + ", ".join(repr(v) for v in EMULATED)
            + " (optionally with an arch, e.g. 'cpu:amd-gfx90a')",
            found=repr(device),
            code="no-device",
        )
    make, default = EMULATED[vendor]
    return make(arch or default)
