"""What a backend is to the runtime: one object per way of running kernels.

The runtime (``tilevm/kernel.py``, ``tilevm/runtime/``) names no backend. Each backend package
(``backends/<name>/backend.py``) defines ``BACKEND``, an instance of a ``Backend`` subclass; the
registry (``tilevm.runtime.registry``) finds them, and a launch resolves its device to exactly one.
A device name is the backend's name, optionally followed by ``:`` and a backend-specific suffix:
``interp``, ``cpu``, ``cpu:amd``, ``cuda``, ``cuda:1``, ``hip:0``, ``sycl:opencl:cpu``. A compile
target is the same, with an arch where a device index would be: ``cuda:sm_90a``,
``hip:gfx942``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tilevm.dtypes import DataType
from tilevm.errors import DeviceError
from tilevm.ir.nodes import KernelIR
from tilevm.lowering.pipeline import Lowered
from tilevm.lowering.target import Target
from tilevm.lowering.thread_ir import ThreadKernel
from tilevm.runtime.autotune_bench import time_host


@dataclass(frozen=True)
class TargetInfo:
    """One compile target as the README's "Targets" table lists it."""

    spec: str  # the device name or compile target that selects it ("hip:gfx942")
    target: Target  # its capabilities, built without looking at this machine
    runs_on: str  # what running its kernels needs ("an AMD MI300 GPU (gfx942) with ROCm")
    compiler: str  # what builds its source ("hipRTC (hip-python), or clang 19 offline")


@dataclass(frozen=True)
class DeviceProperties:
    """What kernels written for a device may ask of it (``tv.device_properties``)."""

    name: str
    multiprocessors: int  # compute units: SMs, CUs, Xe cores; host cores for the CPU
    shared_bytes_per_block: int  # the most shared memory one block may use (opted in)
    l2_bytes: int = 0  # 0 where unknown


class Backend:
    name: str = ""  # the device-name prefix this backend answers
    lowers = True  # False for a backend that runs the VM IR itself (the interpreter)
    order = 100  # where tv.devices() lists its devices (lower first)

    # ----- where it runs ----------------------------------------------------------------------
    def answers(self, device: str) -> bool:
        """Whether ``device`` (a device name or compile target) names this backend."""
        return device == self.name or device.startswith(self.name + ":")

    def unavailable(self) -> str | None:
        """None when kernels can run here; otherwise why not, in one line (e.g. "no HIP runtime:
        libamdhip64.so not found"). Rendering never needs the backend to be available."""
        return None

    def devices(self) -> list[str]:
        """The device names usable here (empty when unavailable)."""
        return []

    def resolve(self, device: str) -> str:
        """The canonical name of a device a launch runs on ("cuda" -> "cuda:0"). Raises a
        DeviceError that says why when it cannot run here."""
        why = self.unavailable()
        if why is not None:
            raise DeviceError(
                f"device {device!r} is not available: {why}",
                expected="one of " + ", ".join(repr(d) for d in self.devices())
                if self.devices()
                else "a device this machine has",  # fmt: skip
                found=repr(device),
                hint="tv.devices() lists what this machine can run; device='interp' runs every "
                "kernel on any machine",
                code="no-device",
            )
        return device

    def warp_size(self, device: str) -> int:
        """Threads per warp of the kernels this device runs."""
        return self.target(device).warp_size

    # ----- compiling --------------------------------------------------------------------------
    def target(self, spec: str) -> Target:
        """The capabilities to lower for: ``spec`` is a compile target ("hip:gfx942"), a device
        ("hip:0": that device's arch) or the bare name (the device's arch when there is one,
        else the backend's default arch)."""
        raise NotImplementedError

    def render(self, lowered: Lowered, target: Target) -> str:
        """The source of a lowered kernel (needs no toolchain)."""
        raise NotImplementedError

    def build(self, ir: KernelIR, lowered: Lowered, target: Target, spec: str) -> Any:
        """Compile ``lowered`` for ``target`` (``spec``: the device or compile target asked
        for), through the disk cache. The result has ``name``, ``arch``, ``source``,
        ``binary``, ``thread``, ``lowered``, ``num_threads``, ``shared_bytes`` and ``cached``."""
        raise NotImplementedError

    # ----- the program cache (``tilevm.runtime.programs``) -------------------------------------
    def toolchain(self, target: Target, spec: str) -> str | None:
        """What decides the binary built for ``target`` besides the generated program: the
        compiler, its version and options, the host or device (part of the program cache's
        keys). A launch of a cached kernel computes it, so it must be cheap. None: this
        backend keeps no programs on disk."""
        return None

    def export(self, built: Any) -> tuple[dict[str, Any], bytes] | None:
        """What launching ``built`` in another process needs besides its thread program's
        signature: facts (JSON values) and the binary. None: not kept."""
        return None

    def restore(
        self,
        name: str,
        thread: ThreadKernel,
        binary: bytes,
        facts: dict[str, Any],
        target: Target,
        spec: str,
    ) -> Any:
        """A launchable build from what ``export`` kept (``thread``: the signature only, no
        body). Raises on anything it cannot use; the kernel is then compiled."""
        raise NotImplementedError

    # ----- arguments --------------------------------------------------------------------------
    def owns(self, value: Any) -> bool:
        """Whether ``value`` is a tensor that lives on this backend's devices (a launch with no
        ``device=`` runs where its tensors live)."""
        return False

    def device_of(self, value: Any) -> str:
        """The device an owned tensor lives on ("cuda:1")."""
        return self.name

    def accepts(self, value: Any) -> bool:
        """Whether a launch on this backend takes ``value`` as a tensor argument (its own
        tensors, and host arrays where the backend copies them in and out)."""
        return self.owns(value)

    def tensor(self, value: Any, name: str) -> Any:
        """The argument as the launch reads it: an object with ``dtype``, ``shape``, ``strides``
        (elements), ``contiguous``, ``aligned16``, ``stride_align``, ``extent_align``."""
        raise NotImplementedError

    # ----- running ----------------------------------------------------------------------------
    def launch(
        self,
        built: Any,
        grid: tuple[int, int, int],
        tensors: dict[str, Any],  # parameter name -> what tensor() returned
        scalars: dict[str, tuple[DataType, Any]],
        device: str,
    ) -> None:
        raise NotImplementedError

    def fast_entry(
        self, built: Any, positions: dict[str, int], specs: Sequence[Any], tensors: dict[str, Any]
    ) -> Any:
        """A repeat-launch entry (``tilevm.runtime.fast_launch.Entry``) for this build and these
        arguments (``positions``: parameter name -> argument position), or None when repeat
        launches take the full path."""
        return None

    def properties(self, device: str) -> DeviceProperties:
        """The properties of a device of this backend (from its target caps by default)."""
        caps = self.target(device)
        return DeviceProperties(device, os.cpu_count() or 1, caps.shared_bytes)

    # ----- autotuning -------------------------------------------------------------------------
    def fingerprint(self, device: str) -> str:
        """What tuned results depend on: the device's name, arch and driver."""
        return device

    def time(self, run: Callable[[], None], device: str) -> float:
        """Median seconds per call of ``run`` (one launch). Backends with device timers (events)
        override this, flushing caches between calls."""
        return time_host(run)

    # ----- describing -------------------------------------------------------------------------
    def describe(self) -> list[TargetInfo]:
        """The compile targets worth listing in the README's "Targets" table, with what running
        and compiling each needs. Fixed archs only: the table must read the same on every
        machine. A lowering backend that lists none shows in the table as one row saying so."""
        return []


__all__ = ["Backend", "DeviceProperties", "TargetInfo"]
