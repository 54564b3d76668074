"""Which devices can run kernels here, and which one a launch uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tilevm.backends.cpu.target import target_for
from tilevm.backends.cuda import driver
from tilevm.errors import DeviceError
from tilevm.runtime.device_arrays import is_device_tensor


def devices() -> list[str]:
    """The devices usable here, e.g. ``['interp', 'cpu', 'cuda:0']`` (``cpu:amd``,
    ``cpu:cuda`` and ``cpu:intel`` emulate those targets on the CPU as well)."""
    found = ["interp", "cpu"]
    if driver.available():
        found += [f"cuda:{i}" for i in range(driver.device_count())]
    return found


def resolve(device: str | None, args: Sequence[Any] = ()) -> str:
    """The device a launch runs on: the one asked for, else the GPU its tensors live on, else
    the CPU."""
    if device is None:
        on_gpu = [a for a in args if is_device_tensor(a)]
        if not on_gpu:
            return "cpu"
        device = "cuda"
    if device == "interp":
        return device
    if device == "cpu" or device.startswith("cpu:"):
        target_for(device)  # an unknown emulated target is reported here
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
