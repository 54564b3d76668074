"""Timing one autotuning candidate: scratch copies of its tensor arguments, and a clock.

Candidates run on copies so that the caller's tensors are written exactly once, by the launch
with the chosen config (an accumulating kernel would otherwise add once per timed run). A copy
keeps its original's strides and its address modulo 64 bytes, so it selects the same
specialization (contiguity, 16-byte alignment) as the original and is timed as the same code.

On CUDA each run is bracketed by CUDA events on torch's current stream (the stream kernels
launch on) after zeroing a buffer larger than L2, so every run starts with a cold cache, as a
kernel in a model does; on the CPU a launch is synchronous and the wall clock times it.

Between the flush and the start event the GPU spins for longer than the host takes to launch
the candidate: otherwise, for a kernel shorter than its launch path (a decode step: 10 us of GPU
time behind 20-100 us of Python), the start event would fire while the host is still launching
and the timing would be mostly host time, the same for every config, with its noise deciding.
"""

from __future__ import annotations

import ctypes
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tilevm.backends.cuda import driver
from tilevm.errors import LaunchTypeError
from tilevm.runtime.arrays import PackedArray, is_tensor_like

# Measured time per candidate: enough runs to make the median stable, few enough that tuning a
# dozen configs takes well under a second of device time.
CUDA_BUDGET_S = 25e-3
CUDA_WARMUP_S = 10e-3
CUDA_REPEATS = (5, 100)  # at least, at most
HOST_BUDGET_S = 10e-3
HOST_REPEATS = (3, 25)
FLUSH_BYTES = 256 << 20  # at least twice the L2 of any GPU so far (H200: 60 MB)

_flush_buffers: dict[int, Any] = {}  # device index -> the torch buffer zeroed before each run


