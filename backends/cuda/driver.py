"""A thin layer on the CUDA driver API (libcuda through ctypes): devices, cubins, launches.

Why the driver API: it loads the cubins NVRTC makes (no PTX, no runtime JIT) and launches them
with raw kernel parameters. Work runs in each device's *primary* context, the one torch uses,
so pointers from torch CUDA tensors are valid in our kernels and ours in torch.

Every ``CUresult`` is checked; a failure raises ``CudaRuntimeError`` naming the call and the
error. Machines with no CUDA driver or no GPU (development and CI machines) get ``NoCudaDevice``,
a clean ``DeviceError``: ``available()`` says so without raising.

Why ctypes and not cuda-python's bindings: importing those takes 25-45 ms, most of a cached
kernel's start in a new process; launching needs only a few entry points. (NVRTC, which only
compiling needs, still comes from cuda-python.)
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tilevm.errors import DeviceError, LaunchError, LaunchTypeError, TilevmError

_NO_DEVICE_HINT = (
    "device='interp' works everywhere; for CUDA use a machine with an NVIDIA GPU and its driver, "
    "and pip install tilevm[cuda]"
)
# Launches may use this much dynamic shared memory without opting in (CUDA's fixed limit).
_DEFAULT_DYNAMIC_SHARED = 48 * 1024


class NoCudaDevice(DeviceError):
    """No CUDA driver or no CUDA device here, or cuda-python is not installed."""

    code = "no-cuda-device"


class CudaRuntimeError(TilevmError, RuntimeError):
    """A CUDA driver call failed: ``call`` is its name, ``error_name`` the ``CUresult`` name."""

    code = "cuda-runtime"

    def __init__(self, message: str, *, call: str = "", error_name: str = "", **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.call = call
        self.error_name = error_name


_lock = threading.Lock()
_init_failure: str | None = None  # why the driver cannot be used here, once that is known
_initialized = False
_contexts: dict[int, ctypes.c_void_p] = {}  # device index -> retained primary CUcontext
_library: ctypes.CDLL | None = None

_int_p, _handle_p = ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_void_p)
_text_p = ctypes.POINTER(ctypes.c_char_p)
# The driver entry points used, with their C argument types (CUdevice is an int, handles are
# pointers, CUdeviceptr a 64-bit integer). Versioned names are the ones the headers map to.
_SIGNATURES: dict[str, tuple[Any, ...]] = {
    "cuInit": (ctypes.c_uint,),
    "cuDriverGetVersion": (_int_p,),
    "cuDeviceGetCount": (_int_p,),
    "cuDeviceGet": (_int_p, ctypes.c_int),
    "cuDeviceGetAttribute": (_int_p, ctypes.c_int, ctypes.c_int),
    "cuDeviceGetName": (ctypes.c_char_p, ctypes.c_int, ctypes.c_int),
    "cuDevicePrimaryCtxRetain": (_handle_p, ctypes.c_int),
    "cuCtxSetCurrent": (ctypes.c_void_p,),
    "cuCtxSynchronize": (),
    "cuModuleLoadData": (_handle_p, ctypes.c_char_p),
    "cuModuleGetFunction": (_handle_p, ctypes.c_void_p, ctypes.c_char_p),
    "cuModuleUnload": (ctypes.c_void_p,),
    "cuFuncGetAttribute": (_int_p, ctypes.c_int, ctypes.c_void_p),
    "cuFuncSetAttribute": (ctypes.c_void_p, ctypes.c_int, ctypes.c_int),
    "cuLaunchKernel": (ctypes.c_void_p, *[ctypes.c_uint] * 7, ctypes.c_void_p, ctypes.c_void_p,
                       ctypes.c_void_p),  # fmt: skip
    "cuMemAlloc_v2": (ctypes.POINTER(ctypes.c_uint64), ctypes.c_size_t),
    "cuMemFree_v2": (ctypes.c_uint64,),
    "cuMemcpyHtoD_v2": (ctypes.c_uint64, ctypes.c_void_p, ctypes.c_size_t),
    "cuMemcpyDtoH_v2": (ctypes.c_void_p, ctypes.c_uint64, ctypes.c_size_t),
    "cuGetErrorName": (ctypes.c_int, _text_p),
    "cuGetErrorString": (ctypes.c_int, _text_p),
}
# CUdevice_attribute and CUfunction_attribute values (cuda.h)
_DEVICE_ATTRIBUTES = {"MULTIPROCESSOR_COUNT": 16, "L2_CACHE_SIZE": 38,
                      "COMPUTE_CAPABILITY_MAJOR": 75, "COMPUTE_CAPABILITY_MINOR": 76,
                      "MAX_SHARED_MEMORY_PER_BLOCK_OPTIN": 97}  # fmt: skip
_FUNCTION_ATTRIBUTES = {"MAX_THREADS_PER_BLOCK": 0, "SHARED_SIZE_BYTES": 1,
                        "CONST_SIZE_BYTES": 2, "LOCAL_SIZE_BYTES": 3, "NUM_REGS": 4,
                        "PTX_VERSION": 5, "BINARY_VERSION": 6,
                        "MAX_DYNAMIC_SHARED_SIZE_BYTES": 8}  # fmt: skip
_LIBCUDA = "libcuda.so.1"


def _no_device(reason: str) -> NoCudaDevice:
    return NoCudaDevice(f"no CUDA driver/device here: {reason}", hint=_NO_DEVICE_HINT)


def _load() -> ctypes.CDLL:
    """libcuda with the argument types of the entry points used; ``OSError`` without one."""
    global _library
    if _library is None:
        lib = ctypes.CDLL(_LIBCUDA)
        for name, argtypes in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = list(argtypes), ctypes.c_int
        _library = lib
    return _library


def _call(name: str, *args: Any, hint: str | None = None, call: str | None = None) -> None:
    """Call a driver entry point; raise ``CudaRuntimeError`` naming it when it fails."""
    err = getattr(_load(), name)(*args)
    if err:
        _raise(err, call or name.removesuffix("_v2"), hint)


def _raise(err: int, call: str, hint: str | None = None) -> None:
    name, description = _error_text(err)
    raise CudaRuntimeError(
        f"{call} failed: {name}{f' ({description})' if description else ''}",
        call=call, error_name=name, hint=hint,
    )  # fmt: skip


def _error_text(err: int) -> tuple[str, str]:
    """A ``CUresult``'s name and description (the number where the driver has no name)."""
    lib, texts = _load(), []
    for getter in (lib.cuGetErrorName, lib.cuGetErrorString):
        text = ctypes.c_char_p()
        ok = getter(err, ctypes.byref(text)) == 0 and text.value
        texts.append(text.value.decode(errors="replace") if ok else "")
    return texts[0] or f"CUresult {err}", texts[1]


