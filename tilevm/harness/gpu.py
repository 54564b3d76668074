"""Timing and settling calls: CUDA events on torch's current stream on a GPU, ``perf_counter``
on the CPU devices; and the two checks that catch work hidden on another stream.

The GPU timer, per call (the layout of one timed call on the current stream)::

    | zero 2x L2 | spin (host launches meanwhile) | start | the solution's work | end |
                                          ^ early copy of the outputs, on a side stream

* **Early copy.** While the spin still blocks the current stream, the outputs are copied on a
  side stream. Work on the current stream cannot have run yet, so an output that already holds
  its final value was computed on another stream, outside the events: ``stream-escape``.
* **Settle.** After the end event the outputs are copied (on the current stream), then the
  whole device is synchronized and the outputs read again: a change means work was still
  running on another stream when the events said the call was done: ``stream-escape``.

torch's functions are bound when this module is imported, before any problem module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from tilevm.harness.arrays import private_copy, raw_bytes

GPU_KINDS = ("cuda", "hip")  # torch names both "cuda"
SPIN_CLOCK_HZ = 2.0e9  # torch.cuda._sleep counts cycles; no GPU clocks above this
SPIN_MARGIN = 8  # the spin outlasts this many host launches of the solution (at least 1 ms)

try:
    _torch: Any = importlib.import_module("torch")
except ImportError:  # numpy-only installs: host devices only
    _torch = None
if _torch is not None:
    _cuda = _torch.cuda
    _Event, _Stream, _stream = _cuda.Event, _cuda.Stream, _cuda.stream
    _synchronize, _current_stream = _cuda.synchronize, _cuda.current_stream
    _sleep = getattr(_cuda, "_sleep", None)


def is_gpu(device: str) -> bool:
    return device.split(":")[0] in GPU_KINDS


def torch_device(device: str) -> str:
    """torch's name of a tilevm GPU device ("cuda:1" for "cuda:1" and "hip:1")."""
    _, _, index = device.partition(":")
    return f"cuda:{index if index.isdigit() else 0}"


def memory_of(device: str) -> str:
    """Where a device's outputs must live: "cpu" (host memory) or torch's GPU name."""
    return torch_device(device) if is_gpu(device) else "cpu"


def settle(outputs: tuple, device: str) -> tuple[tuple, bool]:
    """Host copies of the outputs as the current stream left them, and whether they changed
    once every stream of the device finished."""
    if not is_gpu(device):
        return tuple(private_copy(o) for o in outputs), False
    _current_stream().synchronize()
    host = tuple(o.detach().to("cpu", copy=True) for o in outputs)
    _synchronize()
    escaped = any(raw_bytes(h) != raw_bytes(o) for h, o in zip(host, outputs))
    return host, escaped


class HostTimer:
    """Wall-clock time of a synchronous call (the CPU devices run launches to completion)."""

    clock = "perf_counter"

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.early: tuple | None = None

    def time(self, call: Callable[[], tuple]) -> tuple[float, tuple]:
        start = self.now()
        outputs = call()
        return self.now() - start, outputs


class CudaTimer:
    """CUDA events on the current stream around one call, after an L2 flush and a spin."""

    clock = "cuda-events"

    def __init__(self, device: str, now: Callable[[], float]) -> None:
        self.device = torch_device(device)
        self.now = now
        l2 = _cuda.get_device_properties(self.device).L2_cache_size
        self.flush = _torch.empty(max(2 * l2, 1 << 20), dtype=_torch.uint8, device=self.device)
        self.side = _Stream(device=self.device)
        self.host_s = 1e-3  # the host's time to issue a call, refined by each call
        self.early: tuple | None = None  # the early copy of the last call's outputs, if valid

    def time(self, call: Callable[[], tuple]) -> tuple[float, tuple]:
        start, end = _Event(enable_timing=True), _Event(enable_timing=True)
        self.flush.zero_()  # writes 2x L2: the call starts with a cold cache
        if _sleep is not None:
            _sleep(int(max(SPIN_MARGIN * self.host_s, 1e-3) * SPIN_CLOCK_HZ))
        begun = self.now()
        start.record()
        outputs = call()
        end.record()
        self.host_s = self.now() - begun
        self.early = self._early_copy(outputs, start)
        end.synchronize()
        return start.elapsed_time(end) * 1e-3, outputs

    def _early_copy(self, outputs: tuple, start: Any) -> tuple | None:
        """The outputs copied while the spin still blocks the current stream (the start event,
        recorded after it, not reached); None when the spin ended first: then the copy may have
        seen the call's own work and proves nothing."""
        if _sleep is None or start.query():
            return None
        with _stream(self.side):
            copies = tuple(o.detach().to("cpu", copy=True) for o in outputs)
        self.side.synchronize()
        return None if start.query() else copies


def escaped_early(early: tuple | None, host: tuple) -> bool:
    """An output whose bytes were final before the current stream ran any of the call's work."""
    if early is None:
        return False
    return any(raw_bytes(e) == raw_bytes(h) and raw_bytes(h) for e, h in zip(early, host))


def synchronize(device: str) -> None:
    if is_gpu(device):
        _synchronize()


def timer_for(device: str, now: Callable[[], float]) -> HostTimer | CudaTimer:
    return CudaTimer(device, now) if is_gpu(device) else HostTimer(now)


__all__ = [
    "CudaTimer",
    "HostTimer",
    "escaped_early",
    "is_gpu",
    "memory_of",
    "settle",
    "synchronize",
    "timer_for",
    "torch_device",
]
