"""Launching a kernel built for the CPU (or a GPU target emulated on it) on host arrays.

Building is ``build.py`` (it needs LLVM); this module does not, so a kernel loaded from the
program cache as a shared library launches without loading LLVM at all.
"""

from __future__ import annotations

import ctypes
import importlib
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import tilevm.dtypes as dts
from tilevm.backends.cpu import runner
from tilevm.dtypes import DataType
from tilevm.errors import LaunchError
from tilevm.lowering.pipeline import Lowered
from tilevm.lowering.target import Target
from tilevm.lowering.thread_ir import ThreadKernel
from tilevm.runtime.arrays import HostTensor, PackedArray, c_strides
from tilevm.runtime.build import LaunchShape
from tilevm.runtime.fast_launch import scalar_arg


@dataclass
class CpuKernel(LaunchShape):
    """One specialization built for the CPU (``device``: "cpu" or "cpu:<emulated target>").
    One restored from the program cache has no source or lowering, and ``thread`` holds only the
    thread program's signature."""

    name: str
    device: str
    target: Target
    source: str  # LLVM IR, before optimization
    binary: bytes  # host object code, or a shared library of it (restored)
    thread: ThreadKernel
    lowered: Lowered | None
    function: str
    workspace_bytes: int
    prints: bool
    load: Callable[[], runner.Loaded]  # the machine code into this process (once, when run)
    cached: bool = False
    _loaded: Any = field(default=None, repr=False)

    @property
    def arch(self) -> str:
        return self.target.name

    def optimized_ir(self) -> str:
        return llvm().optimized_ir(self.source)


def llvm() -> types.ModuleType:
    """The LLVM side (``jit``: llvmlite), imported on first use: loading it takes about 20 ms,
    which a kernel restored from the program cache as a shared library never needs."""
    return importlib.import_module("tilevm.backends.cpu.jit")


def launch_cpu(
    compiled: CpuKernel,
    grid: tuple[int, int, int],
    tensors: dict[str, HostTensor],
    scalars: dict[str, tuple[DataType, Any]],
) -> None:
    buffers = {name: _Buffer(host) for name, host in tensors.items()}
    slots: list[int] = []
    for p in compiled.thread.params:
        if p.kind == "tensor":
            slots.append(buffers[p.arg].pointer)
        elif p.kind == "scalar":
            arg = scalar_arg(*scalars[p.arg])
            assert arg is not None, p.arg  # the launch checked every scalar against its dtype
            word = ctypes.c_uint64(0)
            ctypes.memmove(ctypes.addressof(word), ctypes.addressof(arg), ctypes.sizeof(arg))
            slots.append(word.value)
        else:
            buf = buffers[p.arg]
            value = (buf.shape if p.kind == "dim" else buf.strides)[p.axis]
            slots.append(value % (1 << 64))
    try:
        run_slots(compiled, slots, grid)
    finally:
        for buf in buffers.values():
            buf.finish()


def run_slots(compiled: CpuKernel, slots: list[int], grid: tuple[int, int, int]) -> None:
    """Run the blocks on parameters already in their 8-byte slots (also the repeat path)."""
    if compiled._loaded is None:
        compiled._loaded = compiled.load()
    ok = runner.run(compiled._loaded, slots, grid, compiled.workspace_bytes, serial=compiled.prints)
    if not ok:
        raise LaunchError(
            f"kernel {compiled.name} stopped with a trap",
            expected="loops with a non-zero step",
            found="a tv.range step of 0 at run time",
            hint="check the step arguments of tv.range; outputs may be partly written",
            code="trap",
        )


class _Buffer:
    """A tensor argument's memory as the kernel reads it: the array itself for byte-sized
    elements; packed bits for sub-byte ones (numpy holds one element per byte), copied back
    after the launch."""

    def __init__(self, host: HostTensor) -> None:
        self.host = host
        self.shape = host.shape
        self.strides = host.strides
        self.packed: np.ndarray | None = None
        source = host.source
        if isinstance(source, PackedArray):  # already the kernel's representation
            data = source.data
            self.pointer = data.ctypes.data if isinstance(data, np.ndarray) else data.data_ptr()
        elif host.dtype.bits in (8, 16, 32, 64):
            self.pointer = host.codes.ctypes.data
        else:
            codes = np.ascontiguousarray(host.codes).reshape(-1)
            self.packed = dts.pack_codes(codes, host.dtype.bits)
            self.strides = c_strides(self.shape)
            self.pointer = self.packed.ctypes.data

    def finish(self) -> None:
        if self.packed is not None:
            count = int(np.prod(self.shape))
            codes = dts.unpack_codes(self.packed, self.host.dtype.bits, count).reshape(self.shape)
            if not np.array_equal(codes, self.host.codes):  # inputs may be read-only
                self.host.codes[...] = codes.astype(self.host.codes.dtype)
