"""``@tv.kernel``: compile a Python function to VM IR per specialization, and launch it."""

from __future__ import annotations

import functools
import inspect
import os
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tilevm import language as lang
from tilevm.backends.cpu.target import target_for
from tilevm.backends.cuda import driver
from tilevm.dtypes import DataType
from tilevm.errors import CompileError, LaunchError, LaunchTypeError
from tilevm.frontend.builder import Builder, python_dtype
from tilevm.frontend.expressions import Func, closure_vars
from tilevm.frontend.source import FunctionSource
from tilevm.frontend.translate import Translator
from tilevm.interp.execute import Interpreter
from tilevm.interp.values import GlobalTensor, Scalar
from tilevm.ir.nodes import KernelIR, Param
from tilevm.ir.printer import print_kernel
from tilevm.ir.types import GlobalType, ScalarType
from tilevm.ir.verify import verify
from tilevm.lowering.pipeline import Lowered, lower_kernel
from tilevm.lowering.target import Target
from tilevm.runtime import devices
from tilevm.runtime.arrays import HostTensor, host_tensor, is_tensor_like
from tilevm.runtime.compiled import CompiledKernel, build_cuda, facts_of, launch_cuda
from tilevm.runtime.cpu import CpuKernel, build_cpu, launch_cpu, run_slots
from tilevm.runtime.device_arrays import DeviceTensor, device_tensor, is_device_tensor
from tilevm.runtime.fast_launch import _MISS as FAST_MISS
from tilevm.runtime.fast_launch import Entry as FastEntry
from tilevm.runtime.fast_launch import FastPath

WARP_SIZE = 32  # of the interpreter's target; the lowering reads each target's own
MAX_WARPS = 32


@dataclass(frozen=True)
class ParamSpec:
    """How one argument specializes the kernel."""

    name: str
    kind: str  # "tensor", "scalar" or "constexpr"
    dtype: DataType | None = None
    rank: int = 0
    value: Any = None  # constexpr value
    contiguous: bool = True
    aligned16: bool = True
    stride_align: int = 1  # a power of two dividing every stride but the last (elements)
    extent_align: int = 1  # a power of two dividing the last dimension's extent


def kernel(fn: Any = None, *, warps: int = 4) -> Any:
    """Decorate a function written in the kernel language. ``warps`` is the default block size
    in warps (a launch may override it)."""
    if fn is None:
        return lambda f: Kernel(f, warps)
    return Kernel(fn, warps)


def func(fn: Any) -> Func:
    """Decorate a helper that kernels call; its body is inlined at each call."""
    return Func(fn)


