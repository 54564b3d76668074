"""The reference interpreter as a backend: device ``interp`` runs the VM IR itself (numpy), on
host arrays, on any machine. It compiles nothing: ``kernel.ir(...)`` shows what it runs."""

from __future__ import annotations

import weakref
from typing import Any

from tilevm.errors import CompileError
from tilevm.interp import scans  # noqa: F401 - registers the scan instruction
from tilevm.interp.execute import Interpreter
from tilevm.interp.values import GlobalTensor, Scalar
from tilevm.ir.nodes import KernelIR
from tilevm.lowering.budget import check_registers
from tilevm.lowering.target import NVIDIA_REGISTER_BITS, Target
from tilevm.runtime.arrays import host_tensor, is_host_tensor
from tilevm.runtime.backend import Backend

WARP_SIZE = 32  # the interpreter's block is warps x 32 threads, as on the CPU target


class InterpBackend(Backend):
    name = "interp"
    lowers = False
    order = 0

    def __init__(self) -> None:
        self._checked: weakref.WeakSet[KernelIR] = weakref.WeakSet()  # once per specialization

    def devices(self) -> list[str]:
        return ["interp"]

    def warp_size(self, device: str) -> int:
        return WARP_SIZE

    def target(self, spec: str) -> Target:
        raise CompileError(
            "the interpreter runs the VM IR; it has no generated code",
            expected="a compile target such as 'cuda:sm_90a', 'hip:gfx942', 'sycl', 'cpu'",
            found=repr(spec),
            hint="kernel.ir(...) shows the VM IR the interpreter runs",
            code="unsupported-target",
        )

    def accepts(self, value: Any) -> bool:
        return is_host_tensor(value)

    def tensor(self, value: Any, name: str) -> Any:
        return host_tensor(value, name)

    def launch(self, built: KernelIR, grid, tensors, scalars, device: str) -> None:
        if built not in self._checked:
            # the register budget of the CPU target (a CUDA GPU's): what the interpreter runs,
            # a GPU can hold
            check_registers(built, NVIDIA_REGISTER_BITS, "interp (a CUDA GPU's budget)")
            self._checked.add(built)
        env = {}
        for param in built.params:
            name = param.var.name
            if name in tensors:
                host = tensors[name]
                env[param.var] = GlobalTensor(host.dtype, host.codes, host.shape, host.strides)
            else:
                env[param.var] = Scalar(*scalars[name])
        Interpreter(built, grid).run(env)
        for host in tensors.values():
            host.write_back()


BACKEND = InterpBackend()

__all__ = ["BACKEND", "InterpBackend"]
