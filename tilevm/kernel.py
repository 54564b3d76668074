"""``@tv.kernel``: compile a Python function to VM IR per specialization, and launch it."""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tilevm import language as lang
from tilevm.dtypes import DataType, DtypeError
from tilevm.errors import (
    CompileError,
    DeviceError,
    LaunchError,
    LaunchTypeError,
    TilevmError,
    entry_point,
    full_tracebacks,
)
from tilevm.frontend.builder import Builder, python_dtype
from tilevm.frontend.expressions import Func
from tilevm.frontend.scope import Reads, Scope
from tilevm.frontend.source import FunctionSource
from tilevm.frontend.translate import Translator
from tilevm.ir.nodes import KernelIR, Param, written_tensors
from tilevm.ir.printer import print_kernel
from tilevm.ir.types import GlobalType, ScalarType
from tilevm.ir.verify import verify
from tilevm.lowering.pipeline import Lowered, lower_kernel
from tilevm.lowering.target import Target
from tilevm.runtime import programs, registry
from tilevm.runtime.arrays import (
    PackedArray,
    host_tensor,
    is_host_tensor,
    is_tensor_like,
    needs_wide_index,
)
from tilevm.runtime.backend import Backend
from tilevm.runtime.build import facts_of
from tilevm.runtime.fast_launch import _MISS as FAST_MISS
from tilevm.runtime.fast_launch import FastPath
from tilevm.runtime.launches import COUNT as LAUNCHES
from tilevm.runtime.programs import Ready
from tilevm.runtime.python_scalars import PYTHON_SCALARS, python_scalar_dtype
from tilevm.runtime.variants import Translation, holding, remember

