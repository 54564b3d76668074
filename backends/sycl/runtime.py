"""Running SYCL kernels through dpctl: devices, compiling (cached), launching.

Compiling: the generated source goes through the run-time kernel compiler in ``shim.cpp``
(~2 s a kernel on the OpenCL CPU device). The built bundle is serialized (SYCLBIN) into tilevm's
disk cache, keyed by the source, the build options, the device and driver and the SYCL runtime's
version, so another process loads it in milliseconds; within a process programs are kept by key.

Launching takes a thread program's parameter list and fills it:

- numpy arrays, torch CPU tensors and ``tilevm.PackedArray`` (or the ``HostTensor`` that
  ``tilevm.runtime.arrays.host_tensor`` makes of them) are copied into USM device memory
  (sub-byte dtypes bit-packed, as the kernel reads them), and copied back after the kernel ends;
- ``UsmTensor`` wraps a ``dpctl.memory.MemoryUSM*`` allocation with a dtype and a shape (and
  optionally strides, in elements): the kernel reads and writes that memory in place. Its bytes
  are the kernel's representation: sub-byte dtypes bit-packed, like ``PackedArray.data``;
- torch tensors on an ``xpu`` device are passed in place by their data pointer (untested: no
  machine here has an XPU).

The wheel's OpenCL ICD file names a placeholder path, so importing this module points
``OCL_ICD_FILENAMES`` at the environment's ``libintelocl.so`` (unless it is set already), before
dpctl first looks for devices.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import tilevm.dtypes as dts
from tilevm.backends.sycl import shim
from tilevm.backends.sycl.renderer import STATUS, render
from tilevm.backends.sycl.target import opencl_cpu_target, target_for_device
from tilevm.dtypes import DataType
from tilevm.errors import CompileError, DeviceError, LaunchError, LaunchTypeError
from tilevm.lowering.pipeline import Lowered
from tilevm.lowering.target import Target
from tilevm.lowering.thread_ir import Param, ThreadKernel
from tilevm.runtime.arrays import HostTensor, PackedArray, c_strides, extent_align, host_tensor
from tilevm.runtime.arrays import stride_align as _stride_align
from tilevm.runtime.cache import DiskCache
from tilevm.runtime.fast_launch import INDEX_CTYPE, scalar_arg


def _point_icd_loader_at_the_cpu_runtime() -> None:
    """The intel-opencl-rt wheel's ICD file names a placeholder path: point the loader at the
    library itself, in the ``lib`` folder of the environment the wheel went into."""
    if "OCL_ICD_FILENAMES" in os.environ:
        return
    for prefix in shim.environment_prefixes():
        if (prefix / "lib" / "libintelocl.so").exists():
            os.environ["OCL_ICD_FILENAMES"] = str(prefix / "lib" / "libintelocl.so")
            return


_point_icd_loader_at_the_cpu_runtime()

try:
    import dpctl
    import dpctl.memory as dpmem
    import dpctl.program._program as _dpprogram
except ImportError:  # pragma: no cover - the sycl extra is not installed
    dpctl = None
    dpmem = None
    _dpprogram = None

# One rounding per operation and IEEE denormals, NaN and infinities, as the VM's semantics say
# (the SYCL compiler's default floating-point model is fast).
BUILD_OPTIONS = ("-ffp-model=precise", "-ffp-contract=off")


# ----- devices ----------------------------------------------------------------------------------
_why_not: list[str | None] = []  # the answer of the first call, kept for the process


def unavailable() -> str | None:
    """None when SYCL kernels can be compiled and run here; otherwise why not, in one line."""
    if not _why_not:
        _why_not.append(_check())
    return _why_not[0]


def _check() -> str | None:
    if dpctl is None:
        return "dpctl is not installed (pip install 'tilevm[sycl]')"
    try:
        devices = dpctl.get_devices()
    except Exception as exc:  # dpctl raises its own error types for a broken runtime
        return f"no SYCL device: {exc}"
    if not devices:
        return "no SYCL device: dpctl finds none (is OCL_ICD_FILENAMES set?)"
    try:
        compiler = shim.load()
    except shim.ShimError as exc:
        return str(exc).splitlines()[0]
    if not any(compiler.can_compile(d.addressof_ref()) for d in devices):
        return "no SYCL device can compile SYCL source at run time (needs libsycl-jit)"
    return None


def device_names() -> list[str]:
    """``sycl:<dpctl filter string>`` of every device that compiles and runs kernels here."""
    if unavailable() is not None:
        return []
    compiler = shim.load()
    return [
        f"sycl:{d.filter_string}"
        for d in dpctl.get_devices()
        if compiler.can_compile(d.addressof_ref())
    ]


def device_filter(device: str) -> str:
    """The dpctl filter string of a device name ("sycl:opencl:cpu" -> "opencl:cpu")."""
    name = device.removeprefix("sycl").removeprefix(":")
    return name or "default"


_queues: dict[str, Any] = {}


def queue(device: str) -> Any:
    """The (in-order, cached) ``dpctl.SyclQueue`` of a device name or filter string."""
    filt = device_filter(device)
    if filt not in _queues:
        why = unavailable()
        if why is not None:
            raise DeviceError(f"SYCL device {device!r} is not available: {why}", code="no-device")
        try:
            selector = dpctl.SyclDevice() if filt == "default" else dpctl.SyclDevice(filt)
            _queues[filt] = dpctl.SyclQueue(selector, property="in_order")
        except Exception as exc:
            raise DeviceError(
                f"no SYCL device {filt!r}: {exc}",
                expected="one of " + ", ".join(device_names()),
                found=repr(device),
                code="no-device",
            ) from None
    return _queues[filt]


def target(device: str) -> Target:
    """The capabilities of a device: a GPU's family target, or the OpenCL CPU's own."""
    dev = queue(device).sycl_device
    if dev.is_cpu:
        return opencl_cpu_target(sub_group_sizes=tuple(dev.sub_group_sizes),
                                  local_bytes=int(dev.local_mem_size))  # fmt: skip
    return target_for_device(dev.name, tuple(dev.sub_group_sizes), int(dev.local_mem_size))


# ----- compiling --------------------------------------------------------------------------------
@dataclass
class Program:
    """One kernel built for one device: its source, SYCLBIN bundle and dpctl kernel."""

    name: str
    device: str  # a dpctl filter string
    source: str
    binary: bytes  # the SYCLBIN bundle
    kernel: Any = field(repr=False)  # dpctl.program.SyclKernel
    cached: bool = False  # loaded from the disk cache without compiling
    log: str = ""
    # the kernel takes the status word a trap sets (see ``renderer.STATUS``)
    traps: bool = field(init=False)

    def __post_init__(self) -> None:
        self.traps = f"int* __restrict__ {STATUS}" in self.source


_programs: dict[tuple[str, ...], Program] = {}


def compile(
    source: str,
    kernel_name: str,
    device: str = "opencl:cpu",
    options: Sequence[str] = BUILD_OPTIONS,
    cache: DiskCache | None = None,
) -> Program:
    """Build ``source``'s kernel ``kernel_name`` for a device (a name or filter string), through
    the in-process and the disk cache. Raises CompileError with the compiler's log."""
    q = queue(device)
    dev = q.sycl_device
    ident = f"{dev.filter_string}|{dev.name}|{dev.driver_version}"
    key = (source, kernel_name, ident, *options)
    if key in _programs:
        return _programs[key]
    compiler = shim.load()
    cache = cache or DiskCache()
    disk_key = cache.key(source, kernel_name, "\n".join(options), ident, shim.runtime_version(),
                         compiler.version(), "syclbin")  # fmt: skip
    context_ref, device_ref = q.sycl_context.addressof_ref(), dev.addressof_ref()
    binary, kernel_ref, cached, log = cache.get(disk_key), None, False, ""
    if binary is not None:
        try:
            kernel_ref, cached = compiler.load(context_ref, device_ref, binary, kernel_name), True
        except shim.BuildFailed:
            binary = None  # an unusable entry: build again and replace it
    if kernel_ref is None:
        try:
            kernel_ref, binary, log = compiler.build(
                context_ref, device_ref, source, list(options), kernel_name
            )
        except shim.BuildFailed as exc:
            raise CompileError(
                f"the SYCL compiler rejected kernel {kernel_name}",
                found=str(exc).strip()[-4000:],
                hint="the generated source is in the exception's found= text; report it as a "
                "tilevm bug",
                code="sycl-compile",
            ) from None
        cache.put(disk_key, binary)
    kernel = _make_kernel(kernel_ref, kernel_name)
    program = Program(kernel_name, dev.filter_string, source, binary, kernel, cached, log)
    _programs[key] = program
    return program


