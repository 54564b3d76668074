"""The CPU backend as the runtime sees it: ``cpu`` runs the lowered thread program natively
(LLVM through llvmlite); ``cpu:amd``, ``cpu:cuda``, ``cpu:intel`` (optionally with an arch,
``cpu:amd-gfx90a``) run another target's lowering here. It launches on host arrays (numpy,
torch CPU tensors, packed arrays) and is where a launch on host memory goes by default."""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
import platform
import types
from typing import Any

import llvmlite

from tilevm.backends.cpu import shared_object
from tilevm.backends.cpu.runtime import CpuKernel, launch_cpu, llvm, run_slots
from tilevm.backends.cpu.target import EMULATED, target_for
from tilevm.ir.nodes import KernelIR
from tilevm.lowering.pipeline import Lowered
from tilevm.lowering.target import Target
from tilevm.lowering.thread_ir import ThreadKernel
from tilevm.runtime.arrays import host_tensor, is_host_tensor
from tilevm.runtime.backend import Backend, TargetInfo
from tilevm.runtime.build import version
from tilevm.runtime.cache import DiskCache
from tilevm.runtime.fast_launch import Entry


class CpuBackend(Backend):
    name = "cpu"
    order = 10

    def devices(self) -> list[str]:
        # the emulated GPUs run here too (each vendor's default arch; "cpu:amd-gfx1100" and
        # the like name others)
        return ["cpu", *(f"cpu:{vendor}" for vendor in sorted(EMULATED))]

    def resolve(self, device: str) -> str:
        target_for(device)  # an unknown emulated target is reported here
        return device

    def target(self, spec: str) -> Target:
        return target_for(spec)

    def render(self, lowered: Lowered, target: Target) -> str:
        return _compiler().render(lowered.thread, target).llvm_ir

    def build(self, ir: KernelIR, lowered: Lowered, target: Target, spec: str) -> Any:
        return _compiler().build_cpu(ir, lowered, target, spec)

    def toolchain(self, target: Target, spec: str) -> str | None:
        return _host()

    def export(self, built: CpuKernel) -> tuple[dict[str, Any], bytes] | None:
        library = _compiler().link(built.binary)
        facts = {"function": built.function, "workspace_bytes": built.workspace_bytes,
                 "prints": built.prints, "library": library is not None}  # fmt: skip
        return facts, built.binary if library is None else library

    def restore(
        self, name: str, thread: ThreadKernel, binary: bytes, facts: dict[str, Any],
        target: Target, spec: str,
    ) -> CpuKernel:  # fmt: skip
        function = str(facts["function"])
        if facts["library"]:  # opened now: a library that does not load is a miss
            linked = shared_object.Linked(binary, function, DiskCache().root / "libraries")
            load, loaded = (lambda: linked), linked
        else:
            load, loaded = functools.partial(llvm().Loaded, binary, function), None
        return CpuKernel(
            name, spec, target, "", binary, thread, None, function,
            int(facts["workspace_bytes"]), bool(facts["prints"]), load, True, loaded,
        )  # fmt: skip

    def accepts(self, value: Any) -> bool:
        return is_host_tensor(value)

    def tensor(self, value: Any, name: str) -> Any:
        return host_tensor(value, name)

    def launch(self, built, grid, tensors, scalars, device: str) -> None:
        launch_cpu(built, grid, tensors, scalars)

    def fast_entry(self, built: CpuKernel, positions, specs, tensors) -> Entry | None:
        if not all(_host_fast(t) for t in tensors.values()):
            return None
        plan = tuple(
            (p.kind, positions[p.arg], p.axis, p.dtype.bits) for p in built.thread.params
        )
        scalars = {positions[s.name]: s.dtype for s in specs if s.kind == "scalar"}
        return Entry(plan, scalars, functools.partial(run_slots, built), host=True)

    def fingerprint(self, device: str) -> str:
        return "; ".join([device, llvm().fingerprint(), f"{os.cpu_count()} cores",
                          f"tilevm {version()}"])  # fmt: skip

    def describe(self) -> list[TargetInfo]:
        llvm = "LLVM (llvmlite, MCJIT)"
        emulated = [
            TargetInfo(f"cpu:{vendor}", target_for(f"cpu:{vendor}"),
                       "the CPU (that GPU's lowering, executed on the host)", llvm)
            for vendor in EMULATED
        ]  # fmt: skip
        return [TargetInfo("cpu", target_for("cpu"), "the CPU", llvm), *emulated]


def _compiler() -> types.ModuleType:
    """Code generation and LLVM, imported on first use: a launch of a kernel restored from the
    program cache needs neither (they take about 50 ms to import)."""
    return importlib.import_module("tilevm.backends.cpu.build")


@functools.cache
def _host() -> str:
    """What decides object code besides the LLVM IR, without loading LLVM: llvmlite's version
    and this CPU (its model and feature flags, which LLVM's host CPU name and features come
    from). Where the CPU cannot be read so, LLVM's own description of it."""
    try:
        with open("/proc/cpuinfo") as f:
            first = f.read().split("\n\n")[0]
    except OSError:
        return llvm().fingerprint()
    wanted = ("vendor_id", "cpu family", "model", "model name", "flags")
    lines = [line for line in first.splitlines() if line.split(":")[0].strip() in wanted]
    cpu = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    return f"llvmlite {llvmlite.__version__}; {platform.machine()}; cpu {cpu}"


def _host_fast(host: Any) -> bool:
    """A numpy argument the repeat path can pass as it is (its own memory, full-width items)."""
    import numpy as np

    source = host.source
    return isinstance(source, np.ndarray) and host.codes.ctypes.data == source.ctypes.data


BACKEND = CpuBackend()

__all__ = ["BACKEND", "CpuBackend"]