WARP_SIZE = 32  # for the VM IR shown by kernel.ir(); each target has its own
MAX_WARPS = 32
MAX_GRID = (2**31 - 1,) * 3  # block ids are i32 in the VM; targets may allow fewer


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
    wide: bool = False  # sizes, strides or offsets reach 2**31 elements: 64-bit indexing


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
        self.default_warps = _check_warps(warps)  # launches that give none skip the check
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
        # per specialization, its variants (``runtime.variants``), newest first
        self._cache: dict[tuple, list[Translation]] = {}  # VM IR and the globals it read
        self._binaries: dict[tuple, list[Ready]] = {}  # what each backend's build returned

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

    @property
    def read_source(self) -> FunctionSource | None:
        """The source as read for translating, or None before it is."""
        return self._source

    def __getitem__(self, grid: Any) -> Launcher:
        return Launcher(self, _normalize_grid(grid))

    # ----- specialization ---------------------------------------------------------------------
    def specialize(
        self,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        backend: Backend | None = None,
        device: str = "",
    ) -> tuple[list[ParamSpec], dict[str, Any], dict[str, Any]]:
        """The specialization key of these arguments, the bound values, and each tensor argument
        as ``backend`` reads it (converted once: packed arrays are unpacked here). Without a
        backend (compiling, printing IR) any tensor stands for one of its shape and layout."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise LaunchTypeError(
                f"wrong arguments for kernel {self.__name__}: {exc}",
                expected=f"{self.__name__}{self.signature}",
                found=f"{len(args)} positional, keywords {sorted(kwargs)}",
            ) from None
        bound.apply_defaults()
        specs, tensors = [], {}
        for name, param in self.signature.parameters.items():
            if name not in bound.arguments:
                raise LaunchTypeError(
                    f"missing argument '{name}' for kernel {self.__name__}",
                    expected=name,
                    found="nothing",
                )
            spec, tensor = _spec(name, param.annotation, bound.arguments[name], backend, device)
            specs.append(spec)
            if tensor is not None:
                tensors[name] = tensor
        return specs, dict(bound.arguments), tensors

    def compile_ir(
        self, specs: Sequence[ParamSpec], warps: int, warp_size: int = WARP_SIZE
    ) -> KernelIR:
        """The VM IR of a specialization for blocks of ``warps`` warps of ``warp_size``
        threads (the target's warp size: 32, 64 on AMD, a sub-group size on Intel)."""
        return self._translate(specs, warps, warp_size).ir

    def _translate(self, specs: Sequence[ParamSpec], warps: int, warp_size: int) -> Translation:
        """The VM IR of a specialization, translated again when a global it read changed."""
        key = (tuple(specs), warps, warp_size)
        found = holding(self._cache.get(key, ()))
        if found is not None:
            return found
        reads = Reads()
        builder = Builder()
        scope = Scope(self.fn, reads)
        tr = Translator(self.source, scope, builder, warps * warp_size, warp_size)
        params = []
        for spec in specs:
            if spec.kind == "constexpr":
                tr.env[spec.name] = spec.value
                continue
            type_ = (
                GlobalType(spec.dtype, spec.rank, spec.wide)
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
        translation = Translation(ir, reads, reads.guards())
        remember(self._cache, key, translation)
        return translation

    @entry_point
    def ir(self, *args: Any, warps: int | None = None, **kwargs: Any) -> str:
        """The VM IR of the specialization these arguments select, as text."""
        specs, _, _ = self.specialize(args, kwargs)
        return print_kernel(
            self.compile_ir(specs, _check_warps(self.default_warps if warps is None else warps))
        )

    @entry_point
    def compile(self, target: str, *args: Any, warps: int | None = None, **kwargs: Any) -> Any:
        """Build the specialization these arguments select for ``target``: a device ("cuda"
        for this machine's GPU, "cpu", or "cpu:amd" and the like for a GPU target emulated on
        the CPU) or a compile target ("cuda:sm_80", "hip:gfx942"); needs that backend's
        toolchain. Returns its source, binary and launch shape. Arguments may be host arrays
        standing in for device tensors of the same shape."""
        warps = _check_warps(self.default_warps if warps is None else warps)
        backend = _code_generator(target)
        caps = backend.target(target)
        specs, _, _ = self.specialize(args, kwargs)
        return self._build(backend, caps, specs, warps, target)

    @entry_point
    def lower(
        self, target: Target | str, *args: Any, warps: int | None = None, **kwargs: Any
    ) -> Lowered:
        """The thread program of the specialization these arguments select, lowered for
        ``target`` (capabilities, or a device / compile target name)."""
        if isinstance(target, str):
            target = _code_generator(target).target(target)
        warps = _check_warps(self.default_warps if warps is None else warps)
        specs, _, _ = self.specialize(args, kwargs)
        ir = self.compile_ir(specs, warps, target.warp_size)
        return lower_kernel(ir, target, facts_of(specs))

    @entry_point
    def emit(self, target: str, *args: Any, warps: int | None = None, **kwargs: Any) -> str:
        """The generated source for ``target`` (see ``compile``); needs no vendor toolchain."""
        backend = _code_generator(target)
        caps = backend.target(target)
        return backend.render(self.lower(caps, *args, warps=warps, **kwargs), caps)

    def _build(
        self, backend: Backend, caps: Target, specs: Sequence[ParamSpec], warps: int, spec: str
    ) -> Any:
        """The complete build (source, thread program, binary) of a specialization."""
        return self._ready(backend, caps, specs, warps, spec).built

    def _ready(
        self, backend: Backend, caps: Target, specs: Sequence[ParamSpec], warps: int, spec: str
    ) -> Ready:
        """Compile a specialization for ``caps`` (or find it compiled in this process) and keep
        it in the program cache for the next process."""
        key = (tuple(specs), warps, backend.name, caps.name)
        found = holding(r for r in self._binaries.get(key, ()) if not r.restored)
        if found is not None:
            return found
        translation = self._translate(specs, warps, caps.warp_size)
        ir = translation.ir
        index = len(self._binaries)
        lowered = lower_kernel(ir, caps, facts_of(specs), lambda k, stage: _dump(k, stage, index))
        built = backend.build(ir, lowered, caps, spec)
        ready = Ready(built, frozenset(written_tensors(ir)), translation.guards)
        remember(self._binaries, key, ready)
        programs.store(self, backend, caps, specs, warps, spec, ready, translation.reads)
        return ready

    def _cached(
        self, backend: Backend, caps: Target, specs: Sequence[ParamSpec], warps: int, spec: str
    ) -> Ready | None:
        """A specialization built earlier in this process or kept in the program cache, found
        without translating the kernel; None when it must be compiled."""
        key = (tuple(specs), warps, backend.name, caps.name)
        found = holding(self._binaries.get(key, ()))
        if found is None:
            found = programs.load(self, backend, caps, specs, warps, spec)
            if found is not None:
                remember(self._binaries, key, found)
        return found


class Launcher:
    def __init__(self, kernel: Kernel, grid: tuple[int, int, int]) -> None:
        self.kernel = kernel
        self.grid = grid

    def __call__(
        self, *args: Any, warps: int | None = None, device: str | None = None, **kwargs: Any
    ) -> None:
        warps = self.kernel.default_warps if warps is None else _check_warps(warps)
        missed = self.kernel._fast.repeat(args, kwargs, warps, device or "auto", self.grid)
        if missed is None:
            LAUNCHES[0] += 1
            return
        bound, probe = missed
        try:
            self._full_launch(args, kwargs, warps, device, bound, probe)
        except TilevmError as exc:  # the user's call and the message, not the compiler's frames
            if full_tracebacks():
                raise
            raise exc.with_traceback(None)  # noqa: B904

    def _full_launch(self, args, kwargs, warps: int, device: str | None, bound, probe) -> None:
        """Everything the repeat path skips: resolve, specialize, compile (or find the cached
        program), check, launch, and record a repeat-path entry."""
        fast = self.kernel._fast
        backend, device = registry.resolve(device, [*args, *kwargs.values()])
        specs, values, tensors = self.kernel.specialize(args, kwargs, backend, device)
        ready: Ready | None = None
        if backend.lowers:
            caps = backend.target(device)
            if not os.environ.get("TILEVM_DUMP"):  # dumping shows the stages of each launch
                ready = self.kernel._cached(backend, caps, specs, warps, device)
            warp_size = caps.warp_size
        else:
            warp_size = backend.warp_size(device)
        if ready is None:
            translation = self.kernel._translate(specs, warps, warp_size)
            writes, guards = written_tensors(translation.ir), translation.guards
        else:
            writes, guards = ready.writes, ready.guards
        _check_writable(writes, tensors)
        if min(self.grid) == 0:  # after compiling to VM IR: errors show even for empty grids
            return
        scalars = {
            s.name: (s.dtype, _scalar_value(s, values[s.name])) for s in specs if s.kind == "scalar"
        }
        if backend.lowers:
            _check_grid(self.grid, caps.max_grid, f"the limit of {caps}")
            if ready is None:
                ready = self.kernel._ready(backend, caps, specs, warps, device)
            built = ready.built
        else:
            built = translation.ir
        backend.launch(built, self.grid, tensors, scalars, device)
        LAUNCHES[0] += 1
        if probe is not None:
            positions = {name: i for i, name in enumerate(fast.names)}
            entry = backend.fast_entry(built, positions, specs, tensors)
            if entry is not None:
                fast.record(probe[0], bound, dataclasses.replace(entry, guards=guards))


def _fast_path(signature: inspect.Signature) -> FastPath:
    kinds, defaults = [], []
    for param in signature.parameters.values():
        a = param.annotation
        kinds.append(
            "constexpr" if a is lang.constexpr
            else "tensor" if a is lang.Tensor or isinstance(a, lang.Tensor)
            else "scalar" if isinstance(a, DataType) or a in PYTHON_SCALARS
            else "any"
        )  # fmt: skip
        empty = param.default is inspect.Parameter.empty
        defaults.append(FAST_MISS if empty else param.default)
    return FastPath(list(signature.parameters), kinds, defaults)


def _spec(
    name: str, annotation: Any, value: Any, backend: Backend | None, device: str
) -> tuple[ParamSpec, Any]:
    if annotation is lang.Tensor:  # bare tv.Tensor: any dtype
        annotation = lang.Tensor()
    if annotation is lang.constexpr:
        if is_tensor_like(value):
            raise LaunchTypeError(
                f"constexpr '{name}' got a tensor",
                expected="a Python value",
                found=type(value).__name__,
            )
        try:
            hash(value)
        except TypeError:  # the value keys the specialization
            raise LaunchTypeError(
                f"constexpr '{name}' must be hashable",
                expected="a hashable Python value: a number, string, tuple, dtype, layout, "
                "@tv.func",
                found=f"{type(value).__name__} {value!r}"[:80],
                hint="pass a tuple instead of a list, e.g. tuple(value)",
            ) from None
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
        host = _tensor(name, value, backend, device)
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
            needs_wide_index(host.shape, host.strides),
        )
        return spec, host
    if annotation in PYTHON_SCALARS:
        return ParamSpec(name, "scalar", python_scalar_dtype(name, annotation, value)), None
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
        expected="tv.Tensor[dtype], a dtype such as tv.i32, int, float, bool, or tv.constexpr",
        found=repr(annotation),
    )


