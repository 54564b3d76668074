"""A thin layer on the CUDA driver API (``cuda.bindings.driver``): devices, cubins, launches.

Why the driver API: it loads the cubins NVRTC makes (no PTX, no runtime JIT) and launches them
with raw kernel parameters. Work runs in each device's *primary* context, the one torch uses,
so pointers from torch CUDA tensors are valid in our kernels and ours in torch.

Every ``CUresult`` is checked; a failure raises ``CudaRuntimeError`` naming the call and the
error. Machines with no CUDA driver or no GPU (development and CI machines) get ``NoCudaDevice``,
a clean ``DeviceError``: ``available()`` says so without raising.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
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
_contexts: dict[int, Any] = {}  # device index -> retained primary CUcontext


def _no_device(reason: str) -> NoCudaDevice:
    return NoCudaDevice(f"no CUDA driver/device here: {reason}", hint=_NO_DEVICE_HINT)


def _driver() -> ModuleType:
    """``cuda.bindings.driver``, initialized, with at least one device; else ``NoCudaDevice``."""
    global _init_failure, _initialized
    if _initialized:
        from cuda.bindings import driver

        return driver
    with _lock:
        if _init_failure is None and not _initialized:
            _init_failure = _initialize()
            _initialized = _init_failure is None
    if _init_failure is not None:
        raise _no_device(_init_failure) from None
    from cuda.bindings import driver

    return driver


def _initialize() -> str | None:
    """Run ``cuInit`` and count devices; return why CUDA cannot be used, or None."""
    try:
        from cuda.bindings import driver
    except ImportError:
        return "cuda-python is not installed"
    try:
        (err,) = driver.cuInit(0)
    except (RuntimeError, OSError) as exc:  # libcuda.so cannot be loaded: no driver installed
        return f"the CUDA driver library cannot be loaded ({type(exc).__name__})"
    if err != driver.CUresult.CUDA_SUCCESS:
        return f"cuInit failed with {_error_name(driver, err)}"
    err, count = driver.cuDeviceGetCount()
    if err != driver.CUresult.CUDA_SUCCESS:
        return f"cuDeviceGetCount failed with {_error_name(driver, err)}"
    if count == 0:
        return "the CUDA driver reports 0 devices"
    return None


def _error_name(driver: ModuleType, err: Any) -> str:
    try:
        ok, name = driver.cuGetErrorName(err)
        if ok == driver.CUresult.CUDA_SUCCESS and name:
            return name.decode()
    except Exception:  # the name is only decoration of an error already being reported
        pass
    return str(err)


def _check(result: tuple, call: str, hint: str | None = None) -> tuple:
    """Split a cuda-python ``(CUresult, *values)`` tuple; raise ``CudaRuntimeError`` on failure."""
    from cuda.bindings import driver

    err, *values = result
    if err != driver.CUresult.CUDA_SUCCESS:
        name = _error_name(driver, err)
        description = ""
        try:
            ok, text = driver.cuGetErrorString(err)
            if ok == driver.CUresult.CUDA_SUCCESS and text:
                description = f" ({text.decode()})"
        except Exception:  # as in _error_name
            pass
        raise CudaRuntimeError(
            f"{call} failed: {name}{description}", call=call, error_name=name, hint=hint
        )
    return tuple(values)


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
    driver = _driver()
    (count,) = _check(driver.cuDeviceGetCount(), "cuDeviceGetCount")
    return int(count)


def _device(index: int) -> Any:
    driver = _driver()
    count = device_count()
    if not 0 <= index < count:
        raise NoCudaDevice(
            f"there is no CUDA device {index}",
            expected=f"a device index in 0..{count - 1}",
            found=str(index),
            hint=_NO_DEVICE_HINT,
        )
    (dev,) = _check(driver.cuDeviceGet(index), "cuDeviceGet")
    return dev


def _activate(index: int) -> None:
    """Make device ``index``'s primary context (torch's context) current in this thread."""
    driver = _driver()
    ctx = _contexts.get(index)
    if ctx is None:
        with _lock:
            ctx = _contexts.get(index)
            if ctx is None:
                # Retained for the life of the process, as torch does: never released.
                (ctx,) = _check(
                    driver.cuDevicePrimaryCtxRetain(_device(index)), "cuDevicePrimaryCtxRetain"
                )
                _contexts[index] = ctx
    _check(driver.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")


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
    driver = _driver()
    dev = _device(index)
    attr = driver.CUdevice_attribute

    def get(which: Any) -> int:
        (value,) = _check(driver.cuDeviceGetAttribute(which, dev), "cuDeviceGetAttribute")
        return int(value)

    major = get(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)
    minor = get(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)
    (raw_name,) = _check(driver.cuDeviceGetName(256, dev), "cuDeviceGetName")
    arch = f"sm_{major}{minor}"
    return DeviceInfo(
        index=index,
        name=bytes(raw_name).split(b"\0", 1)[0].decode(errors="replace"),
        arch=arch,
        arch_for_compile=arch + "a" if major >= 9 else arch,
        compute_capability=(major, minor),
        multiprocessors=get(attr.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT),
        max_shared_per_block_optin=get(attr.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN),
        l2_bytes=get(attr.CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE),
    )


class Module:
    """A cubin loaded into a device's primary context; ``function(name)`` finds its kernels.

    It stays loaded until ``unload()`` (callers keep compiled modules for the whole process).
    """

    def __init__(self, cubin: bytes, device: int = 0) -> None:
        driver = _driver()
        _activate(device)
        self.device = device
        self._cubin = bytes(cubin)  # the driver reads the image during the call only
        (self._handle,) = _check(
            driver.cuModuleLoadData(self._cubin),
            "cuModuleLoadData",
            hint=f"compile the cubin for this device: arch={device_info(device).arch_for_compile}",
        )
        self._functions: dict[str, Function] = {}

    def function(self, name: str) -> Function:
        """The kernel ``name`` (its ``extern "C"`` name, or a mangled C++ name)."""
        fn = self._functions.get(name)
        if fn is None:
            driver = _driver()
            (handle,) = _check(
                driver.cuModuleGetFunction(self._handle, name.encode()),
                f"cuModuleGetFunction({name!r})",
                hint='kernels need extern "C" (or pass the mangled name)',
            )
            fn = self._functions[name] = Function(self, name, handle)
        return fn

    def unload(self) -> None:
        """Unload the module; only once no work that uses its kernels is still running."""
        if self._handle is None:
            return
        driver = _driver()
        _activate(self.device)
        _check(driver.cuModuleUnload(self._handle), "cuModuleUnload")
        self._handle = None
        self._functions.clear()


class Function:
    """One kernel of a loaded ``Module``; ``launch`` runs it."""

    def __init__(self, module: Module, name: str, handle: Any) -> None:
        self.module = module  # keeps the module referenced while the function is
        self.name = name
        self._handle = handle
        self._dynamic_shared_limit = _DEFAULT_DYNAMIC_SHARED

    def attribute(self, which: str) -> int:
        """A ``CU_FUNC_ATTRIBUTE_*`` value, e.g. ``attribute("NUM_REGS")``."""
        driver = _driver()
        attr = getattr(driver.CUfunction_attribute, f"CU_FUNC_ATTRIBUTE_{which}")
        (value,) = _check(driver.cuFuncGetAttribute(attr, self._handle), "cuFuncGetAttribute")
        return int(value)

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
        driver = _driver()
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
            self._allow_dynamic_shared(driver, shared_bytes)
        # kernelParams is a void** array of pointers to each argument's bytes; `args` and
        # `params` stay referenced until cuLaunchKernel has copied the values.
        params = (ctypes.c_void_p * max(len(args), 1))(*(ctypes.addressof(a) for a in args))
        _check(
            driver.cuLaunchKernel(
                self._handle,
                *grid3,
                *block3,
                shared_bytes,
                stream,
                ctypes.addressof(params) if args else 0,
                0,  # no `extra` launch options (cuda-python wants 0, not None)
            ),
            f"cuLaunchKernel({self.name})",
        )

    def _allow_dynamic_shared(self, driver: ModuleType, shared_bytes: int) -> None:
        """Opt in to more than 48 KiB of dynamic shared memory (once per size increase)."""
        static = self.attribute("SHARED_SIZE_BYTES")
        limit = device_info(self.module.device).max_shared_per_block_optin
        if static + shared_bytes > limit:
            raise LaunchError(
                f"{self.name} needs {static + shared_bytes} bytes of shared memory per block",
                expected=f"at most {limit} bytes ({static} static + dynamic) on this device",
                found=f"{shared_bytes} bytes of dynamic shared memory",
            )
        attr = driver.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
        _check(
            driver.cuFuncSetAttribute(self._handle, attr, shared_bytes),
            "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)",
        )
        self._dynamic_shared_limit = shared_bytes


_raw_launch: Any = None


def raw_launcher(function: Function) -> Callable[..., None]:
    """``launch(grid, block, shared_bytes, stream, pointers)`` for ``function``: libcuda's
    ``cuLaunchKernel`` called directly, for the repeat-launch path (microseconds less than
    through cuda-python). It holds the GIL during the call (``PyDLL``), so a parameter buffer
    the caller reuses cannot change under the driver; ``pointers`` is a ctypes array of
    pointers to the parameters. The arguments are converted here, not by ctypes' argtypes
    (which cost more than the call): the handle and stream as pointers, the rest as C ints.
    Errors raise as ``launch`` does."""
    global _raw_launch
    if _raw_launch is None:
        fn = ctypes.PyDLL(_libcuda_name()).cuLaunchKernel
        fn.restype = ctypes.c_int
        _raw_launch = fn
    call, handle, name = _raw_launch, ctypes.c_void_p(int(function._handle)), function.name
    pointer = ctypes.c_void_p

    def launch(grid, block, shared_bytes: int, stream: int, pointers: Any) -> None:
        err = call(handle, grid[0], grid[1], grid[2], block[0], block[1], block[2],
                   shared_bytes, pointer(stream), pointers, None)  # fmt: skip
        if err:
            _check((_driver().CUresult(err),), f"cuLaunchKernel({name})")

    return launch


def _libcuda_name() -> str:
    """The driver library the process already loaded (cuda-python's), else the usual name."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.rsplit(" ", 1)[-1].strip()
                if "/libcuda.so" in path:
                    return path
    except OSError:  # not Linux
        pass
    return "libcuda.so.1"


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
    driver = _driver()
    _activate(device)
    _check(driver.cuCtxSynchronize(), "cuCtxSynchronize")


__all__ = [
    "CudaRuntimeError",
    "DeviceInfo",
    "Function",
    "Module",
    "NoCudaDevice",
    "available",
    "device_count",
    "device_info",
    "synchronize",
]
