"""The backend registry: every way of running kernels, found by name.

The interpreter registers itself (``tilevm.interp.backend``); every other backend is a package
``tilevm.backends.<name>`` with a module ``backend`` that defines ``BACKEND`` (a
``tilevm.runtime.backend.Backend``). Adding a backend is adding its folder: nothing here
changes.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Sequence
from typing import Any

from tilevm.errors import DeviceError
from tilevm.runtime.backend import Backend


@functools.cache
def backends() -> tuple[Backend, ...]:
    """Every registered backend, in the order ``tv.devices()`` lists them."""
    import tilevm.backends as package

    found = [importlib.import_module("tilevm.interp.backend").BACKEND]
    for info in pkgutil.iter_modules(package.__path__):
        if not info.ispkg:
            continue
        try:
            module = importlib.import_module(f"{package.__name__}.{info.name}.backend")
        except ModuleNotFoundError as exc:
            if exc.name != f"{package.__name__}.{info.name}.backend":
                raise  # the backend exists but one of its own imports is broken
            continue  # a package of shared code, not a backend
        found.append(module.BACKEND)
    return tuple(sorted(found, key=lambda b: (b.order, b.name)))


def names() -> list[str]:
    return [b.name for b in backends()]


def backend_for(device: str) -> Backend:
    """The backend that answers ``device`` (a device name or a compile target)."""
    if isinstance(device, str):
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
        backend = next(b for b in backends() if b.default)
        return backend, backend.resolve(backend.name)
    if not isinstance(device, str) and isinstance(getattr(device, "type", None), str):
        device = str(device)  # a torch.device: "cuda:0", "cpu"
    backend = backend_for(device)
    return backend, backend.resolve(device)


__all__ = ["backend_for", "backends", "devices", "names", "owner", "resolve"]
