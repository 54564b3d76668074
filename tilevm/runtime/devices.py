"""Which devices can run kernels here, and which one a launch uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tilevm.backends.cuda import driver
from tilevm.errors import DeviceError
from tilevm.runtime.device_arrays import is_device_tensor


def devices() -> list[str]:
    """The devices usable here, e.g. ``['interp', 'cuda:0']``."""
    found = ["interp"]
    if driver.available():
        found += [f"cuda:{i}" for i in range(driver.device_count())]
    return found


def resolve(device: str | None, args: Sequence[Any] = ()) -> str:
    """The device a launch runs on: the one asked for, else the GPU its tensors live on, else
    the interpreter."""
    if device is None:
        on_gpu = [a for a in args if is_device_tensor(a)]
        if not on_gpu:
            return "interp"
        device = "cuda"
    if device == "interp":
        return device
    name, _, index = device.partition(":")
    if name == "cuda" and (index == "" or index.isdigit()):
        if not driver.available():
            raise driver.NoCudaDevice(
                f"device {device!r} is not available: no CUDA driver or GPU here",
                expected=" | ".join(repr(d) for d in devices()),
                found=repr(device),
                hint="tv.devices() lists what this machine can run; device='interp' runs every "
                "kernel on any machine",
            )
        return f"cuda:{index or 0}"
    raise DeviceError(
        f"device {device!r} is not available here",
        expected=" | ".join(repr(d) for d in devices()),
        found=repr(device),
        hint="tv.devices() lists what this machine can run; 'interp' always works",
        code="no-device",
    )


def cuda_index(device: str) -> int:
    return int(device.partition(":")[2] or 0)
