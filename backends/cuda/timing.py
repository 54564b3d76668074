"""Timing a launch on a CUDA device for the autotuner.

Each run is bracketed by CUDA events on torch's current stream (the stream kernels launch on)
after zeroing a buffer larger than L2, so every run starts with a cold cache, as a kernel in a
model does.

Between the flush and the start event the GPU spins for longer than the host takes to launch
the candidate: otherwise, for a kernel shorter than its launch path (a decode step: 10 us of GPU
time behind 20-100 us of Python), the start event would fire while the host is still launching
and the timing would be mostly host time, the same for every config, with its noise deciding.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from typing import Any

from tilevm.backends.cuda import driver
from tilevm.runtime.autotune_bench import clock

# Measured time per candidate: enough runs to make the median stable, few enough that tuning a
# dozen configs takes well under a second of device time.
CUDA_BUDGET_S = 25e-3
CUDA_WARMUP_S = 10e-3
CUDA_REPEATS = (5, 100)  # at least, at most
FLUSH_BYTES = 256 << 20  # at least twice the L2 of any GPU so far (H200: 60 MB)

_flush_buffers: dict[int, Any] = {}  # device index -> the torch buffer zeroed before each run


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
    return min(clock(run) for _ in range(3))


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


__all__ = ["flush_buffer", "gpu_spin", "time_cuda"]