@functools.cache
def toolchain(device: str, options: tuple[str, ...]) -> str:
    """What decides a kernel's SYCLBIN besides its source: the device and its driver, the build
    options, the SYCL runtime and the compiler the shim was built against."""
    dev = queue(device).sycl_device
    parts = [dev.filter_string, dev.name, dev.driver_version, *options, shim.runtime_version()]
    return "|".join([*parts, shim.load().version()])


def load(source: str, kernel_name: str, device: str, binary: bytes) -> Program:
    """``source``'s program from a SYCLBIN built for this device earlier (the program cache
    keeps both); raises ``shim.BuildFailed`` when the device cannot load it."""
    q = queue(device)
    dev = q.sycl_device
    context_ref, device_ref = q.sycl_context.addressof_ref(), dev.addressof_ref()
    kernel_ref = shim.load().load(context_ref, device_ref, binary, kernel_name)
    kernel = _make_kernel(kernel_ref, kernel_name)
    return Program(kernel_name, dev.filter_string, source, binary, kernel, cached=True)


@dataclass
class Built:
    """A lowered kernel compiled for a device: what a backend's ``build`` returns."""

    name: str
    arch: str  # the target's name, e.g. "sycl-cpu-sg16"
    source: str
    thread: ThreadKernel
    lowered: Lowered
    program: Program

    @property
    def binary(self) -> bytes:
        return self.program.binary

    @property
    def cached(self) -> bool:
        return self.program.cached

    @property
    def num_threads(self) -> int:
        return self.thread.num_threads

    @property
    def shared_bytes(self) -> int:
        return self.thread.shared_bytes


