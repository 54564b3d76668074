"""Compiling a kernel's specialization for the CPU (or a GPU target emulated on it): LLVM IR
from the thread program, object code from LLVM, through the disk cache; and a shared library of
the object code for the program cache.

The disk cache keeps object code, keyed by the LLVM IR, LLVM's version, the host CPU and
tilevm's version, so a new process links a cached object without optimizing again.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tilevm.backends.cpu import jit
from tilevm.backends.cpu.codegen import render
from tilevm.backends.cpu.runtime import CpuKernel
from tilevm.ir.nodes import KernelIR
from tilevm.lowering.pipeline import Lowered
from tilevm.lowering.target import Target
from tilevm.runtime.build import version
from tilevm.runtime.cache import DiskCache


def build_cpu(
    ir: KernelIR, lowered: Lowered, target: Target, device: str, cache: DiskCache | None = None
) -> CpuKernel:
    module = render(lowered.thread, target)
    cache = cache or DiskCache()
    key = cache.key(module.llvm_ir, "llvm-object", jit.fingerprint(), version())
    binary = cache.get(key)
    cached = binary is not None
    if binary is None:
        binary = jit.compile_object(module.llvm_ir)
        cache.put(key, binary)
    load = functools.partial(jit.Loaded, binary, module.name)
    return CpuKernel(
        ir.name, device, target, module.llvm_ir, binary, lowered.thread, lowered, module.name,
        module.workspace_bytes, module.prints, load, cached,
    )  # fmt: skip


@functools.cache
def linker() -> str | None:
    """The C compiler driver that links (``$CC``, else cc, gcc or clang), or None."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        found = shutil.which(name) if name else None
        if found:
            return found
    return None


def link(obj: bytes) -> bytes | None:
    """A shared library of one kernel's object code (its libm calls bound to libm), which a new
    process opens without LLVM (``shared_object``); None when there is no linker or it fails:
    the object code is kept instead."""
    cc = linker()
    if cc is None:
        return None
    with tempfile.TemporaryDirectory(prefix="tilevm-link-") as folder:
        source, library = Path(folder) / "kernel.o", Path(folder) / "kernel.so"
        source.write_bytes(obj)
        try:
            done = subprocess.run([cc, "-shared", "-o", str(library), str(source), "-lm"],
                                  capture_output=True, timeout=120)  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return None
        return library.read_bytes() if done.returncode == 0 else None


__all__ = ["build_cpu", "link", "linker"]
