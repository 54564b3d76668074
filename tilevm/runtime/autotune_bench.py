"""Timing one autotuning candidate: scratch copies of its tensor arguments, and a clock.

Candidates run on copies so that the caller's tensors are written exactly once, by the launch
with the chosen config (an accumulating kernel would otherwise add once per timed run). A copy
keeps its original's strides and its address modulo 64 bytes, so it selects the same
specialization (contiguity, 16-byte alignment) as the original and is timed as the same code.

Where a launch is synchronous (the CPU) the wall clock times it; backends with device timers
time their own launches (``Backend.time``).
"""

from __future__ import annotations

import ctypes
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tilevm.errors import LaunchTypeError
from tilevm.runtime.arrays import PackedArray, is_tensor_like

# Measured time per candidate: enough runs to make the median stable, few enough that tuning a
# dozen configs takes well under a second.
HOST_BUDGET_S = 10e-3
HOST_REPEATS = (3, 25)


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
    first = clock(run)
    low, high = HOST_REPEATS
    repeats = min(high, max(low, int(HOST_BUDGET_S / max(first, 1e-7))))
    return statistics.median([first] + [clock(run) for _ in range(repeats - 1)])


def clock(run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


__all__ = ["clone_args", "clock", "time_host"]