class Kernel:
    def __init__(self, fn: Any, warps: int = 4) -> None:
        self.fn = fn
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self.default_warps = warps
        try:  # annotations may be strings (from __future__ import annotations)
            self.signature = inspect.signature(fn, eval_str=True)
        except Exception as exc:
            raise CompileError(
                f"cannot evaluate the parameter annotations of {fn.__name__}: {exc}",
                expected="annotations such as tv.Tensor[tv.f32], tv.i32, tv.constexpr",
                found=str(inspect.signature(fn)),
                code="annotation",
            ) from exc
        self._fast = _fast_path(self.signature)
        self._source: FunctionSource | None = None
        self._cache: dict[tuple, KernelIR] = {}
        self._binaries: dict[tuple, CompiledKernel] = {}

    def __repr__(self) -> str:
        return f"<tilevm kernel {self.__name__}>"

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        raise LaunchError(
            f"kernel {self.__name__} needs a grid to launch",
            expected=f"{self.__name__}[grid](args...)",
            found=f"{self.__name__}(args...)",
            hint="for example add[tv.cdiv(n, 1024),](x, y, out)",
            code="no-grid",
        )

    @property
    def source(self) -> FunctionSource:
        if self._source is None:
            self._source = FunctionSource.of(self.fn)
        return self._source

    def __getitem__(self, grid: Any) -> Launcher:
        return Launcher(self, _normalize_grid(grid))

    # ----- specialization ---------------------------------------------------------------------
    def specialize(
        self, args: Sequence[Any], kwargs: dict[str, Any], on_device: bool = False
    ) -> tuple[list[ParamSpec], dict[str, Any], dict[str, HostTensor | DeviceTensor]]:
        """The specialization key of these arguments, the bound values, and each tensor argument
        already converted for the executor (converted once: packed arrays are unpacked here)."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise LaunchTypeError(
                f"wrong arguments for kernel {self.__name__}: {exc}",
                expected=f"{self.__name__}{self.signature}",
                found=f"{len(args)} positional, keywords {sorted(kwargs)}",
            ) from None
        bound.apply_defaults()
        specs, hosts = [], {}
        for name, param in self.signature.parameters.items():
            if name not in bound.arguments:
                raise LaunchTypeError(
                    f"missing argument '{name}' for kernel {self.__name__}",
                    expected=name,
                    found="nothing",
                )
            spec, host = _spec(name, param.annotation, bound.arguments[name], on_device)
            specs.append(spec)
            if host is not None:
                hosts[name] = host
        return specs, dict(bound.arguments), hosts

    def compile_ir(
        self, specs: Sequence[ParamSpec], warps: int, warp_size: int = WARP_SIZE
    ) -> KernelIR:
        """The VM IR of a specialization for blocks of ``warps`` warps of ``warp_size``
        threads (the target's warp size: 32, 64 on AMD, a sub-group size on Intel)."""
        key = (tuple(specs), warps, warp_size)
        if key in self._cache:
            return self._cache[key]
        builder = Builder()
        scope = self.fn.__globals__ | closure_vars(self.fn)
        tr = Translator(self.source, scope, builder, warps * warp_size, warp_size)
        params = []
        for spec in specs:
            if spec.kind == "constexpr":
                tr.env[spec.name] = spec.value
                continue
            type_ = (
                GlobalType(spec.dtype, spec.rank)
                if spec.kind == "tensor"
                else ScalarType(spec.dtype)
            )
            var = builder.var(spec.name, type_)
            tr.env[spec.name] = var
            params.append(Param(var, spec.kind))
        tr.run_body(self.source.tree.body)
        ir = KernelIR(
            self.__name__,
            tuple(params),
            builder.pop(),
            warps,
            warp_size,
            self.source.loc(self.source.tree),
        )
        verify(ir)
        _dump(ir, "frontend", len(self._cache))
        self._cache[key] = ir
        return ir

    def ir(self, *args: Any, warps: int | None = None, **kwargs: Any) -> str:
        """The VM IR of the specialization these arguments select, as text."""
        specs, _, _ = self.specialize(args, kwargs)
        return print_kernel(
            self.compile_ir(specs, _check_warps(self.default_warps if warps is None else warps))
        )

    def compile(
        self, target: str, *args: Any, warps: int | None = None, **kwargs: Any
    ) -> CompiledKernel | CpuKernel:
        """Build the specialization these arguments select for ``target`` ("cuda" for this
        machine's GPU or sm_90a without one, "cuda:sm_80", ...; "cpu", or "cpu:amd" and the
        like for a GPU target emulated on the CPU): source, binary, launch shape.
        Arguments may be host arrays standing in for device tensors of the same shape."""
        warps = _check_warps(self.default_warps if warps is None else warps)
        specs, _, _ = self.specialize(args, kwargs)
        if target == "cpu" or target.startswith("cpu:"):
            return self._build_cpu(specs, warps, target)
        arch = _cuda_arch(target)
        return self._build(self.compile_ir(specs, warps), specs, arch)

    def lower(self, target: Target, *args: Any, warps: int | None = None, **kwargs: Any) -> Lowered:
        """The thread program of the specialization these arguments select, lowered for the
        capabilities ``target`` (a backend's renderer turns ``.thread`` into source)."""
        warps = _check_warps(self.default_warps if warps is None else warps)
        specs, _, _ = self.specialize(args, kwargs)
        ir = self.compile_ir(specs, warps, target.warp_size)
        return lower_kernel(ir, target, facts_of(specs))

    def emit(self, target: str, *args: Any, warps: int | None = None, **kwargs: Any) -> str:
        """The generated source for ``target`` (see ``compile``)."""
        return self.compile(target, *args, warps=warps, **kwargs).source

    def _build(self, ir: KernelIR, specs: Sequence[ParamSpec], arch: str) -> CompiledKernel:
        key = (tuple(specs), ir.warps, arch)
        if key not in self._binaries:
            index = len(self._binaries)
            self._binaries[key] = build_cuda(
                ir, specs, arch, dump=lambda k, stage: _dump(k, stage, index)
            )
        return self._binaries[key]

    def _build_cpu(self, specs: Sequence[ParamSpec], warps: int, device: str) -> CpuKernel:
        key = (tuple(specs), warps, device)
        if key not in self._binaries:
            ir = self.compile_ir(specs, warps, target_for(device).warp_size)
            index = len(self._binaries)
            self._binaries[key] = build_cpu(
                ir, specs, device, dump=lambda k, stage: _dump(k, stage, index)
            )
        return self._binaries[key]


class Launcher:
    def __init__(self, kernel: Kernel, grid: tuple[int, int, int]) -> None:
        self.kernel = kernel
        self.grid = grid

    def __call__(
        self, *args: Any, warps: int | None = None, device: str | None = None, **kwargs: Any
    ) -> None:
        warps = _check_warps(self.kernel.default_warps if warps is None else warps)
        fast = self.kernel._fast
        bound = fast.bind(args, kwargs)
        key = fast.key(bound, warps, device or "auto") if bound is not None else None
        entry = fast.entries.get(key) if key is not None else None
        if entry is not None and min(self.grid) > 0 and fast.launch(entry, bound, self.grid):
            return
        device = devices.resolve(device, [*args, *kwargs.values()])
        specs, values, hosts = self.kernel.specialize(
            args, kwargs, on_device=device.startswith("cuda")
        )
        warp_size = target_for(device).warp_size if device.startswith("cpu") else WARP_SIZE
        ir = self.kernel.compile_ir(specs, warps, warp_size)  # compile errors even for empty grids
        if min(self.grid) == 0:
            return
        if device == "interp":
            self._interpret(ir, specs, values, hosts)
            return
        scalars = {
            s.name: (s.dtype, _scalar_value(s, values[s.name])) for s in specs if s.kind == "scalar"
        }
        if device.startswith("cpu"):
            compiled = self.kernel._build_cpu(specs, warps, device)
            launch_cpu(compiled, self.grid, hosts, scalars)
            if key is not None and all(_host_fast(v) for v in hosts.values()):
                fast.entries[key] = _entry(compiled, fast, specs)
            return
        index = devices.cuda_index(device)
        compiled = self.kernel._build(ir, specs, driver.device_info(index).arch_for_compile)
        launch_cuda(compiled, self.grid, hosts, scalars, index)
        if key is not None:
            fast.entries[key] = _entry(compiled, fast, specs)

    def _interpret(self, ir: KernelIR, specs, values, hosts) -> None:
        env = {}
        for param, spec in zip(ir.params, [s for s in specs if s.kind != "constexpr"]):
            if spec.kind == "tensor":
                host = hosts[spec.name]
                env[param.var] = GlobalTensor(host.dtype, host.codes, host.shape, host.strides)
            else:
                env[param.var] = Scalar(spec.dtype, _scalar_value(spec, values[spec.name]))
        Interpreter(ir, self.grid).run(env)
        for host in hosts.values():
            host.write_back()


def _fast_path(signature: inspect.Signature) -> FastPath:
    kinds, defaults = [], []
    for param in signature.parameters.values():
        a = param.annotation
        kinds.append(
            "constexpr" if a is lang.constexpr
            else "tensor" if a is lang.Tensor or isinstance(a, lang.Tensor)
            else "scalar" if isinstance(a, DataType)
            else "any"
        )  # fmt: skip
        empty = param.default is inspect.Parameter.empty
        defaults.append(FAST_MISS if empty else param.default)
    return FastPath(list(signature.parameters), kinds, defaults)


def _entry(
    compiled: CompiledKernel | CpuKernel, fast: FastPath, specs: Sequence[ParamSpec]
) -> FastEntry:
    position = {name: i for i, name in enumerate(fast.names)}
    plan = tuple((p.kind, position[p.arg], p.axis) for p in compiled.thread.params)
    scalars = {position[s.name]: s.dtype for s in specs if s.kind == "scalar"}
    block = (compiled.num_threads, 1, 1)
    if isinstance(compiled, CpuKernel):
        run_host = functools.partial(run_slots, compiled)
        return FastEntry(None, block, compiled.shared_bytes, plan, scalars, run_host)
    return FastEntry(compiled._function, block, compiled.shared_bytes, plan, scalars)


def _host_fast(host: HostTensor) -> bool:
    """A numpy argument the repeat path can pass as it is (its own memory, full-width items)."""
    return isinstance(host.source, np.ndarray) and host.codes.ctypes.data == host.source.ctypes.data


def _spec(
    name: str, annotation: Any, value: Any, on_device: bool = False
) -> tuple[ParamSpec, HostTensor | DeviceTensor | None]:
    if annotation is lang.Tensor:  # bare tv.Tensor: any dtype
        annotation = lang.Tensor()
    if annotation is lang.constexpr:
        if is_tensor_like(value):
            raise LaunchTypeError(
                f"constexpr '{name}' got a tensor",
                expected="a Python value",
                found=type(value).__name__,
            )
        return ParamSpec(name, "constexpr", value=value), None
    if isinstance(annotation, lang.Tensor) or (
        annotation is inspect.Parameter.empty and is_tensor_like(value)
    ):
        if not is_tensor_like(value):
            raise LaunchTypeError(
                f"argument '{name}' must be a tensor",
                expected=str(annotation),
                found=f"{type(value).__name__} {value!r}"[:80],
                hint="pass a numpy array, a torch tensor or a tv.PackedArray",
            )
        if on_device != is_device_tensor(value):
            raise LaunchTypeError(
                f"argument '{name}' is {'a host' if on_device else 'a GPU'} tensor, but the "
                f"kernel runs {'on the GPU' if on_device else 'on the host'}",
                expected="every tensor argument on the device the kernel runs on",
                found=_where(value),
                hint="move it (torch: .cuda() / .cpu()), or pass device= to match",
            )
        host = device_tensor(value, name) if on_device else host_tensor(value, name)
        if (
            isinstance(annotation, lang.Tensor)
            and annotation.dtype is not None
            and annotation.dtype != host.dtype
        ):
            raise LaunchTypeError(
                f"argument '{name}' has dtype {host.dtype}",
                expected=f"a tensor of {annotation.dtype}",
                found=f"a tensor of {host.dtype}",
                hint=f"convert it, e.g. arr.astype(...) to {annotation.dtype}",
            )
        if int(np.prod(host.shape)) >= 2**31:
            raise LaunchError(
                f"argument '{name}' has 2**31 or more elements",
                expected="fewer elements (32-bit indexing)",
                found=str(host.shape),
            )
        spec = ParamSpec(
            name,
            "tensor",
            host.dtype,
            len(host.shape),
            None,
            host.contiguous,
            host.aligned16,
            host.stride_align,
            host.extent_align,
        )
        return spec, host
    if isinstance(annotation, DataType) or annotation is inspect.Parameter.empty:
        if is_tensor_like(value) or not isinstance(value, (int, float, bool, np.number, np.bool_)):
            raise LaunchTypeError(
                f"argument '{name}' must be a scalar",
                expected=str(annotation) if isinstance(annotation, DataType) else "a number",
                found=type(value).__name__,
            )
        dtype = annotation if isinstance(annotation, DataType) else python_dtype(value)
        return ParamSpec(name, "scalar", dtype), None
    raise LaunchTypeError(
        f"parameter '{name}' has an annotation tilevm does not know",
        expected="tv.Tensor[dtype], a dtype such as tv.i32, or tv.constexpr",
        found=repr(annotation),
    )


def _where(value: Any) -> str:
    device = getattr(value, "device", None)
    return f"{type(value).__name__} on {device}" if device is not None else type(value).__name__


def _cuda_arch(target: str) -> str:
    name, _, arch = target.partition(":")
    if name != "cuda":
        raise CompileError(
            f"no code generator for target {target!r}",
            expected="'cuda' or 'cuda:<arch>' such as 'cuda:sm_80', 'cuda:sm_90a'",
            found=repr(target),
            hint="kernel.ir(...) shows the VM IR for any target",
            code="unsupported-target",
        )
    if arch:
        return arch
    return driver.device_info(0).arch_for_compile if driver.available() else "sm_90a"


def _scalar_value(spec: ParamSpec, value: Any) -> Any:
    dtype = spec.dtype
    if dtype.is_integer and (isinstance(value, float) and not float(value).is_integer()):
        raise LaunchTypeError(
            f"argument '{spec.name}' must be an integer", expected=str(dtype), found=repr(value)
        )
    code = dtype.encode(np.asarray([value]), overflow="error")
    return dtype.decode(code)[0].item()


def _normalize_grid(grid: Any) -> tuple[int, int, int]:
    items = tuple(grid) if isinstance(grid, (tuple, list)) else (grid,)
    if not 1 <= len(items) <= 3 or any(
        not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0 for n in items
    ):
        raise LaunchError(
            "bad grid",
            expected="1 to 3 non-negative ints, e.g. kernel[(n_blocks,)] or kernel[gx, gy]",
            found=repr(grid),
            code="grid",
        )
    return tuple(int(n) for n in items) + (1,) * (3 - len(items))


def _check_warps(warps: Any) -> int:
    if not isinstance(warps, int) or isinstance(warps, bool) or not 1 <= warps <= MAX_WARPS:
        raise LaunchError(
            "bad warps", expected=f"an int in 1..{MAX_WARPS}", found=repr(warps), code="warps"
        )
    return warps


def _dump(ir: KernelIR, stage: str, index: int) -> None:
    """``TILEVM_DUMP=dir``: write the IR after each stage, for people debugging the compiler."""
    folder = os.environ.get("TILEVM_DUMP")
    if folder:
        path = pathlib.Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        (path / f"{ir.name}.{index}.{stage}.ir").write_text(print_kernel(ir) + "\n")


__all__ = ["Kernel", "func", "kernel"]
