"""The CPU backend as the runtime sees it: ``cpu`` runs the lowered thread program natively
(LLVM through llvmlite); ``cpu:amd``, ``cpu:cuda``, ``cpu:intel`` (optionally with an arch,
``cpu:amd-gfx90a``) run another target's lowering here. It launches on host arrays (numpy,
torch CPU tensors, packed arrays) and is where a launch on host memory goes by default."""

from __future__ import annotations

import functools
import os
from typing import Any

from tilevm.backends.cpu import jit
from tilevm.backends.cpu.codegen import render
from tilevm.backends.cpu.runtime import CpuKernel, build_cpu, launch_cpu, run_slots
from tilevm.backends.cpu.target import EMULATED, target_for
from tilevm.ir.nodes import KernelIR
from tilevm.lowering.pipeline import Lowered
from tilevm.lowering.target import Target
from tilevm.runtime.arrays import host_tensor, is_host_tensor
from tilevm.runtime.backend import Backend, TargetInfo
from tilevm.runtime.build import version
from tilevm.runtime.fast_launch import Entry


class CpuBackend(Backend):
    name = "cpu"
    order = 10
    default = True

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
        return render(lowered.thread, target).llvm_ir

    def build(self, ir: KernelIR, lowered: Lowered, target: Target, spec: str) -> Any:
        return build_cpu(ir, lowered, target, spec)

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
        return "; ".join([device, jit.fingerprint(), f"{os.cpu_count()} cores",
                          f"tilevm {version()}"])  # fmt: skip

    def describe(self) -> list[TargetInfo]:
        llvm = "LLVM (llvmlite, MCJIT)"
        emulated = [
            TargetInfo(f"cpu:{vendor}", target_for(f"cpu:{vendor}"),
                       "the CPU (that GPU's lowering, executed on the host)", llvm)
            for vendor in EMULATED
        ]  # fmt: skip
        return [TargetInfo("cpu", target_for("cpu"), "the CPU", llvm), *emulated]


def _host_fast(host: Any) -> bool:
    """A numpy argument the repeat path can pass as it is (its own memory, full-width items)."""
    import numpy as np

    source = host.source
    return isinstance(source, np.ndarray) and host.codes.ctypes.data == source.ctypes.data


BACKEND = CpuBackend()

__all__ = ["BACKEND", "CpuBackend"]