def _driver() -> ctypes.CDLL:
    """libcuda, initialized, with at least one device; else ``NoCudaDevice``."""
    global _init_failure, _initialized
    if _initialized:
        return _library  # type: ignore[return-value]
    with _lock:
        if _init_failure is None and not _initialized:
            _init_failure = _initialize()
            _initialized = _init_failure is None
    if _init_failure is not None:
        raise _no_device(_init_failure) from None
    return _library  # type: ignore[return-value]


def _initialize() -> str | None:
    """Run ``cuInit`` and count devices; return why CUDA cannot be used, or None."""
    try:
        lib = _load()
    except (OSError, AttributeError) as exc:  # no driver installed, or one too old
        return f"the CUDA driver library cannot be loaded ({type(exc).__name__})"
    err = lib.cuInit(0)
    if err:
        return f"cuInit failed with {_error_text(err)[0]}"
    count = ctypes.c_int()
    err = lib.cuDeviceGetCount(ctypes.byref(count))
    if err:
        return f"cuDeviceGetCount failed with {_error_text(err)[0]}"
    if count.value == 0:
        return "the CUDA driver reports 0 devices"
    return None


def unavailable() -> str | None:
    """None when CUDA kernels can run here; otherwise why not. Never raises."""
    try:
        _driver()
    except Exception:
        return _init_failure or "the CUDA driver cannot be used"
    return None


