"""Which devices can run kernels here."""

from __future__ import annotations

from tilevm.runtime import registry


def devices() -> list[str]:
    """The devices usable here, e.g. ``['interp', 'cpu', 'cuda:0']``: every registered
    backend's (``cpu:amd``, ``cpu:cuda`` and ``cpu:intel`` emulate those targets on the CPU as
    well)."""
    return registry.devices()


__all__ = ["devices"]