def _tensor(name: str, value: Any, backend: Backend | None, device: str) -> Any:
    """A tensor argument as ``backend`` reads it; without a backend, as its own device's (or
    the host's) backend describes it."""
    if backend is None:
        owner = registry.owner(value)
        if owner is None or is_host_tensor(value):
            return host_tensor(value, name)
        return owner.tensor(value, name)
    if not backend.accepts(value):
        owner = registry.owner(value)
        here = "host memory" if owner is None else owner.device_of(value)
        raise LaunchTypeError(
            f"argument '{name}' lives in {here}, but the kernel runs on {device}",
            expected=f"every tensor argument where device {device!r} can read it",
            found=_where(value),
            hint="move it (torch: .to(device) / .cpu()), or pass device= to match",
        )
    return backend.tensor(value, name)


def _where(value: Any) -> str:
    device = getattr(value, "device", None)
    return f"{type(value).__name__} on {device}" if device is not None else type(value).__name__


def _check_writable(writes: Any, tensors: dict[str, Any]) -> None:
    """A tensor the kernel writes must be writable (a read-only numpy array, or one over
    immutable bytes, was written through its pointer)."""
    for name in sorted(writes):
        source = getattr(tensors.get(name), "source", None)
        if isinstance(source, PackedArray):
            source = source.data
        if isinstance(source, np.ndarray) and not source.flags.writeable:
            raise LaunchTypeError(
                f"argument '{name}' is read-only, but the kernel writes it",
                expected="a writable array for every tensor the kernel stores to",
                found="an array with flags.writeable == False",
                hint=f"pass a copy ({name}.copy()) or a writable array",
                code="read-only",
            )


