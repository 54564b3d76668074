"""The HIP runtime through hip-python: devices, code objects, launches.

hip-python imports without ROCm; its first call raises ``RuntimeError`` when it cannot load
``libamdhip64``. ``unavailable()`` turns that into "no HIP runtime: ...", and a runtime that
finds no device into "no AMD GPU". Everything else raises ``HipError`` (a ``DeviceError``)
naming the call and HIP's error.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from tilevm.backends.hip import libs
from tilevm.errors import DeviceError

INSTALL_HINT = "pip install hip-python, and ROCm (or apt-get install libamdhip64-5)"
DEFAULT_SHARED_LIMIT = 48 * 1024  # dynamic LDS a launch gets without raising the limit


class HipError(DeviceError):
    """A HIP runtime call failed."""

    code = "hip-runtime"


@functools.cache
def _load() -> tuple[ModuleType | None, str | None]:
    """``(hip module, None)`` once the runtime answers with a device, else ``(None, reason)``."""
    try:
        from hip import hip
    except ImportError:
        return None, "no HIP runtime: hip-python is not installed (pip install hip-python)"
    reason = libs.prepare()
    if reason is not None:
        return None, reason
    try:
        (err,) = hip.hipInit(0)
        err_count, count = hip.hipGetDeviceCount()
    except (RuntimeError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, f"no HIP runtime: libamdhip64.so cannot be loaded ({first})"
    if _failed(err_count) or count == 0:
        found = _name(err_count) if _failed(err_count) else "0 devices"
        return None, f"no AMD GPU: the HIP runtime finds none ({found})"
    if _failed(err):
        return None, f"no HIP runtime: hipInit failed ({_name(err)})"
    return hip, None


def _failed(err: Any) -> bool:
    return int(err) != 0


def _name(err: Any) -> str:
    return getattr(err, "name", str(err))


def unavailable() -> str | None:
    """None when the HIP runtime is loaded and sees an AMD GPU, else a one-line reason."""
    return _load()[1]


def _hip() -> ModuleType:
    module, reason = _load()
    if module is None:
        raise DeviceError(reason, hint=INSTALL_HINT, code="no-hip-device")
    return module


def _check(result: Any, call: str) -> Any:
    """The values after the error code of a hip-python result tuple; raises on an error."""
    err, *rest = result if isinstance(result, tuple) else (result,)
    if _failed(err):
        raise HipError(f"{call} failed", expected="hipSuccess", found=_name(err))
    return rest[0] if len(rest) == 1 else tuple(rest)


def device_count() -> int:
    """AMD GPUs the HIP runtime sees (0 when there is no runtime)."""
    if unavailable() is not None:
        return 0
    return int(_check(_hip().hipGetDeviceCount(), "hipGetDeviceCount"))


@functools.cache
def device_arch(index: int = 0) -> str:
    """The device's gfx arch without feature suffixes (``gfx90a:sramecc+:xnack-`` -> ``gfx90a``)."""
    props = _check(_hip().hipGetDeviceProperties(index), "hipGetDeviceProperties")
    name = props.gcnArchName
    if isinstance(name, (bytes, bytearray)):
        name = bytes(name).split(b"\0")[0].decode()
    return str(name).split(":")[0]


def set_device(index: int) -> None:
    _check(_hip().hipSetDevice(index), "hipSetDevice")


class Function:
    """One kernel of a loaded module."""

    def __init__(self, module: Module, handle: Any, name: str) -> None:
        self.module = module  # keeps the module loaded as long as the function lives
        self.handle = handle
        self.name = name
        self._shared_limit = DEFAULT_SHARED_LIMIT

    def _raise_shared_limit(self, shared_bytes: int) -> None:
        hip = _hip()
        attr = hip.hipFuncAttribute.hipFuncAttributeMaxDynamicSharedMemorySize
        _check(hip.hipFuncSetAttribute(self.handle, attr, shared_bytes), "hipFuncSetAttribute")
        self._shared_limit = shared_bytes

    def launch(
        self,
        grid: Sequence[int],
        block: Sequence[int],
        shared_bytes: int,
        args: Sequence[ctypes._SimpleCData],
        stream: Any = None,
    ) -> None:
        """``hipModuleLaunchKernel`` with ``args`` (ctypes values: ``c_void_p`` for device
        pointers, ``c_int``/``c_float``... for scalars) packed as the kernel's argument buffer."""
        gx, gy, gz = (*grid, 1, 1)[:3]
        bx, by, bz = (*block, 1, 1)[:3]
        if shared_bytes > self._shared_limit:
            self._raise_shared_limit(shared_bytes)
        set_device(self.module.index)
        result = _hip().hipModuleLaunchKernel(
            self.handle, gx, gy, gz, bx, by, bz, shared_bytes, stream, None, tuple(args)
        )
        _check(result, f"hipModuleLaunchKernel({self.name})")


class Module:
    """A code object loaded on device ``index``."""

    def __init__(self, code_object: bytes, index: int = 0) -> None:
        self.index = index
        self._image = bytes(code_object)  # the runtime may read it lazily: keep it alive
        self._functions: dict[str, Function] = {}
        set_device(index)
        self.handle = _check(_hip().hipModuleLoadData(self._image), "hipModuleLoadData")

    def function(self, name: str) -> Function:
        if name not in self._functions:
            handle = _check(_hip().hipModuleGetFunction(self.handle, name.encode()),
                            f"hipModuleGetFunction({name})")  # fmt: skip
            self._functions[name] = Function(self, handle, name)
        return self._functions[name]

    def __del__(self) -> None:
        handle = getattr(self, "handle", None)
        if handle is not None and _load()[0] is not None:
            # at interpreter shutdown the runtime may be gone already
            with contextlib.suppress(Exception):
                _hip().hipModuleUnload(handle)