def available() -> bool:
    """Whether CUDA kernels can run here (a driver and at least one device). Never raises."""
    try:
        _driver()
    except Exception:
        return False
    return True


def device_count() -> int:
    """The number of CUDA devices; ``NoCudaDevice`` when there is no driver or no device."""
    _driver()
    count = ctypes.c_int()
    _call("cuDeviceGetCount", ctypes.byref(count))
    return count.value


def driver_version() -> int:
    """The CUDA version the driver supports, as 1000 * major + 10 * minor (13000 for 13.0)."""
    _driver()
    found = ctypes.c_int()
    _call("cuDriverGetVersion", ctypes.byref(found))
    return found.value


def _device(index: int) -> int:
    count = device_count()
    if not 0 <= index < count:
        raise NoCudaDevice(
            f"there is no CUDA device {index}",
            expected=f"a device index in 0..{count - 1}",
            found=str(index),
            hint=_NO_DEVICE_HINT,
        )
    dev = ctypes.c_int()
    _call("cuDeviceGet", ctypes.byref(dev), index)
    return dev.value


def _activate(index: int) -> None:
    """Make device ``index``'s primary context (torch's context) current in this thread."""
    _driver()
    ctx = _contexts.get(index)
    if ctx is None:
        with _lock:
            ctx = _contexts.get(index)
            if ctx is None:
                # Retained for the life of the process, as torch does: never released.
                ctx = ctypes.c_void_p()
                _call("cuDevicePrimaryCtxRetain", ctypes.byref(ctx), _device(index))
                _contexts[index] = ctx
    _call("cuCtxSetCurrent", ctx)


@dataclass(frozen=True)
class DeviceInfo:
    """What the compiler needs to know about one CUDA device."""

    index: int
    name: str
    arch: str  # the compute capability, "sm_90" for 9.0
    # What to compile for: "sm_90a" on 9.0 (wgmma, setmaxnreg, TMA multicast need the "a"
    # features) and likewise on later majors; a cubin is made for exactly this device anyway.
    arch_for_compile: str
    compute_capability: tuple[int, int]
    multiprocessors: int
    max_shared_per_block_optin: int  # bytes of shared memory a block may opt in to
    l2_bytes: int


def device_info(index: int = 0) -> DeviceInfo:
    """The properties of CUDA device ``index`` (cached); ``NoCudaDevice`` when there is none."""
    return _device_info(int(index))  # one cache entry whether the index is given or not


@functools.cache
def _device_info(index: int) -> DeviceInfo:
    dev = _device(index)

    def get(which: str) -> int:
        value = ctypes.c_int()
        _call("cuDeviceGetAttribute", ctypes.byref(value), _DEVICE_ATTRIBUTES[which], dev)
        return value.value

    major = get("COMPUTE_CAPABILITY_MAJOR")
    minor = get("COMPUTE_CAPABILITY_MINOR")
    raw_name = ctypes.create_string_buffer(256)
    _call("cuDeviceGetName", raw_name, 256, dev)
    arch = f"sm_{major}{minor}"
    return DeviceInfo(
        index=index,
        name=raw_name.value.decode(errors="replace"),
        arch=arch,
        arch_for_compile=arch + "a" if major >= 9 else arch,
        compute_capability=(major, minor),
        multiprocessors=get("MULTIPROCESSOR_COUNT"),
        max_shared_per_block_optin=get("MAX_SHARED_MEMORY_PER_BLOCK_OPTIN"),
        l2_bytes=get("L2_CACHE_SIZE"),
    )


