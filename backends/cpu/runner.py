"""Running a compiled CPU kernel over a grid, on the host's cores.

Blocks of a grid are independent (the VM has no inter-block synchronization, and packed
sub-byte stores update shared words atomically), so contiguous ranges of block ids go to a pool
of threads; ctypes releases the GIL for the call. Each range gets its own workspace (shared
memory and per-thread registers). A kernel that prints runs its blocks in order on one thread,
so its output reads as the interpreter's does.
"""

from __future__ import annotations

import ctypes
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from tilevm.backends.cpu.jit import Loaded

_pool: ThreadPoolExecutor | None = None
_libc = ctypes.CDLL(None)


def workers() -> int:
    """``TILEVM_CPU_THREADS`` or the cores this process may use."""
    explicit = os.environ.get("TILEVM_CPU_THREADS")
    if explicit and explicit.isdigit() and int(explicit) > 0:
        return int(explicit)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="tilevm-cpu")
    return _pool


def _take(loaded: Loaded, size: int) -> np.ndarray:
    """A workspace no other range is using (list pop and append are atomic)."""
    try:
        return loaded.workspaces.pop()
    except IndexError:
        return np.empty(max(size, 64), np.uint8)


def run(
    loaded: Loaded,
    slots: list[int],
    grid: tuple[int, int, int],
    workspace_bytes: int,
    serial: bool = False,
) -> bool:
    """Run every block; False when a block trapped."""
    args = (ctypes.c_uint64 * max(1, len(slots)))(*slots)
    dims = (ctypes.c_int32 * 3)(*grid)
    total = grid[0] * grid[1] * grid[2]
    parts = 1 if serial else min(total, workers())

    def chunk(first: int, last: int) -> int:
        workspace = _take(loaded, workspace_bytes)
        status = ctypes.c_int32(0)
        try:
            loaded.function(
                ctypes.addressof(args), first, last, ctypes.addressof(dims),
                workspace.ctypes.data, ctypes.addressof(status),
            )  # fmt: skip
        finally:
            loaded.workspaces.append(workspace)  # free for the next range or launch
        return status.value

    if parts <= 1:
        statuses = [chunk(0, total)]
    else:
        bounds = np.linspace(0, total, parts + 1).astype(np.int64)
        futures = [_executor().submit(chunk, int(a), int(b)) for a, b in zip(bounds, bounds[1:])]
        statuses = [f.result() for f in futures]
    if serial:
        _libc.fflush(None)  # C's stdout buffer, before Python writes anything after it
    return not any(statuses)