def build(lowered: Lowered, device: str = "opencl:cpu", target_name: str = "") -> Built:
    """Render and compile a kernel lowered for ``target(device)`` (through both caches)."""
    source = render(lowered)
    program = compile(source, lowered.thread.name, device)
    arch = target_name or lowered.thread.target
    return Built(lowered.thread.name, arch, source, lowered.thread, lowered, program)


def run(built: Built, grid: tuple[int, int, int], tensors: dict[str, Any],
        scalars: dict[str, tuple[DataType, Any]]) -> None:  # fmt: skip
    """``launch`` for a ``build`` result."""
    launch(built.program, built.thread, grid, tensors, scalars)


def _make_kernel(kernel_ref: int, name: str) -> Any:
    """dpctl's SyclKernel owning a ``sycl::kernel*`` (through dpctl's C-API capsule)."""
    capsule = _dpprogram.__pyx_capi__["SyclKernel_Make"]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    address = get_pointer(capsule, get_name(capsule))
    make = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_char_p)(address)
    return make(kernel_ref, name.encode())


# ----- arguments --------------------------------------------------------------------------------
@dataclass
class UsmTensor:
    """A tensor in USM memory (``dpctl.memory.MemoryUSMDevice``/``Shared``/``Host``) that a
    kernel reads and writes in place. ``memory`` holds the kernel's representation (sub-byte
    dtypes bit-packed); ``strides`` count elements (default: C order)."""

    memory: Any
    dtype: DataType
    shape: tuple[int, ...]
    strides: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        self.dtype = dts.dtype(self.dtype)
        self.shape = tuple(int(s) for s in self.shape)
        self.strides = c_strides(self.shape) if self.strides is None else tuple(self.strides)

    @classmethod
    def from_host(cls, values: Any, queue_or_device: Any = "opencl:cpu") -> UsmTensor:
        """A new device allocation holding a numpy array (or ``PackedArray``)'s values."""
        q = queue(queue_or_device) if isinstance(queue_or_device, str) else queue_or_device
        host = host_tensor(values, "values")
        data = _kernel_bytes(host)
        memory = dpmem.MemoryUSMDevice(_padded(data.nbytes), queue=q)
        memory.copy_from_host(_pad(data))
        return cls(memory, host.dtype, host.shape)

    def to_host(self) -> np.ndarray:
        """The values as a numpy array (sub-byte dtypes one element per byte)."""
        raw = np.empty(self.memory.nbytes, np.uint8)
        self.memory.copy_to_host(raw)
        return dts.unpack(raw, self.dtype, self.shape)

    @property
    def pointer(self) -> Any:
        return self.memory

    @property
    def contiguous(self) -> bool:
        return len(self.shape) == 0 or self.strides[-1] == 1

    @property
    def aligned16(self) -> bool:
        memory = self.memory
        address = memory.value if isinstance(memory, ctypes.c_void_p) else memory._pointer
        return int(address or 0) % 16 == 0

    @property
    def stride_align(self) -> int:
        return _stride_align(self.strides, self.dtype.bits)

    @property
    def extent_align(self) -> int:
        return extent_align(self.shape, self.dtype.bits)


