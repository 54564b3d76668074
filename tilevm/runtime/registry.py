"""The backend registry: every way of running kernels, found by name.

The interpreter registers itself (``tilevm.interp.backend``); every other backend is a package
``tilevm.backends.<name>`` with a module ``backend`` that defines ``BACKEND`` (a
``tilevm.runtime.backend.Backend`` whose ``name`` is the package's). Adding a backend is adding
its folder: nothing here changes.

A launch imports only the backend it runs on: a device name's backend is found by its package
name, and launches on host memory go to the backend ``tilevm.backends.HOST`` names. Backends
import vendor runtimes and compilers, which takes time a cached kernel should not pay.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Sequence
from typing import Any

import numpy as np

import tilevm.backends as package
from tilevm.dtypes import DataType
from tilevm.errors import DeviceError
from tilevm.runtime.arrays import is_host_tensor
from tilevm.runtime.backend import Backend

BUILT_IN = ("tilevm.interp.backend",)  # backend modules outside the backends package
# Launch arguments no backend can own: scalars and compile-time values
_NOT_TENSORS = (bool, int, float, complex, str, bytes, np.generic, type(None), tuple, list, dict,
                DataType)  # fmt: skip


@functools.cache
def backends() -> tuple[Backend, ...]:
    """Every registered backend, in the order ``tv.devices()`` lists them."""
    found = [_module(name) for name in (*BUILT_IN, *map(_package_module, _packages()))]
    found = [module.BACKEND for module in found if module is not None]
    return tuple(sorted(found, key=lambda b: (b.order, b.name)))


@functools.cache
def _packages() -> tuple[str, ...]:
    return tuple(info.name for info in pkgutil.iter_modules(package.__path__) if info.ispkg)


def _package_module(name: str) -> str:
    return f"{package.__name__}.{name}.backend"


def _module(name: str) -> Any:
    """The backend module ``name``, or None for a package of shared code (no backend module)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise  # the backend exists but one of its own imports is broken
        return None


@functools.cache
def _named(name: str) -> Backend | None:
    """The backend called ``name``, importing no other (built-in ones aside); None when there
    is none."""
    if name in _packages():
        module = _module(_package_module(name))
        return module.BACKEND if module is not None else None
    for module in map(_module, BUILT_IN):
        if module.BACKEND.name == name:
            return module.BACKEND
    return None


def names() -> list[str]:
    return [b.name for b in backends()]


def backend_for(device: str) -> Backend:
    """The backend that answers ``device`` (a device name or a compile target)."""
    if isinstance(device, str):
        named = _named(device.partition(":")[0])
        if named is not None and named.answers(device):
            return named
        for backend in backends():
            if backend.answers(device):
                return backend
    raise DeviceError(
        f"no backend answers {device!r}",
        expected="a name starting with one of " + ", ".join(repr(n) for n in names()),
        found=repr(device),
        hint="tv.devices() lists what this machine can run; 'interp' always works",
        code="no-device",
    )


def devices() -> list[str]:
    """The devices usable here: the union of every backend's."""
    return [name for backend in backends() for name in backend.devices()]


def owner(value: Any) -> Backend | None:
    """The backend whose devices hold tensor ``value``, if it is not in host memory."""
    if is_host_tensor(value) or isinstance(value, _NOT_TENSORS) or callable(value):
        return None  # (asking each backend would import every one)
    for backend in backends():
        if backend.owns(value):
            return backend
    return None


def resolve(device: str | None, args: Sequence[Any] = ()) -> tuple[Backend, str]:
    """The backend and canonical device a launch runs on: the one asked for, else where its
    tensors live, else the default host backend."""
    if device is None:
        for arg in args:
            backend = owner(arg)
            if backend is not None:
                return backend, backend.resolve(backend.device_of(arg))
        backend = backend_for(package.HOST)
        return backend, backend.resolve(backend.name)
    if not isinstance(device, str) and isinstance(getattr(device, "type", None), str):
        device = str(device)  # a torch.device: "cuda:0", "cpu"
    backend = backend_for(device)
    return backend, backend.resolve(device)


__all__ = ["backend_for", "backends", "devices", "names", "owner", "resolve"]