class Module:
    """A cubin loaded into a device's primary context; ``function(name)`` finds its kernels.

    It stays loaded until ``unload()`` (callers keep compiled modules for the whole process).
    """

    def __init__(self, cubin: bytes, device: int = 0) -> None:
        _activate(device)
        self.device = device
        self._handle: ctypes.c_void_p | None = ctypes.c_void_p()
        _call(
            "cuModuleLoadData", ctypes.byref(self._handle), bytes(cubin),
            hint=f"compile the cubin for this device: arch={device_info(device).arch_for_compile}",
        )  # fmt: skip
        self._functions: dict[str, Function] = {}

    def function(self, name: str) -> Function:
        """The kernel ``name`` (its ``extern "C"`` name, or a mangled C++ name)."""
        fn = self._functions.get(name)
        if fn is None:
            handle = ctypes.c_void_p()
            _call(
                "cuModuleGetFunction", ctypes.byref(handle), self._handle, name.encode(),
                call=f"cuModuleGetFunction({name!r})",
                hint='kernels need extern "C" (or pass the mangled name)',
            )  # fmt: skip
            fn = self._functions[name] = Function(self, name, handle.value)
        return fn

    def unload(self) -> None:
        """Unload the module; only once no work that uses its kernels is still running."""
        if self._handle is None:
            return
        _activate(self.device)
        _call("cuModuleUnload", self._handle)
        self._handle = None
        self._functions.clear()


class Function:
    """One kernel of a loaded ``Module``; ``launch`` runs it."""

    def __init__(self, module: Module, name: str, handle: int) -> None:
        self.module = module  # keeps the module referenced while the function is
        self.name = name
        self._handle = handle  # the CUfunction's address
        self._dynamic_shared_limit = _DEFAULT_DYNAMIC_SHARED

    def attribute(self, which: str) -> int:
        """A ``CU_FUNC_ATTRIBUTE_*`` value, e.g. ``attribute("NUM_REGS")``."""
        value = ctypes.c_int()
        _call("cuFuncGetAttribute", ctypes.byref(value), _FUNCTION_ATTRIBUTES[which],
              self._handle)  # fmt: skip
        return value.value

    def launch(
        self,
        grid: tuple[int, int, int],
        block: tuple[int, int, int],
        shared_bytes: int,
        args: Sequence[Any],
        stream: int = 0,
    ) -> None:
        """Launch on ``stream`` (0: the legacy default stream, as torch's default stream).

        ``args`` are ctypes values in the kernel's parameter order: ``ctypes.c_void_p(ptr)``
        for pointers, ``ctypes.c_int32(n)``, ``ctypes.c_float(x)``, or a ``ctypes.Structure``
        passed by value. The launch is asynchronous: errors in the kernel surface later, e.g.
        in ``synchronize()``.
        """
        _driver()
        grid3 = _dims("grid", grid)
        block3 = _dims("block", block)
        for i, arg in enumerate(args):
            if not isinstance(arg, (ctypes._SimpleCData, ctypes.Structure)):
                raise LaunchTypeError(
                    f"kernel argument {i} of {self.name} is not a ctypes value",
                    expected="a ctypes scalar (c_void_p, c_int32, c_float, ...) or Structure",
                    found=type(arg).__name__,
                    hint="wrap it, e.g. ctypes.c_int32(n) or ctypes.c_void_p(tensor.data_ptr())",
                )
        _activate(self.module.device)
        if shared_bytes > self._dynamic_shared_limit:
            self._allow_dynamic_shared(shared_bytes)
        # kernelParams is a void** array of pointers to each argument's bytes; `args` and
        # `params` stay referenced until cuLaunchKernel has copied the values.
        params = (ctypes.c_void_p * max(len(args), 1))(*(ctypes.addressof(a) for a in args))
        _call(
            "cuLaunchKernel", self._handle, *grid3, *block3, shared_bytes, stream or None,
            params if args else None, None, call=f"cuLaunchKernel({self.name})",
        )  # fmt: skip

    def _allow_dynamic_shared(self, shared_bytes: int) -> None:
        """Opt in to more than 48 KiB of dynamic shared memory (once per size increase)."""
        static = self.attribute("SHARED_SIZE_BYTES")
        limit = device_info(self.module.device).max_shared_per_block_optin
        if static + shared_bytes > limit:
            raise LaunchError(
                f"{self.name} needs {static + shared_bytes} bytes of shared memory per block",
                expected=f"at most {limit} bytes ({static} static + dynamic) on this device",
                found=f"{shared_bytes} bytes of dynamic shared memory",
            )
        _call("cuFuncSetAttribute", self._handle,
              _FUNCTION_ATTRIBUTES["MAX_DYNAMIC_SHARED_SIZE_BYTES"], shared_bytes,
              call="cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)")  # fmt: skip
        self._dynamic_shared_limit = shared_bytes