def accepts(value: Any) -> bool:
    """Whether a launch takes ``value`` as a tensor argument."""
    if isinstance(value, (UsmTensor, HostTensor, np.ndarray, PackedArray)):
        return True
    return _is_xpu_tensor(value) or _is_torch_cpu(value)


def tensor_arg(value: Any, name: str) -> UsmTensor | HostTensor:
    """The argument as a launch reads it (``dtype``, ``shape``, ``strides``, ``contiguous``,
    ``aligned16``, ``stride_align``, ``extent_align``)."""
    if isinstance(value, (UsmTensor, HostTensor)):
        return value
    if _is_xpu_tensor(value):
        return _xpu_tensor(value)
    if isinstance(value, (np.ndarray, PackedArray)) or _is_torch_cpu(value):
        return host_tensor(value, name)
    raise LaunchTypeError(
        f"argument '{name}' is not a tensor a SYCL kernel can read",
        expected="a numpy array, a tv.PackedArray, a UsmTensor or a torch XPU tensor",
        found=type(value).__name__,
    )


def _is_xpu_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor) and value.device.type == "xpu"


def _is_torch_cpu(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor) and value.device.type == "cpu"


def _xpu_tensor(value: Any) -> UsmTensor:
    # Untested (no XPU here): torch allocates XPU memory as USM device memory; it is passed by
    # pointer, so the kernel must run in a context that shares it (torch's default context).
    shape = tuple(value.shape)
    return UsmTensor(ctypes.c_void_p(value.data_ptr()), dts.dtype(value.dtype), shape,
                     tuple(value.stride()))  # fmt: skip


def _kernel_bytes(host: HostTensor) -> np.ndarray:
    """A host tensor's bytes as the kernel reads them: C order, sub-byte dtypes packed."""
    source = host.source
    if isinstance(source, PackedArray):
        data = source.data
        return np.ascontiguousarray(data if isinstance(data, np.ndarray) else data.cpu().numpy())
    codes = np.ascontiguousarray(host.codes)
    if host.dtype.bits in (8, 16, 32, 64):
        return codes.reshape(-1).view(np.uint8)
    return dts.pack_codes(codes.reshape(-1), host.dtype.bits)


def _padded(nbytes: int) -> int:
    # whole 32-bit words plus one: sub-byte stores update the words that hold their bits
    return (nbytes + 3) // 4 * 4 + 16


def _pad(data: np.ndarray) -> np.ndarray:
    out = np.zeros(_padded(data.nbytes), np.uint8)
    out[: data.nbytes] = data.reshape(-1).view(np.uint8)
    return out


