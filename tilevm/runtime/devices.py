"""Which devices can run kernels here."""

from __future__ import annotations

from typing import Any

from tilevm.runtime import registry
from tilevm.runtime.backend import DeviceProperties


def devices() -> list[str]:
    """The devices usable here, e.g. ``['interp', 'cpu', 'cpu:amd', 'cpu:cuda', 'cpu:intel',
    'cuda:0']``: every registered backend's (``cpu:<vendor>`` runs that GPU's lowering on the
    CPU)."""
    return registry.devices()


def device_properties(where: Any) -> DeviceProperties:
    """The properties of a device (a name such as ``"cuda:0"``) or of the device a tensor lives
    on (host arrays: the CPU): compute units, shared memory per block, L2 size."""
    if isinstance(where, str):
        backend, device = registry.resolve(where)
    else:
        backend, device = registry.resolve(None, [where])
    return backend.properties(device)


__all__ = ["device_properties", "devices"]