class DeviceBuffer:
    """Device memory through the driver, for callers without torch (tests, tools): ``write``
    copies a host array in, ``read`` one out, ``free`` releases it."""

    def __init__(self, nbytes: int, device: int = 0) -> None:
        _activate(device)
        address = ctypes.c_uint64()
        _call("cuMemAlloc_v2", ctypes.byref(address), max(nbytes, 1))
        self.address, self.nbytes = address.value, nbytes

    def write(self, data: Any) -> None:
        """Copy a C-contiguous numpy array's bytes (at most ``nbytes``) to the buffer."""
        _call("cuMemcpyHtoD_v2", self.address, data.ctypes.data, min(data.nbytes, self.nbytes))

    def read_into(self, out: Any) -> Any:
        """Copy the buffer's first ``out.nbytes`` bytes into a C-contiguous numpy array."""
        _call("cuMemcpyDtoH_v2", out.ctypes.data, self.address, min(out.nbytes, self.nbytes))
        return out

    def free(self) -> None:
        if self.address:
            _call("cuMemFree_v2", self.address)
            self.address = 0


_raw_launch: Any = None
_MISSING = object()


def raw_launcher(function: Function) -> Callable[..., None]:
    """``launch(grid, block, shared_bytes, stream, pointers)`` for ``function``: libcuda's
    ``cuLaunchKernel`` called without argument conversion by ctypes, for the repeat-launch
    path. It holds the GIL during the call (``PyDLL``), so a parameter buffer the caller
    reuses cannot change under the driver; ``pointers`` is a ctypes array of pointers to the
    parameters. The arguments are converted here, not by ctypes' argtypes (which cost more
    than the call): the handle and stream as pointers, the rest as C ints. Errors raise as
    ``launch`` does."""
    global _raw_launch
    if _raw_launch is None:
        _load()  # the same library, opened once more for a GIL-holding entry point
        fn = ctypes.PyDLL(_LIBCUDA).cuLaunchKernel
        fn.restype = ctypes.c_int
        _raw_launch = fn
    call, handle, name = _raw_launch, ctypes.c_void_p(function._handle), function.name
    streams = {0: None}  # raw handles -> their C pointers, made once (a launch uses a few)

    def launch(grid, block, shared_bytes: int, stream: int, pointers: Any) -> None:
        pointer = streams.get(stream, _MISSING)
        if pointer is _MISSING:
            if len(streams) > 64:  # a program that makes ever new streams
                streams.clear()
            pointer = streams[stream] = ctypes.c_void_p(stream)
        err = call(handle, grid[0], grid[1], grid[2], block[0], block[1], block[2],
                   shared_bytes, pointer, pointers, None)  # fmt: skip
        if err:
            _raise(err, f"cuLaunchKernel({name})")

    return launch


def _dims(what: str, dims: Sequence[int]) -> tuple[int, int, int]:
    values = tuple(int(d) for d in dims)
    if len(values) != 3 or any(d < 1 for d in values):
        raise LaunchError(
            f"the launch {what} must be three positive sizes",
            expected="(x, y, z), each >= 1",
            found=repr(tuple(dims)),
        )
    return values  # type: ignore[return-value]


def synchronize(device: int = 0) -> None:
    """Wait for all work on ``device``; errors of earlier asynchronous launches surface here."""
    _activate(device)
    _call("cuCtxSynchronize")


__all__ = [
    "CudaRuntimeError",
    "DeviceInfo",
    "DeviceBuffer",
    "Function",
    "Module",
    "NoCudaDevice",
    "available",
    "device_count",
    "device_info",
    "driver_version",
    "synchronize",
]
