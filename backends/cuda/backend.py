"""The CUDA backend as the runtime sees it: device names ``cuda`` / ``cuda:N``, compile targets
``cuda:sm_80`` / ``cuda:sm_90a``, NVRTC builds, launches on torch CUDA tensors and DLPack
objects in CUDA memory."""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable
from typing import Any

from tilevm.backends.cuda import driver, nvrtc
from tilevm.backends.cuda.runtime import (
    NVRTC_OPTIONS,
    CompiledKernel,
    build_cuda,
    launch_cuda,
    raw_stream_reader,
)
from tilevm.backends.cuda.target import cuda_target
from tilevm.backends.cuda.timing import time_cuda
from tilevm.errors import DeviceError
from tilevm.ir.nodes import KernelIR
from tilevm.lowering.pipeline import Lowered
from tilevm.lowering.target import Target
from tilevm.lowering.thread_ir import ThreadKernel
from tilevm.runtime.backend import Backend, DeviceProperties, TargetInfo
from tilevm.runtime.build import version
from tilevm.runtime.device_arrays import device_tensor, dlpack_device, torch_device
from tilevm.runtime.fast_launch import Entry, ParamPacker

DEFAULT_ARCH = "sm_90a"  # what "cuda" compiles for on a machine without a GPU
KDL_CUDA = 2  # DLPack's device type for CUDA memory


def _is_rocm_torch() -> bool:
    """torch built for ROCm names AMD GPUs "cuda" too; those tensors belong to the HIP backend."""
    torch = sys.modules.get("torch")
    return torch is not None and getattr(torch.version, "hip", None) is not None


