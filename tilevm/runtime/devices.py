"""Which devices can run kernels here."""

from __future__ import annotations

from tilevm.errors import DeviceError

# Executors that exist in this version; GPU backends and the compiled CPU backend add theirs.
_AVAILABLE = ("interp",)


def devices() -> list[str]:
    """The devices usable here, e.g. ``['interp']``."""
    return list(_AVAILABLE)


def resolve(device: str | None) -> str:
    if device is None:
        return "interp"
    if device not in _AVAILABLE:
        raise DeviceError(
            f"device {device!r} is not available here",
            expected=" | ".join(repr(d) for d in _AVAILABLE),
            found=repr(device),
            hint="tv.devices() lists what this machine can run; 'interp' always works",
            code="no-device",
        )
    return device