class _Staged:
    """A host tensor copied into device memory for one launch, and back after it.

    A strided view keeps its strides: the span of memory it covers is staged, gaps included, so
    the kernel reads it with the strides it was specialized for (its vector widths come from
    them) and that ``x.stride(d)`` reports, as on every other device. Element 0 is placed on a
    16-byte boundary of the allocation."""

    def __init__(self, host: HostTensor, q: Any) -> None:
        self.host = host
        self.shape = host.shape
        span = _strided_span(host)
        if span is None:  # packed arrays and C-ordered arrays: their bytes as they are
            self.span_count, self.first = 0, 0
            self.strides = c_strides(host.shape)
            data = _kernel_bytes(host)
        else:
            codes, first = span
            lead = -first % max(1, 128 // _gcd_bits(host.dtype.bits))  # element 0 at 16 bytes
            if lead:
                codes = np.concatenate([np.zeros(lead, codes.dtype), codes])
            self.span_count, self.first = codes.size, first + lead
            self.strides = host.strides
            if host.dtype.bits in (8, 16, 32, 64):
                data = np.ascontiguousarray(codes).view(np.uint8)
            else:
                data = dts.pack_codes(np.ascontiguousarray(codes), host.dtype.bits)
        self.nbytes = data.nbytes
        # what was uploaded, so that only what the kernel changed is copied back: another
        # argument may be the same array (or overlap it), and its unchanged copy must not
        # overwrite what the kernel wrote through this one
        self.before = data.copy() if isinstance(host.source, PackedArray) else host.codes.copy()
        self.memory = dpmem.MemoryUSMDevice(_padded(data.nbytes), queue=q)
        self.memory.copy_from_host(_pad(data))
        offset = self.first * host.dtype.bits // 8
        self.pointer = self.memory if not offset else _usm_at(self.memory, offset)

    def finish(self) -> None:
        raw = np.empty(self.memory.nbytes, np.uint8)
        self.memory.copy_to_host(raw)
        raw = raw[: self.nbytes]
        host, source = self.host, self.host.source
        if isinstance(source, PackedArray):
            changed = raw != self.before.reshape(-1).view(np.uint8)
            if not changed.any():
                return
            if isinstance(source.data, np.ndarray):
                source.data.reshape(-1).view(np.uint8)[changed] = raw[changed]
            else:  # a torch CPU tensor of bytes
                merged = source.data.cpu().numpy().reshape(-1).view(np.uint8).copy()
                merged[changed] = raw[changed]
                source.data.copy_(sys.modules["torch"].from_numpy(merged).view(source.data.shape))
            host.codes[...] = source.codes().reshape(host.codes.shape)
            return
        count = self.span_count or int(np.prod(host.shape))
        if host.dtype.bits in (8, 16, 32, 64):
            flat = raw.view(host.codes.dtype)[:count]
        else:
            flat = dts.unpack_codes(raw, host.dtype.bits, count).astype(host.codes.dtype)
        if self.span_count:  # the view's elements, read with its strides from the span
            itemsize = flat.itemsize
            codes = np.lib.stride_tricks.as_strided(
                flat[self.first :], host.shape, tuple(s * itemsize for s in host.strides)
            )
        else:
            codes = flat.reshape(host.shape)
        changed = codes != self.before
        if changed.any():  # (inputs may be read-only: they are not written at all)
            host.codes[changed] = codes[changed].astype(host.codes.dtype)


class _UsmSlice:
    """Bytes ``offset`` on of a USM allocation, for dpctl to wrap (a kernel argument must be a
    dpctl memory object; a plain address is refused)."""

    def __init__(self, memory: Any, offset: int) -> None:
        self.memory = memory  # kept alive with the slice
        self.__sycl_usm_array_interface__ = {
            "data": (int(memory._pointer) + offset, False),
            "shape": (memory.nbytes - offset,),
            "strides": None,
            "typestr": "|u1",
            "version": 1,
            "syclobj": memory.sycl_queue,
        }


def _usm_at(memory: Any, offset: int) -> Any:
    """A dpctl memory object for the bytes of ``memory`` from ``offset`` on (no copy)."""
    return dpmem.as_usm_memory(_UsmSlice(memory, offset))


def _gcd_bits(bits: int) -> int:
    """The largest power of two (up to 128) dividing ``bits``: 128 // it elements are 16 bytes
    or a multiple of them."""
    g = 1
    while g < 128 and bits % (2 * g) == 0:
        g *= 2
    return g


def _strided_span(host: HostTensor) -> tuple[np.ndarray, int] | None:
    """For a strided (not C-ordered) view: its codes over the whole memory span it covers, one
    dimension, and where its element 0 lies in it. None for packed or C-ordered arrays."""
    codes = host.codes
    if isinstance(host.source, PackedArray) or codes.ndim == 0 or codes.size == 0:
        return None
    if tuple(host.strides) == c_strides(host.shape) or any(
        s % codes.itemsize for s in codes.strides
    ):
        return None
    shape, strides = codes.shape, host.strides
    low = sum((n - 1) * s for n, s in zip(shape, strides) if s < 0)  # elements, <= 0
    high = sum((n - 1) * s for n, s in zip(shape, strides) if s > 0)
    lowest = codes[tuple(slice(n - 1, n) if s < 0 else slice(0, 1) for n, s in zip(shape, strides))]
    span = np.lib.stride_tricks.as_strided(lowest, (high - low + 1,), (codes.itemsize,),
                                           writeable=False)  # fmt: skip
    return span, -low


# ----- launching --------------------------------------------------------------------------------
def launch(
    program: Program,
    kernel: ThreadKernel,
    grid: tuple[int, int, int],
    tensors: dict[str, Any],  # kernel argument name -> tensor (see the module docstring)
    scalars: dict[str, tuple[DataType, Any]],  # kernel argument name -> (dtype, value)
) -> None:
    """Run ``program`` (built from ``kernel``'s source) over ``grid`` blocks and wait for it."""
    q = queue(program.device)
    args = {name: tensor_arg(value, name) for name, value in tensors.items()}
    staged = {n: _Staged(a, q) for n, a in args.items() if isinstance(a, HostTensor)}
    status = _status_word(q) if program.traps else None
    try:
        values = [_param_value(p, args, staged, scalars) for p in kernel.params]
        if status is not None:
            values.append(status)
        gx, gy, gz = (int(g) for g in grid)
        threads = kernel.num_threads
        q.submit(program.kernel, values, [gz, gy, gx * threads], [1, 1, threads]).wait()
    finally:
        for buffer in staged.values():
            buffer.finish()
    if status is not None:
        _raise_on_trap(program, status)


def _status_word(q: Any) -> Any:
    word = dpmem.MemoryUSMDevice(4, queue=q)
    word.copy_from_host(np.zeros(4, np.uint8))
    return word


def _raise_on_trap(program: Program, status: Any) -> None:
    raw = np.empty(4, np.uint8)
    status.copy_to_host(raw)
    if raw.view(np.int32)[0]:
        raise LaunchError(
            f"kernel {program.name} stopped with a trap",
            expected="loops with a non-zero step",
            found="a tv.range step of 0 at run time",
            hint="check the step arguments of tv.range; outputs may be partly written",
            code="trap",
        )


def _param_value(
    p: Param, args: dict[str, Any], staged: dict[str, _Staged], scalars: dict[str, Any]
) -> Any:
    if p.kind == "scalar":
        arg = scalar_arg(*scalars[p.arg])
        if arg is None:
            dtype, value = scalars[p.arg]
            raise LaunchTypeError(f"argument '{p.arg}' does not fit {dtype}", found=repr(value))
        return arg
    tensor = staged.get(p.arg) or args[p.arg]
    if p.kind == "tensor":
        return tensor.pointer
    size = (tensor.shape if p.kind == "dim" else tensor.strides)[p.axis]
    return INDEX_CTYPE[p.dtype.bits](size)


__all__ = [
    "BUILD_OPTIONS",
    "Built",
    "Program",
    "UsmTensor",
    "accepts",
    "build",
    "compile",
    "device_filter",
    "device_names",
    "launch",
    "load",
    "queue",
    "run",
    "target",
    "tensor_arg",
    "toolchain",
    "unavailable",
]
