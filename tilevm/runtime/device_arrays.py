"""Kernel arguments that live on an accelerator: torch tensors, DLPack objects, and packed
arrays whose bytes are a torch tensor. Only their description (pointer, shape, strides) is read.
Which backend owns which of them is each backend's to say (``Backend.owns``), from
``torch_device`` or ``dlpack_device``."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import tilevm.dtypes as dts
from tilevm.dtypes import DataType
from tilevm.errors import LaunchTypeError
from tilevm.runtime.arrays import PackedArray, c_strides, extent_align, stride_align


@dataclass
class DeviceTensor:
    dtype: DataType
    ptr: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]  # in elements
    contiguous: bool
    aligned16: bool
    stride_align: int
    device: int
    source: Any

    @property
    def extent_align(self) -> int:
        return extent_align(self.shape, self.dtype.bits)


def _torch():
    return sys.modules.get("torch")


def torch_device(value: Any) -> Any:
    """The torch device of a torch tensor, or of a packed array whose bytes are one; else
    None."""
    torch = _torch()
    if torch is None:
        return None
    if isinstance(value, PackedArray):
        value = value.data
    return value.device if isinstance(value, torch.Tensor) else None


def dlpack_device(value: Any) -> tuple[int, int] | None:
    """DLPack's (device type, device id) of an object that is not a torch tensor; else None."""
    if torch_device(value) is not None:
        return None
    get = getattr(value, "__dlpack_device__", None)
    if not callable(get) or not hasattr(value, "__dlpack__"):
        return None
    kind, index = get()
    return int(kind), int(index)


def device_tensor(value: Any, name: str) -> DeviceTensor:
    torch = _torch()
    if isinstance(value, PackedArray):
        data = value.data
        if not data.is_contiguous() or data.dtype != torch.uint8:
            raise LaunchTypeError(
                f"argument '{name}': a packed array's bytes must be a contiguous uint8 tensor",
                found=f"{data.dtype}, contiguous={data.is_contiguous()}",
            )
        ptr = data.data_ptr()
        strides = c_strides(value.shape)
        return DeviceTensor(
            value.dtype, ptr, tuple(value.shape), strides, True, ptr % 16 == 0,
            stride_align(strides, value.dtype.bits), data.device.index or 0, value,
        )  # fmt: skip
    if torch is None or not isinstance(value, torch.Tensor):
        if torch is None:
            raise LaunchTypeError(
                f"argument '{name}' is a DLPack object; reading it needs torch",
                hint="pip install tilevm[torch]",
            )
        value = torch.from_dlpack(value)
    dtype = dts.dtype(value.dtype)
    ptr = value.data_ptr()
    strides = tuple(int(s) for s in value.stride())
    return DeviceTensor(
        dtype,
        ptr,
        tuple(int(n) for n in value.shape),
        strides,
        value.dim() == 0 or strides[-1] == 1,
        ptr % 16 == 0,
        stride_align(strides, dtype.bits),
        value.device.index or 0,
        value,
    )
