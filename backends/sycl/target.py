"""Intel GPU (SYCL) target capabilities (read by the target-neutral lowering)."""

from __future__ import annotations

from tilevm.errors import CompileError
from tilevm.lowering.target import Target

SUB_GROUP_SIZES = {"xe": 16}  # the size the generated kernels request on each family


def intel_target(name: str = "xe") -> Target:
    if name not in SUB_GROUP_SIZES:
        raise CompileError(
            f"no Intel target named {name!r}",
            expected=f"one of {', '.join(SUB_GROUP_SIZES)}",
            found=repr(name),
            hint="intel_target() targets Xe GPUs",
            code="unsupported-target",
        )
    return Target(
        name=f"sycl-{name}",
        # a "warp" is a sub-group; 16 work-items is a size every Xe GPU supports
        warp_size=SUB_GROUP_SIZES[name],
        max_threads=1024,
        shared_bytes=64 * 1024,  # SLM per work-group
        vector_bytes=16,
        atoms=(),  # no matrix atoms yet: dots use the SIMT multiply-add
    )
