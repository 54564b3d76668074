"""Kernel arguments that live on a GPU: torch CUDA tensors, DLPack objects, and packed arrays
whose bytes are a CUDA tensor. Only their description (pointer, shape, strides) is read."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import tilevm.dtypes as dts
from tilevm.dtypes import DataType
from tilevm.errors import LaunchTypeError
from tilevm.runtime.arrays import PackedArray, c_strides, extent_align, stride_align

KDL_CUDA = 2  # DLPack's device type for CUDA memory


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


def is_device_tensor(value: Any) -> bool:
    torch = _torch()
    if torch is not None and isinstance(value, torch.Tensor):
        return value.device.type == "cuda"
    if isinstance(value, PackedArray):
        return torch is not None and isinstance(value.data, torch.Tensor)
    dlpack_device = getattr(value, "__dlpack_device__", None)
    return (
        callable(dlpack_device)
        and hasattr(value, "__dlpack__")
        and (dlpack_device()[0] == KDL_CUDA)
    )


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