def clone_args(args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
    """The arguments with every tensor replaced by a fresh copy of the same layout."""
    return tuple(_clone(a) for a in args), {k: _clone(v) for k, v in kwargs.items()}


def _clone(value: Any) -> Any:
    if not is_tensor_like(value):
        return value
    if isinstance(value, PackedArray):
        return PackedArray(_clone(value.data), value.dtype, value.shape)
    if isinstance(value, np.ndarray):
        return _clone_numpy(value)
    torch = sys.modules.get("torch")
    if torch is None:
        raise LaunchTypeError(
            "autotuning cannot copy a tensor argument of this type",
            expected="numpy arrays, torch tensors or tv.PackedArray",
            found=type(value).__name__,
            hint="pass a torch tensor (torch.from_dlpack(x)) or tune with TILEVM_AUTOTUNE=0",
            code="autotune-clone",
        )
    if not isinstance(value, torch.Tensor):
        value = torch.from_dlpack(value)
    return _clone_torch(torch, value)


def _span(shape: tuple[int, ...], strides: tuple[int, ...]) -> tuple[int, int]:
    """The lowest and one past the highest offset an array touches (in stride units)."""
    low = sum((n - 1) * s for n, s in zip(shape, strides) if s < 0)
    high = sum((n - 1) * s for n, s in zip(shape, strides) if s > 0)
    return low, high + 1


def _clone_numpy(x: np.ndarray) -> np.ndarray:
    if x.size == 0:
        return x.copy()
    low, high = _span(x.shape, x.strides)
    high += x.itemsize - 1  # the last element's bytes
    start = x.ctypes.data + low
    source = np.ctypeslib.as_array((ctypes.c_uint8 * (high - low)).from_address(start))
    buffer = np.empty(high - low + 64, np.uint8)
    shift = (start - buffer.ctypes.data) % 64  # the same address modulo 64 as the original
    buffer[shift : shift + high - low] = source
    return np.ndarray(x.shape, x.dtype, buffer=buffer, offset=shift - low, strides=x.strides)


def _clone_torch(torch: Any, x: Any) -> Any:
    if x.numel() == 0:
        return x.clone()
    _, high = _span(tuple(x.shape), tuple(x.stride()))  # torch strides are never negative
    # The memory the tensor spans, gaps (padded rows) and overlaps (stride 0) included.
    flat = x.detach().as_strided((high,), (1,))
    pad = (x.data_ptr() % 64) // x.element_size()  # torch allocates 512-byte aligned blocks
    buffer = torch.empty(pad + high, dtype=x.dtype, device=x.device)
    buffer[pad:].copy_(flat)
    return buffer.as_strided(tuple(x.shape), tuple(x.stride()), pad)


def time_host(run: Callable[[], None]) -> float:
    """Median seconds of ``run`` (a synchronous launch) after one untimed run."""
    run()  # compile, and touch the memory once
    first = _clock(run)
    low, high = HOST_REPEATS
    repeats = min(high, max(low, int(HOST_BUDGET_S / max(first, 1e-7))))
    return statistics.median([first] + [_clock(run) for _ in range(repeats - 1)])


def _clock(run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def time_cuda(run: Callable[[], None], index: int) -> float:
    """Median seconds of ``run`` (an asynchronous launch on torch's current stream of device
    ``index``), each run after an L2 flush, timed with CUDA events."""
    torch = sys.modules["torch"]  # CUDA tensors are torch tensors: torch is loaded
    with torch.cuda.device(index):
        flush = flush_buffer(torch, index)
        run()  # compile and load; launch errors surface here, kernel faults in the sync
        torch.cuda.synchronize()
        spin = gpu_spin(torch, _host_launch_seconds(run))
        torch.cuda.synchronize()
        estimate = statistics.median(_timed_runs(torch, run, flush, 3, spin))
        for _ in range(min(50, max(1, int(CUDA_WARMUP_S / max(estimate, 1e-7))))):
            run()
        low, high = CUDA_REPEATS
        repeats = min(high, max(low, int(CUDA_BUDGET_S / max(estimate, 1e-7))))
        return statistics.median(_timed_runs(torch, run, flush, repeats, spin))


def _host_launch_seconds(run: Callable[[], None]) -> float:
    """The host's time to issue ``run`` (the GPU runs it asynchronously), the fastest of 3."""
    return min(_clock(run) for _ in range(3))


SPIN_MARGIN = 4  # the spin lasts this many times the host's launch time (at least 50 us)
SPIN_CLOCK_HZ = 2.0e9  # the cycles it counts are taken at this clock: at or above real ones


def gpu_spin(torch: Any, host_s: float) -> Callable[[], None] | None:
    """A GPU-side wait that outlasts a launch taking ``host_s`` on the host (None where torch
    has no spin kernel: then the host's time stays in every timing, the same for each config)."""
    sleep = getattr(torch.cuda, "_sleep", None)
    if sleep is None:
        return None
    cycles = int(max(SPIN_MARGIN * host_s, 50e-6) * SPIN_CLOCK_HZ)
    return lambda: sleep(cycles)


def _timed_runs(torch: Any, run: Callable[[], None], flush: Any, repeats: int,
                spin: Callable[[], None] | None = None) -> list[float]:  # fmt: skip
    events = [
        (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
        for _ in range(repeats)
    ]
    for start, end in events:
        flush.zero_()  # on the current stream, before the start event: not timed
        if spin is not None:
            spin()  # the GPU waits while the host records the start event and launches
        start.record()
        run()
        end.record()
    torch.cuda.synchronize()
    return [start.elapsed_time(end) * 1e-3 for start, end in events]  # ms -> s


def flush_buffer(torch: Any, index: int) -> Any:
    """The device's L2-flush buffer (allocated once, then reused): at least twice its L2."""
    buffer = _flush_buffers.get(index)
    if buffer is None:
        size = max(FLUSH_BYTES, 2 * driver.device_info(index).l2_bytes)
        buffer = torch.empty(size, dtype=torch.uint8, device=f"cuda:{index}")
        _flush_buffers[index] = buffer
    return buffer


__all__ = ["clone_args", "flush_buffer", "time_cuda", "time_host"]