def _code_generator(target: Any) -> Backend:
    """The backend that generates code for compile target ``target``."""
    try:
        return registry.backend_for(target)
    except DeviceError:
        raise CompileError(
            f"no code generator for target {target!r}",
            expected="a target starting with one of "
            + ", ".join(repr(b.name) for b in registry.backends() if b.lowers),
            found=repr(target),
            hint="e.g. 'cuda:sm_90a', 'hip:gfx942', 'cpu'; kernel.ir(...) shows the VM IR",
            code="unsupported-target",
        ) from None


def _scalar_value(spec: ParamSpec, value: Any) -> Any:
    dtype = spec.dtype
    if dtype.is_integer and (isinstance(value, float) and not float(value).is_integer()):
        raise LaunchTypeError(
            f"argument '{spec.name}' must be an integer", expected=str(dtype), found=repr(value)
        )
    special = isinstance(value, (float, np.floating)) and not math.isfinite(value)
    if special and dtype.is_float and (dtype.has_nan if math.isnan(value) else dtype.has_inf):
        return dtype.decode(dtype.encode(np.asarray([value])))[0].item()  # inf, nan as they are
    try:
        code = dtype.encode(np.asarray([value]), overflow="error")
    except DtypeError as exc:
        raise LaunchError(
            f"argument '{spec.name}' = {value!r} does not fit {dtype}",
            expected=exc.expected,
            found=repr(value),
            hint=f"pass a value {dtype} can hold, or declare '{spec.name}' with a wider type",
            code="scalar-range",
        ) from None
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
    sizes = tuple(int(n) for n in items) + (1,) * (3 - len(items))
    _check_grid(sizes, MAX_GRID, "block ids are 32-bit integers")
    return sizes


def _check_grid(grid: tuple[int, int, int], limit: tuple[int, int, int], why: str) -> None:
    if any(n > most for n, most in zip(grid, limit)):
        raise LaunchError(
            "grid too large",
            expected=f"at most {limit[0]} x {limit[1]} x {limit[2]} blocks ({why})",
            found=" x ".join(map(str, grid)),
            hint="give each block more work (a larger tile or a loop over tiles)",
            code="grid",
        )


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


__all__ = ["Func", "Kernel", "func", "kernel"]
