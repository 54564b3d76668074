"""SYCL target capabilities (read by the target-neutral lowering): Intel GPUs and the OpenCL CPU.

A warp is a sub-group: generated kernels require the target's size of the device. No matrix
atoms yet (joint_matrix / XMX is not verified on any machine here): dots use the SIMT
multiply-add. Shared memory is work-group local memory.
"""

from __future__ import annotations

from tilevm.errors import CompileError
from tilevm.lowering.target import NVIDIA_REGISTER_BITS, Target

# family -> (sub-group size the kernels request, local memory per work-group)
INTEL_GPUS = {
    "xe": (16, 64 * 1024),  # any Xe GPU: 16 is a size every one of them supports
    "pvc": (16, 128 * 1024),  # Data Center GPU Max (Ponte Vecchio)
    "bmg": (16, 128 * 1024),  # Arc B-series (Battlemage)
    "dg2": (16, 64 * 1024),  # Arc A-series / Data Center GPU Flex
}
SUB_GROUP_SIZES = {name: size for name, (size, _) in INTEL_GPUS.items()}

# Registers one work-item may use, in bits: 256 registers of 64 bytes per hardware thread in
# large-GRF mode (Xe-HPC, Xe2), shared by a 16-wide sub-group's work-items: 1 KiB each. The
# most an Intel GPU gives; Xe-HPG's 32-byte registers hold half, so it spills sooner.
INTEL_REGISTER_BITS = 256 * 64 * 8 // 16

# The OpenCL CPU device offers sub-groups of 4..64; 16 keeps its code the same as a GPU's.
CPU_SUB_GROUP = 16


def intel_target(name: str = "xe") -> Target:
    if name not in INTEL_GPUS:
        raise CompileError(
            f"no Intel target named {name!r}",
            expected=f"one of {', '.join(INTEL_GPUS)}",
            found=repr(name),
            hint="intel_target() targets Xe GPUs",
            code="unsupported-target",
        )
    sub_group, local_bytes = INTEL_GPUS[name]
    return Target(
        name=f"sycl-{name}",
        warp_size=sub_group,
        max_threads=1024,
        shared_bytes=local_bytes,
        vector_bytes=16,
        atoms=(),  # no matrix atoms yet: dots use the SIMT multiply-add
        register_bits=INTEL_REGISTER_BITS,
    )


def opencl_cpu_target(
    sub_group_sizes: tuple[int, ...] = (4, 8, 16, 32, 64), local_bytes: int = 256 * 1024
) -> Target:
    """The OpenCL CPU device (``sycl:opencl:cpu``): its sub-group and local memory sizes come
    from the device when it is known."""
    sub_group = CPU_SUB_GROUP if CPU_SUB_GROUP in sub_group_sizes else max(sub_group_sizes)
    return Target(
        name=f"sycl-cpu-sg{sub_group}",
        warp_size=sub_group,
        max_threads=1024,  # the device allows 8192; kept GPU-sized for portability
        shared_bytes=local_bytes,
        vector_bytes=16,
        atoms=(),
        register_bits=NVIDIA_REGISTER_BITS,  # as the CPU target: kept GPU-sized for portability
    )


def target_for_device(name: str, sub_group_sizes: tuple[int, ...], local_bytes: int) -> Target:
    """A GPU's target from what the device reports (its family when the name gives it away)."""
    lowered = name.lower()
    family = ("pvc" if "max" in lowered else "bmg" if "b5" in lowered or "b7" in lowered
              else "dg2" if "arc" in lowered or "flex" in lowered else "xe")  # fmt: skip
    base = intel_target(family)
    sub_group = base.warp_size if base.warp_size in sub_group_sizes else max(sub_group_sizes)
    return Target(
        name=f"sycl-{family}-sg{sub_group}",
        warp_size=sub_group,
        max_threads=base.max_threads,
        shared_bytes=min(base.shared_bytes, local_bytes) if local_bytes else base.shared_bytes,
        vector_bytes=16,
        atoms=(),
        register_bits=base.register_bits,
    )


__all__ = ["INTEL_GPUS", "SUB_GROUP_SIZES", "intel_target", "opencl_cpu_target",
           "target_for_device"]  # fmt: skip
