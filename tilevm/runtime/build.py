"""What every compiling backend shares: the launch shape read from the thread program, the
tensor facts a specialization gives the lowering, and tilevm's version for cache keys."""

from __future__ import annotations

import ctypes
import importlib.metadata
from collections.abc import Sequence
from typing import Any

from tilevm.dtypes import DataType
from tilevm.lowering.lower import TensorFacts
from tilevm.lowering.thread_ir import ThreadKernel
from tilevm.runtime.fast_launch import INDEX_CTYPE, scalar_arg


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


def pointer_args(
    thread: ThreadKernel, tensors: dict[str, Any], scalars: dict[str, tuple[DataType, Any]]
) -> list[ctypes._SimpleCData]:
    """A launch's parameters as ctypes values, for backends that pass device pointers
    (``tensors``: name -> an object with ``ptr``, ``shape``, ``strides``)."""
    args: list[ctypes._SimpleCData] = []
    for p in thread.params:
        if p.kind == "tensor":
            args.append(ctypes.c_void_p(tensors[p.arg].ptr))
        elif p.kind == "scalar":
            arg = scalar_arg(*scalars[p.arg])
            assert arg is not None, p.arg  # the launch checked every scalar against its dtype
            args.append(arg)
        else:
            tensor = tensors[p.arg]
            size = (tensor.shape if p.kind == "dim" else tensor.strides)[p.axis]
            args.append(INDEX_CTYPE[p.dtype.bits](size))
    return args


__all__ = ["LaunchShape", "facts_of", "pointer_args", "version"]
