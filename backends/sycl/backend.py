"""The SYCL backend as the runtime sees it: device names ``sycl`` / ``sycl:<dpctl filter>``
(``sycl:opencl:cpu:0``, ``sycl:level_zero:gpu:0``), compile targets ``sycl:<Intel family>``
(``sycl:xe``, ``sycl:pvc``) for rendering. SYCL source is compiled at run time for a device
(the kernel-compiler extension, through dpctl), so building needs that device; launches take
numpy arrays and packed arrays (copied in and out) and USM tensors (torch XPU tensors: not
yet, a clear error)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tilevm.backends.sycl import runtime
from tilevm.backends.sycl.renderer import SyclRenderer
from tilevm.backends.sycl.target import INTEL_GPUS, intel_target, opencl_cpu_target
from tilevm.errors import CompileError, LaunchTypeError
from tilevm.ir.nodes import KernelIR
from tilevm.lowering.pipeline import Lowered
from tilevm.lowering.target import Target
from tilevm.lowering.thread_ir import ThreadKernel
from tilevm.runtime.backend import Backend, TargetInfo
from tilevm.runtime.build import LaunchShape, version
from tilevm.runtime.device_arrays import torch_device

DEFAULT_FAMILY = "xe"  # what "sycl" renders for on a machine without a SYCL device
# The OpenCL CPU device's compiler takes 30-120 s to optimize one kernel of unrolled tile code
# (a 64x32x64 dot: 52 s at the default level, 2.9 s at -O0; ~2 s of it is parsing the SYCL
# headers); that device serves portability and tests, so its kernels are built unoptimized.
CPU_DEVICE_OPTIONS = ("-O0",)


@dataclass
class SyclKernel(LaunchShape):
    """One specialization built for one SYCL device: its source, SYCLBIN bundle and kernel."""

    name: str
    arch: str  # the target's name
    device: str
    source: str
    thread: ThreadKernel  # only the signature, in a kernel restored from the program cache
    lowered: Lowered | None
    program: runtime.Program

    @property
    def binary(self) -> bytes:
        return self.program.binary

    @property
    def cached(self) -> bool:
        return self.program.cached


class SyclBackend(Backend):
    name = "sycl"
    order = 40

    def unavailable(self) -> str | None:
        return runtime.unavailable()

    def devices(self) -> list[str]:
        return runtime.device_names()

    def resolve(self, device: str) -> str:
        super().resolve(device)  # raises with the reason when SYCL cannot run here
        return f"sycl:{runtime.queue(device).sycl_device.filter_string}"

    def target(self, spec: str) -> Target:
        suffix = spec.partition(":")[2]
        if suffix in INTEL_GPUS:
            return intel_target(suffix)
        if suffix or self.unavailable() is None:
            return runtime.target(spec)
        return intel_target(DEFAULT_FAMILY)

    def render(self, lowered: Lowered, target: Target) -> str:
        return SyclRenderer().render(lowered.thread)

    def build(self, ir: KernelIR, lowered: Lowered, target: Target, spec: str) -> SyclKernel:
        if spec.partition(":")[2] in INTEL_GPUS:
            raise CompileError(
                f"SYCL kernels are compiled at run time for a device; {spec!r} names a family",
                expected="a SYCL device of this machine: " + ", ".join(self.devices()),
                found=repr(spec),
                hint=f"kernel.emit({spec!r}, ...) gives the source without a device",
                code="unsupported-target",
            )
        device = self.resolve(spec)
        source = SyclRenderer().render(lowered.thread)
        program = runtime.compile(source, ir.name, runtime.device_filter(device), _options(device))
        return SyclKernel(ir.name, target.name, device, source, lowered.thread, lowered, program)

    def toolchain(self, target: Target, spec: str) -> str | None:
        device = self.resolve(spec)
        return runtime.toolchain(runtime.device_filter(device), _options(device))

    def export(self, built: SyclKernel) -> tuple[dict[str, Any], bytes] | None:
        # the source tells a launch whether the kernel takes the trap status word
        return {"device": built.device, "source": built.source}, built.binary

    def restore(
        self, name: str, thread: ThreadKernel, binary: bytes, facts: dict[str, Any],
        target: Target, spec: str,
    ) -> SyclKernel:  # fmt: skip
        device = self.resolve(spec)
        if facts["device"] != device:
            raise ValueError(f"built for {facts['device']}, not {device}")
        source = str(facts["source"])
        program = runtime.load(source, name, runtime.device_filter(device), binary)
        return SyclKernel(name, target.name, device, source, thread, None, program)

    def owns(self, value: Any) -> bool:
        if isinstance(value, runtime.UsmTensor):
            return True
        device = torch_device(value)
        return device is not None and device.type == "xpu"  # torch's name for SYCL GPUs

    def device_of(self, value: Any) -> str:
        if isinstance(value, runtime.UsmTensor):
            return f"sycl:{value.memory.sycl_device.filter_string}"
        return "sycl"  # an XPU tensor: the default SYCL device

    def accepts(self, value: Any) -> bool:
        return runtime.accepts(value)

    def tensor(self, value: Any, name: str) -> Any:
        device = torch_device(value)
        if device is not None and device.type == "xpu":
            # dpctl's submit takes USM memory objects, not raw pointers: torch's XPU memory
            # would need wrapping in its SYCL context first (not done; no XPU to test it on)
            raise LaunchTypeError(
                f"argument '{name}' is a torch XPU tensor, which the SYCL backend cannot pass yet",
                expected="a numpy array, a tv.PackedArray or a UsmTensor",
                found=f"a torch tensor on {device}",
                hint="x.cpu().numpy() (copied in and out around the launch)",
                code="sycl-xpu",
            )
        return runtime.tensor_arg(value, name)

    def launch(self, built: SyclKernel, grid, tensors, scalars, device: str) -> None:
        runtime.launch(built.program, built.thread, grid, tensors, scalars)

    def fingerprint(self, device: str) -> str:
        dev = runtime.queue(device).sycl_device
        return f"{dev.name}; driver {dev.driver_version}; tilevm {version()}"

    def describe(self) -> list[TargetInfo]:
        jit = "SYCL kernel compiler (dpctl, libsycl-jit), at run time for the device"
        return [
            TargetInfo("sycl:xe", intel_target("xe"),
                       "an Intel Xe GPU (Level Zero or OpenCL) and dpctl", jit),
            TargetInfo("sycl:pvc", intel_target("pvc"),
                       "an Intel Data Center GPU Max (Ponte Vecchio) and dpctl", jit),
            TargetInfo("sycl:opencl:cpu", opencl_cpu_target(),
                       "the OpenCL CPU device (Intel's CPU runtime) and dpctl", jit),
        ]  # fmt: skip


def _options(device: str) -> tuple[str, ...]:
    options = tuple(runtime.BUILD_OPTIONS)
    if runtime.queue(device).sycl_device.is_cpu:
        options += CPU_DEVICE_OPTIONS
    return options


BACKEND = SyclBackend()

__all__ = ["BACKEND", "SyclBackend", "SyclKernel"]
