"""The repeat-launch path: a launch whose arguments have the same kinds as an earlier one
(tensor dtypes, ranks, contiguity, alignment, constexpr values) skips specialization and goes
straight to building the kernel's parameters. Only torch tensors on an accelerator and plain
scalars take it there, numpy arrays of byte-sized dtypes and plain scalars on the host, and only
where the backend gives an entry (``Backend.fast_entry``); anything else, and every first launch,
goes through the full path, which checks everything and then records an entry here.
"""

from __future__ import annotations

import ctypes
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import tilevm.dtypes as dts
from tilevm.dtypes import DataType
from tilevm.frontend.scope import Guard, guards_hold
from tilevm.runtime.arrays import extent_align, needs_wide_index, stride_align

_MISS = object()
INDEX_CTYPE = {32: ctypes.c_int32, 64: ctypes.c_int64}  # a size or stride parameter


@dataclass(frozen=True)
class Entry:
    # (kind, argument position, axis, bits) per parameter: sizes and strides are passed as
    # 32- or 64-bit integers, as the specialization's index width says
    plan: tuple[tuple[str, int, int, int], ...]
    scalars: dict[int, DataType]
    # Runs the kernel on its parameters and the grid: for host entries the parameters are
    # 8-byte slots read from numpy arrays, otherwise ctypes values read from torch tensors.
    run: Callable[[list, tuple[int, int, int]], None]
    host: bool = False
    guards: tuple[Guard, ...] = ()  # the globals the kernel read still have their values


class FastPath:
    def __init__(self, names: Sequence[str], kinds: Sequence[str], defaults: Sequence[Any]):
        self.names = list(names)
        self.kinds = list(kinds)  # "tensor" | "scalar" | "constexpr" | "any"
        self.defaults = list(defaults)  # _MISS where a parameter has none
        self.entries: dict[tuple, Entry] = {}

    def bind(self, args: tuple, kwargs: dict) -> list | None:
        """Argument values in parameter order, or None when the call is not a plain one."""
        if len(args) > len(self.names):
            return None
        values = list(args)
        used = 0
        for name, default in zip(self.names[len(args) :], self.defaults[len(args) :]):
            if name in kwargs:
                values.append(kwargs[name])
                used += 1
            elif default is not _MISS:
                values.append(default)
            else:
                return None
        return values if used == len(kwargs) else None

    def key(self, values: list, warps: int, device: str) -> tuple | None:
        torch = sys.modules.get("torch")
        parts: list[Any] = [warps, device]
        for value, kind in zip(values, self.kinds):
            if kind == "constexpr":
                parts.append(value)
            elif type(value) is np.ndarray and kind != "scalar":
                if not (_byte_sized(value.dtype) and value.flags.writeable):
                    return None  # (a read-only array is checked against what the kernel writes)
                item = value.itemsize
                strides = tuple(s // item for s in value.strides)
                parts.append((value.dtype, value.ndim, not strides or strides[-1] == 1,
                              value.ctypes.data & 15 == 0, stride_align(strides, item * 8),
                              extent_align(value.shape, item * 8),
                              needs_wide_index(value.shape, strides), "host"))  # fmt: skip
            elif torch is not None and type(value) is torch.Tensor:
                if value.device.type == "cpu":  # torch's name for host memory
                    return None
                strides = value.stride()
                bits = value.element_size() * 8
                align = stride_align(strides, bits)
                parts.append((value.dtype, len(strides), not strides or strides[-1] == 1,
                              value.data_ptr() & 15 == 0, align,
                              extent_align(tuple(value.shape), bits),
                              needs_wide_index(tuple(value.shape), strides),
                              value.device))  # fmt: skip
            elif kind != "tensor" and type(value) in (int, float, bool):
                parts.append(type(value))
            else:
                return None
        try:
            hash(tuple(parts))
        except TypeError:
            return None
        return tuple(parts)

    def launch(self, entry: Entry, values: list, grid: tuple[int, int, int]) -> bool:
        if entry.guards and not guards_hold(entry.guards):
            return False  # a global changed: the full path compiles again
        if entry.host:
            return self._launch_host(entry, values, grid)
        params: list[Any] = []
        for kind, position, axis, bits in entry.plan:
            value = values[position]
            if kind == "tensor":
                params.append(ctypes.c_void_p(value.data_ptr()))
            elif kind == "dim":
                params.append(INDEX_CTYPE[bits](value.shape[axis]))
            elif kind == "stride":
                params.append(INDEX_CTYPE[bits](value.stride(axis)))
            else:
                arg = scalar_arg(entry.scalars[position], value)
                if arg is None:
                    return False  # out of range: the full path raises the error
                params.append(arg)
        entry.run(params, grid)
        return True

    def _launch_host(self, entry: Entry, values: list, grid: tuple[int, int, int]) -> bool:
        slots: list[int] = []
        for kind, position, axis, _ in entry.plan:
            value = values[position]
            if kind == "tensor":
                slots.append(value.ctypes.data)
            elif kind == "dim":
                slots.append(value.shape[axis])
            elif kind == "stride":
                slots.append((value.strides[axis] // value.itemsize) % (1 << 64))
            else:
                arg = scalar_arg(entry.scalars[position], value)
                if arg is None:
                    return False
                word = ctypes.c_uint64(0)
                ctypes.memmove(ctypes.addressof(word), ctypes.addressof(arg), ctypes.sizeof(arg))
                slots.append(word.value)
        entry.run(slots, grid)
        return True


_BYTE_SIZED: dict[np.dtype, bool] = {}


def _byte_sized(dtype: np.dtype) -> bool:
    """Whether a numpy dtype holds one tilevm element per item at full width (not ml_dtypes'
    one-byte int4 and friends, which the CPU reads packed)."""
    if dtype not in _BYTE_SIZED:
        try:
            _BYTE_SIZED[dtype] = dts.dtype(dtype).bits == dtype.itemsize * 8
        except Exception:
            _BYTE_SIZED[dtype] = False
    return _BYTE_SIZED[dtype]


def scalar_arg(dtype: DataType, value: Any) -> ctypes._SimpleCData | None:
    """A kernel scalar as the C type the generated code declares (small floats as their bit
    patterns); None when the value does not fit its dtype (an integer out of range, a finite
    float that would round to infinity): the full launch path then raises the error."""
    if dtype.name in ("f32", "f64"):
        arg = ctypes.c_float(value) if dtype.name == "f32" else ctypes.c_double(value)
        return None if math.isinf(arg.value) and not math.isinf(value) else arg
    if dtype.is_float:
        try:
            code = int(dtype.encode(np.asarray([value]), overflow="error")[0])
        except ValueError:
            return None
        return ctypes.c_uint16(code) if dtype.bits > 8 else ctypes.c_uint8(code)
    if not (isinstance(value, (int, bool)) and dtype.min <= value <= dtype.max):
        return None
    width = 8 if dtype.bits <= 8 else 16 if dtype.bits <= 16 else 32 if dtype.bits <= 32 else 64
    return getattr(ctypes, f"c_{'int' if dtype.kind == 'int' else 'uint'}{width}")(int(value))
