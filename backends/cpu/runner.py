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
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any, Protocol

import numpy as np

# The blocks function of a kernel: (parameter slots, first block, end block, grid dims,
# workspace, status word)
BLOCKS = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p,
    ctypes.c_void_p,
)  # fmt: skip


class Loaded(Protocol):
    """Machine code of a kernel in this process (``jit.Loaded``, ``shared_object.Linked``)."""

    function: ctypes._CFuncPtr  # a BLOCKS
    workspaces: list  # reused across launches, one per range in flight


_pool: _Workers | None = None
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


class _Workers:
    """Threads that run block ranges (plain threads and queues rather than concurrent.futures,
    whose import, logging included, costs a cached kernel's first launch 3 ms)."""

    def __init__(self, count: int) -> None:
        self.tasks: SimpleQueue = SimpleQueue()
        for i in range(count):
            threading.Thread(target=self._serve, name=f"tilevm-cpu-{i}", daemon=True).start()

    def _serve(self) -> None:
        while True:
            fn, args, done = self.tasks.get()
            try:
                done.put((fn(*args), None))
            except BaseException as exc:  # handed to the launching thread
                done.put((None, exc))

    def map(self, fn: Callable[..., Any], calls: list[tuple]) -> list[Any]:
        """``fn`` on each argument tuple, in parallel; the results in no particular order."""
        done: SimpleQueue = SimpleQueue()
        for args in calls:
            self.tasks.put((fn, args, done))
        results = [done.get() for _ in calls]
        for _, exc in results:
            if exc is not None:
                raise exc
        return [result for result, _ in results]


def _executor() -> _Workers:
    global _pool
    if _pool is None:
        _pool = _Workers(workers())
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
        ranges = [(int(a), int(b)) for a, b in zip(bounds, bounds[1:])]
        statuses = _executor().map(chunk, ranges)
    if serial:
        _libc.fflush(None)  # C's stdout buffer, before Python writes anything after it
    return not any(statuses)
