"""The HIP backend as the runtime sees it: device names ``hip`` / ``hip:N``, compile targets
``hip:gfx90a`` / ``hip:gfx942``, builds through hipRTC (hip-python), launches on torch ROCm
tensors (torch names them "cuda") and DLPack objects in ROCm memory."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from tilevm.backends.hip import clang, driver, hiprtc
from tilevm.backends.hip.renderer import HipRenderer
from tilevm.backends.hip.target import amd_target
from tilevm.errors import CompileError, DeviceError
from tilevm.ir.nodes import KernelIR
from tilevm.lowering.pipeline import Lowered
from tilevm.lowering.target import Target
from tilevm.lowering.thread_ir import ThreadKernel
from tilevm.runtime.backend import Backend, TargetInfo
from tilevm.runtime.build import LaunchShape, pointer_args, version
from tilevm.runtime.cache import DiskCache
from tilevm.runtime.device_arrays import device_tensor, dlpack_device, torch_device

DEFAULT_ARCH = "gfx942"  # what "hip" compiles for on a machine without an AMD GPU
KDL_ROCM = 10  # DLPack's device type for ROCm memory


@dataclass
class HipKernel(LaunchShape):
    """One specialization built for one AMD arch: its source, code object and launch shape."""

    name: str
    arch: str
    source: str  # empty in a kernel restored from the program cache
    binary: bytes
    thread: ThreadKernel  # only the signature, in a kernel restored from the program cache
    lowered: Lowered | None
    compiler: str
    cached: bool = False
    _functions: dict[int, Any] = field(default_factory=dict, repr=False)

    def disassembly(self) -> str:
        return clang.disassemble(self.binary)


def _rocm_torch() -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and getattr(torch.version, "hip", None) is not None


class HipBackend(Backend):
    name = "hip"
    order = 30

    def unavailable(self) -> str | None:
        return driver.unavailable()

    def devices(self) -> list[str]:
        if driver.unavailable() is not None:
            return []
        return [f"hip:{i}" for i in range(driver.device_count())]

    def resolve(self, device: str) -> str:
        index = device.partition(":")[2]
        if index and not index.isdigit():
            raise DeviceError(
                f"{device!r} names a compile target, not a device to launch on",
                expected="'hip' or 'hip:<index>'",
                found=repr(device),
                hint="kernel.compile('hip:gfx942', ...) builds for an arch without running",
                code="no-device",
            )
        super().resolve(device)  # raises with the reason when there is no HIP device
        return f"hip:{index or 0}"

    def target(self, spec: str) -> Target:
        suffix = spec.partition(":")[2]
        if suffix.isdigit():
            return amd_target(driver.device_arch(int(suffix)))
        if suffix:
            return amd_target(suffix)
        return amd_target(driver.device_arch(0) if not self.unavailable() else DEFAULT_ARCH)

    def render(self, lowered: Lowered, target: Target) -> str:
        return HipRenderer().render(lowered.thread)

    def build(self, ir: KernelIR, lowered: Lowered, target: Target, spec: str) -> HipKernel:
        arch = target.name.removeprefix("hip-")
        source = HipRenderer().render(lowered.thread)
        compiler, compile_ = _compiler(arch)
        cache = DiskCache()
        key = cache.key(source, arch, compiler, version())
        binary = cache.get(key)
        cached = binary is not None
        if binary is None:
            binary = compile_(source, arch, ir.name)
            cache.put(key, binary)
        return HipKernel(ir.name, arch, source, binary, lowered.thread, lowered, compiler, cached)

    def toolchain(self, target: Target, spec: str) -> str | None:
        return _compiler(target.name.removeprefix("hip-"))[0]

    def export(self, built: HipKernel) -> tuple[dict[str, Any], bytes] | None:
        return {"arch": built.arch, "compiler": built.compiler}, built.binary

    def restore(
        self, name: str, thread: ThreadKernel, binary: bytes, facts: dict[str, Any],
        target: Target, spec: str,
    ) -> HipKernel:  # fmt: skip
        arch = target.name.removeprefix("hip-")
        if facts["arch"] != arch:
            raise ValueError(f"a code object for {facts['arch']}, not {arch}")
        return HipKernel(name, arch, "", binary, thread, None, str(facts["compiler"]), True)

    def owns(self, value: Any) -> bool:
        device = torch_device(value)
        if device is not None:
            return device.type == "cuda" and _rocm_torch()
        found = dlpack_device(value)
        return found is not None and found[0] == KDL_ROCM

    def device_of(self, value: Any) -> str:
        device = torch_device(value)
        index = device.index if device is not None else dlpack_device(value)[1]
        return f"hip:{index or 0}"

    def tensor(self, value: Any, name: str) -> Any:
        return device_tensor(value, name)

    def launch(self, built: HipKernel, grid, tensors, scalars, device: str) -> None:
        index = int(device.partition(":")[2] or 0)
        function = built._functions.get(index)
        if function is None:
            function = driver.Module(built.binary, index).function(built.name)
            built._functions[index] = function
        args = pointer_args(built.thread, tensors, scalars)
        stream = _current_stream()
        function.launch(grid, (built.num_threads, 1, 1), built.shared_bytes, args, stream)

    def fingerprint(self, device: str) -> str:
        index = int(device.partition(":")[2] or 0)
        return f"{driver.device_arch(index)}; {hiprtc.compiler_fingerprint()}; tilevm {version()}"

    def describe(self) -> list[TargetInfo]:
        compilers = "hipRTC (hip-python), else clang-19 offline; no GPU needed"
        return [
            TargetInfo("hip:gfx90a", amd_target("gfx90a"),
                       "an AMD MI200 GPU (gfx90a) and ROCm", compilers),
            TargetInfo("hip:gfx942", amd_target("gfx942"),
                       "an AMD MI300 GPU (gfx942) and ROCm", compilers),
            TargetInfo("hip:gfx1100", amd_target("gfx1100"),
                       "an AMD Radeon RX 7900 GPU (gfx1100, RDNA3) and ROCm", compilers),
        ]  # fmt: skip


def _compiler(arch: str) -> tuple[str, Any]:
    """The compiler for ``arch`` here: hipRTC when it can build that arch, else clang."""
    if hiprtc.unavailable() is None and hiprtc.knows(arch):
        return hiprtc.compiler_fingerprint(), hiprtc.compile_code_object
    if clang.unavailable() is None:
        return f"clang {clang.find_clang()}", clang.compile_offline
    raise CompileError(
        f"no HIP compiler here can build {arch}",
        expected="hipRTC of a ROCm that knows the arch, or clang 19",
        found=f"hipRTC: {hiprtc.unavailable() or 'too old for ' + arch}; "
        f"clang: {clang.unavailable()}",
        hint="pip install hip-python with ROCm installed, or apt-get install clang-19; "
        "kernel.emit('hip:...') gives the source without a compiler",
        code="hip-compile",
    )


def _current_stream() -> Any:
    """torch's current stream on ROCm (None: the null stream) so launches order with torch's."""
    torch = sys.modules.get("torch")
    if torch is None or not _rocm_torch():
        return None
    return torch.cuda.current_stream().cuda_stream


BACKEND = HipBackend()

__all__ = ["BACKEND", "HipBackend", "HipKernel"]
