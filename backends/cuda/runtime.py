"""Compiling a kernel's specialization for a GPU target, with both caches, and launching it.

In-process: one entry per (specialization, warps, arch), holding the loaded function. On disk:
the binary, keyed by the generated source, the compiler options and fingerprint, the arch and
tilevm's version, so a new process loads a cached binary without compiling.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tilevm.backends.cuda import driver, nvrtc
from tilevm.dtypes import DataType
from tilevm.ir.nodes import KernelIR
from tilevm.lowering.pipeline import Lowered
from tilevm.lowering.thread_ir import ThreadKernel
from tilevm.runtime.build import LaunchShape, pointer_args, version
from tilevm.runtime.cache import DiskCache

NVRTC_OPTIONS = ("--fmad=false",)  # one rounding per operation, as the VM's semantics say


@dataclass
class CompiledKernel(LaunchShape):
    """One specialization built for one GPU arch: its source, binary and launch shape."""

    name: str
    arch: str
    source: str
    binary: bytes
    thread: ThreadKernel
    lowered: Lowered
    cached: bool = False  # the binary came from the disk cache
    _function: Any = field(default=None, repr=False)

    def sass(self) -> str:
        from tilevm.backends.cuda import disasm  # only to read the code

        return disasm.sass(self.binary)


def build_cuda(
    ir: KernelIR, lowered: Lowered, arch: str, cache: DiskCache | None = None
) -> CompiledKernel:
    # imported here: a kernel restored from the program cache launches without rendering
    from tilevm.backends.cuda.renderer import CudaRenderer

    source = CudaRenderer().render(lowered.thread)
    cache = cache or DiskCache()
    key = cache.key(source, " ".join(NVRTC_OPTIONS), arch, nvrtc.compiler_fingerprint(), version())
    binary = cache.get(key)
    cached = binary is not None
    if binary is None:
        binary = nvrtc.compile_cubin(source, arch, NVRTC_OPTIONS, name=f"{ir.name}.cu")
        cache.put(key, binary)
    return CompiledKernel(ir.name, arch, source, binary, lowered.thread, lowered, cached)


def raw_stream_reader(torch: Any, index: int | None = None) -> Callable[[], int]:
    """``stream()``: torch's current stream on device ``index`` (the current device's for
    None) as a raw handle, by the cheapest accessor this torch has (its private one skips
    building a Stream object, a few microseconds per launch)."""
    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    if raw is None:
        return lambda: torch.cuda.current_stream(index).cuda_stream
    if index is None:
        current = torch.cuda.current_device
        return lambda: raw(current())
    return functools.partial(raw, index)


def launch_cuda(
    compiled: CompiledKernel,
    grid: tuple[int, int, int],
    tensors: dict[str, Any],  # name -> DeviceTensor
    scalars: dict[str, tuple[DataType, Any]],
    device: int,
) -> None:
    if compiled._function is None:
        compiled._function = driver.Module(compiled.binary, device).function(compiled.name)
    args = pointer_args(compiled.thread, tensors, scalars)
    torch = sys.modules.get("torch")
    stream = raw_stream_reader(torch)() if torch is not None else 0
    compiled._function.launch(
        grid, (compiled.num_threads, 1, 1), compiled.shared_bytes, args, stream
    )