class CudaBackend(Backend):
    name = "cuda"
    order = 20

    def unavailable(self) -> str | None:
        return driver.unavailable()

    def devices(self) -> list[str]:
        if not driver.available():
            return []
        return [f"cuda:{i}" for i in range(driver.device_count())]

    def resolve(self, device: str) -> str:
        index = device.partition(":")[2]
        if index and not index.isdigit():
            raise DeviceError(
                f"{device!r} names a compile target, not a device to launch on",
                expected="'cuda' or 'cuda:<index>'",
                found=repr(device),
                hint="kernel.compile('cuda:sm_90a', ...) builds for an arch without running",
                code="no-device",
            )
        if not driver.available():
            raise driver.NoCudaDevice(
                f"device {device!r} is not available: {driver.unavailable()}",
                expected="a machine with a CUDA driver and GPU",
                found=repr(device),
                hint="tv.devices() lists what this machine can run; device='interp' runs every "
                "kernel on any machine",
            )
        return f"cuda:{index or 0}"

    def target(self, spec: str) -> Target:
        return cuda_target(self.arch(spec))

    def arch(self, spec: str) -> str:
        """The sm_ arch a device name or compile target builds for."""
        suffix = spec.partition(":")[2]
        if suffix.isdigit():
            return driver.device_info(int(suffix)).arch_for_compile
        if suffix:
            return suffix
        return driver.device_info(0).arch_for_compile if driver.available() else DEFAULT_ARCH

    def render(self, lowered: Lowered, target: Target) -> str:
        from tilevm.backends.cuda.renderer import CudaRenderer  # not imported to launch

        return CudaRenderer().render(lowered.thread)

    def build(self, ir: KernelIR, lowered: Lowered, target: Target, spec: str) -> CompiledKernel:
        return build_cuda(ir, lowered, target.name.removeprefix("cuda-"))

    def toolchain(self, target: Target, spec: str) -> str | None:
        return f"{' '.join(NVRTC_OPTIONS)}; {nvrtc.installed_fingerprint()}"

    def export(self, built: CompiledKernel) -> tuple[dict[str, Any], bytes] | None:
        return {"arch": built.arch}, built.binary

    def restore(
        self, name: str, thread: ThreadKernel, binary: bytes, facts: dict[str, Any],
        target: Target, spec: str,
    ) -> CompiledKernel:  # fmt: skip
        arch = target.name.removeprefix("cuda-")
        if facts["arch"] != arch:
            raise ValueError(f"a cubin for {facts['arch']}, not {arch}")
        # launching only: no source or lowering, and ``thread`` is the signature
        built = CompiledKernel(name, arch, "", binary, thread, None, cached=True)
        index = spec.partition(":")[2]
        if index.isdigit():  # loaded now: a cubin this driver rejects is a miss, not an error
            built._function = driver.Module(binary, int(index)).function(name)
        return built

    def owns(self, value: Any) -> bool:
        device = torch_device(value)
        if device is not None:
            return device.type == "cuda" and not _is_rocm_torch()
        found = dlpack_device(value)
        return found is not None and found[0] == KDL_CUDA

    def device_of(self, value: Any) -> str:
        device = torch_device(value)
        index = device.index if device is not None else dlpack_device(value)[1]
        return f"cuda:{index or 0}"

    def tensor(self, value: Any, name: str) -> Any:
        return device_tensor(value, name)

    def launch(self, built, grid, tensors, scalars, device: str) -> None:
        launch_cuda(built, grid, tensors, scalars, int(device.partition(":")[2] or 0))

    def fast_entry(self, built, positions, specs, tensors) -> Entry | None:
        if not all(type(t.source).__name__ == "Tensor" for t in tensors.values()):
            return None  # DLPack objects and packed arrays take the full path
        plan = tuple(
            (p.kind, positions[p.arg], p.axis, p.dtype.bits) for p in built.thread.params
        )
        scalars = {positions[s.name]: s.dtype for s in specs if s.kind == "scalar"}
        packer = ParamPacker(plan, scalars)
        pack, pointers = packer.pack, packer.pointers
        launch = driver.raw_launcher(built._function)
        block, shared = (built.num_threads, 1, 1), built.shared_bytes
        # the launch's stream: torch's current stream on the device the module was loaded on
        # (the entry's key holds every tensor's device, and the full path loaded the module
        # on theirs), read on each launch since the caller may switch streams
        stream_of = raw_stream_reader(sys.modules["torch"], built._function.module.device)

        # one parameter buffer per entry: threads launching it at once take turns, or one
        # could overwrite the buffer between another's packing and its launch
        lock = threading.Lock()

        def run(values: list, reads: list, grid: tuple[int, int, int]) -> bool:
            with lock:
                if not pack(values, reads):
                    return False
                launch(grid, block, shared, stream_of(), pointers)
            return True

        return Entry(plan, scalars, run)

    def properties(self, device: str) -> DeviceProperties:
        info = driver.device_info(int(device.partition(":")[2] or 0))
        return DeviceProperties(info.name, info.multiprocessors,
                                info.max_shared_per_block_optin, info.l2_bytes)  # fmt: skip

    def fingerprint(self, device: str) -> str:
        return _fingerprint(device)

    def time(self, run: Callable[[], None], device: str) -> float:
        return time_cuda(run, int(device.partition(":")[2] or 0))

    def describe(self) -> list[TargetInfo]:
        nvrtc = "NVRTC (cuda-python), to cubin; no GPU needed"
        return [
            TargetInfo("cuda:sm_80", cuda_target("sm_80"),
                       "an NVIDIA sm_80 GPU (A100) and the CUDA driver", nvrtc),
            TargetInfo("cuda:sm_90a", cuda_target("sm_90a"),
                       "an NVIDIA sm_90 GPU (H100, H200) and the CUDA driver", nvrtc),
        ]  # fmt: skip


@functools.cache
def _fingerprint(device: str) -> str:
    info = driver.device_info(int(device.partition(":")[2] or 0))
    major, minor = info.compute_capability
    parts = [info.name, f"sm_{major}{minor}", f"driver {_driver_version()}"]
    return "; ".join([*parts, f"tilevm {version()}"])


def _driver_version() -> str:
    try:
        return str(driver.driver_version())
    except Exception:  # the name and capability still tell GPUs apart
        return "unknown"


BACKEND = CudaBackend()

__all__ = ["BACKEND", "CudaBackend"]
