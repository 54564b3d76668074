"""What every compiling backend shares: the launch shape read from the thread program, the
tensor facts a specialization gives the lowering, and tilevm's version for cache keys."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from typing import Any

from tilevm.lowering.lower import TensorFacts
from tilevm.lowering.thread_ir import ThreadKernel


def version() -> str:
    try:
        return importlib.metadata.version("tilevm")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a source checkout
        return "0+unknown"


class LaunchShape:
    """Block size and shared memory, read from the thread program (``self.thread``)."""

    thread: ThreadKernel

    @property
    def num_threads(self) -> int:
        return self.thread.num_threads

    @property
    def shared_bytes(self) -> int:
        return self.thread.shared_bytes


def facts_of(specs: Sequence[Any]) -> dict[str, TensorFacts]:
    return {
        s.name: TensorFacts(s.contiguous, s.aligned16, s.stride_align, s.extent_align)
        for s in specs
        if s.kind == "tensor"
    }


__all__ = ["LaunchShape", "facts_of", "version"]
