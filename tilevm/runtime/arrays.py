"""Kernel arguments from numpy arrays, torch CPU tensors and tilevm's packed arrays."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

import tilevm.dtypes as dts
from tilevm.dtypes import DataType
from tilevm.errors import LaunchTypeError


@dataclass
class PackedArray:
    """A bit-packed array of a sub-byte (or any) dtype: what ``tv.pack`` writes, with a shape.

    Kernels read and write it like any tensor of ``dtype``; ``values()`` decodes it on the host.
    """

    data: np.ndarray  # uint8, dtype.nbytes(size) bytes
    dtype: DataType
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        # the kernels and values() read the bytes as one run from the first: a strided view of
        # a buffer would be read as if it were contiguous
        data = self.data
        contiguous = getattr(data, "is_contiguous", None)
        dense = (
            contiguous()
            if callable(contiguous)
            else getattr(data, "flags", None) is None or (data.flags.c_contiguous)
        )
        if not dense:
            raise LaunchTypeError(
                "a packed array's bytes must be contiguous",
                expected="a contiguous uint8 buffer",
                found=f"a strided view (strides {tuple(getattr(data, 'strides', ()))})",
                hint="pass a contiguous copy: np.ascontiguousarray(data) / data.contiguous()",
                code="packed-strided",
            )
        self.shape = tuple(int(n) for n in self.shape)
        size = getattr(data, "nbytes", None)
        if size is None:  # a torch tensor
            size = data.numel() * data.element_size()
        needed = self.dtype.nbytes(int(np.prod(self.shape)))
        if size < needed:
            raise LaunchTypeError(
                f"a packed array of shape {self.shape} and dtype {self.dtype} needs {needed} bytes",
                expected=f"at least {needed} bytes",
                found=f"{size} bytes",
                code="packed-size",
            )

    @classmethod
    def from_values(cls, values: Any, dtype: DataType) -> PackedArray:
        values = np.asarray(values)
        return cls(dts.pack(values, dtype), dtype, values.shape)

    @classmethod
    def empty(cls, shape: tuple[int, ...], dtype: DataType) -> PackedArray:
        size = int(np.prod(shape))
        return cls(np.zeros(dtype.nbytes(size), np.uint8), dtype, tuple(shape))

    def values(self) -> np.ndarray:
        return dts.unpack(_host_bytes(self.data), self.dtype, self.shape)

    def codes(self) -> np.ndarray:
        return dts.unpack(_host_bytes(self.data), self.dtype, self.shape, bits=True)

    def to(self, device: str) -> PackedArray:
        """The same bits in a torch uint8 tensor on ``device`` (e.g. "cuda"), or on the host
        as numpy for "cpu"."""
        if device == "cpu":
            return PackedArray(_host_bytes(self.data).copy(), self.dtype, self.shape)
        torch = sys.modules.get("torch")
        if torch is None:
            raise LaunchTypeError("moving a packed array to a GPU needs torch", found=device)
        data = torch.as_tensor(_host_bytes(self.data)).to(device)
        return PackedArray(data, self.dtype, self.shape)


@dataclass
class HostTensor:
    """An argument as bit patterns (sharing memory with it where possible) plus a write-back."""

    dtype: DataType
    codes: np.ndarray
    shape: tuple[int, ...]
    strides: tuple[int, ...]  # in elements
    contiguous: bool
    aligned16: bool
    source: Any

    @property
    def stride_align(self) -> int:
        return stride_align(self.strides, self.dtype.bits)

    @property
    def extent_align(self) -> int:
        return extent_align(self.shape, self.dtype.bits)

    def write_back(self) -> None:
        if isinstance(self.source, PackedArray):
            self.source.data[:] = dts.pack_codes(self.codes.reshape(-1), self.dtype.bits)


def _host_bytes(data: Any) -> np.ndarray:
    return data if isinstance(data, np.ndarray) else data.detach().cpu().numpy()


def is_tensor_like(value: Any) -> bool:
    return (
        isinstance(value, (np.ndarray, PackedArray))
        or _is_torch_tensor(value)
        or hasattr(value, "__dlpack__")
    )


KDL_CPU = 1  # DLPack's device type for host memory


def is_host_tensor(value: Any) -> bool:
    """A tensor in host memory: numpy arrays, torch CPU tensors, packed arrays over either,
    DLPack objects on the host."""
    if isinstance(value, np.ndarray):
        return True
    if isinstance(value, PackedArray):
        return isinstance(value.data, np.ndarray) or is_host_tensor(value.data)
    if _is_torch_tensor(value):
        return value.device.type == "cpu"
    get = getattr(value, "__dlpack_device__", None)
    return callable(get) and hasattr(value, "__dlpack__") and int(get()[0]) == KDL_CPU


def _is_torch_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def host_tensor(value: Any, name: str) -> HostTensor:
    if isinstance(value, PackedArray):
        codes = value.codes()
        return HostTensor(
            value.dtype, codes, value.shape, c_strides(value.shape), True, True, value
        )
    if _is_torch_tensor(value):
        if value.device.type != "cpu":
            raise LaunchTypeError(
                f"argument '{name}' lives on {value.device}, which the interpreter cannot read",
                expected="a CPU tensor or numpy array for device='interp'",
                found=str(value.device),
                hint="move it with .cpu(), or launch on the tensor's device",
            )
        dtype = dts.dtype(value.dtype)
        array = value.detach().view(_torch_uint(value.element_size())).numpy()
        return _from_codes(
            array.view(dtype.storage) if dtype.storage.itemsize == array.itemsize else array,
            dtype,
            value,
        )
    if isinstance(value, np.ndarray):
        if not value.dtype.isnative:
            raise LaunchTypeError(
                f"argument '{name}' is in non-native byte order ({value.dtype.str})",
                expected="an array in this machine's byte order",
                found=f"{value.dtype.str} ({'big' if value.dtype.byteorder == '>' else 'little'}"
                "-endian)",
                hint=f"convert it: {name}.astype({name}.dtype.newbyteorder('='))",
                code="byte-order",
            )
        dtype = dts.dtype(value.dtype)
        if value.dtype.itemsize * 8 != dtype.storage.itemsize * 8:
            raise LaunchTypeError(
                f"argument '{name}' has an unsupported layout of {value.dtype}",
                found=str(value.dtype),
            )
        return _from_codes(value.view(dtype.storage), dtype, value)
    raise LaunchTypeError(
        f"argument '{name}' is not a tensor",
        expected="a numpy array, a torch CPU tensor or a tv.PackedArray",
        found=type(value).__name__,
    )


def _from_codes(codes: np.ndarray, dtype: DataType, source: Any) -> HostTensor:
    itemsize = codes.itemsize
    strides = tuple(s // itemsize for s in codes.strides)
    contiguous = codes.ndim == 0 or strides[-1] == 1
    aligned = codes.ctypes.data % 16 == 0
    return HostTensor(dtype, codes, tuple(codes.shape), strides, contiguous, aligned, source)


def _torch_uint(size: int):
    torch = sys.modules["torch"]  # only reached with a torch tensor in hand
    return {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[size]


def stride_align(strides: tuple[int, ...], bits: int) -> int:
    """The largest power of two, up to one 16-byte vector of elements, dividing every stride but
    the last: how wide the rows of a tile may be accessed at once."""
    align = max(1, 128 // max(bits, 1))
    for s in strides[:-1]:
        while align > 1 and s % align:
            align //= 2
    return align


def extent_align(shape: tuple[int, ...], bits: int) -> int:
    """The largest power of two, up to one 16-byte vector of elements, dividing the last
    dimension's extent: a run of that many aligned elements is all inside or all outside."""
    align = max(1, 128 // max(bits, 1))
    n = shape[-1] if shape else align
    while align > 1 and n % align:
        align //= 2
    return align


INDEX_LIMIT = 2**31  # 32-bit index arithmetic reaches every element below this offset


def needs_wide_index(shape: tuple[int, ...], strides: tuple[int, ...]) -> bool:
    """Whether a tensor needs 64-bit index arithmetic: an extent, a stride or the offset of
    some element (in elements, either sign) reaches 2**31."""
    span = 0
    for n, s in zip(shape, strides):
        if n >= INDEX_LIMIT or not -INDEX_LIMIT < s < INDEX_LIMIT:
            return True
        if n > 1:
            span += (n - 1) * abs(s)
    return span >= INDEX_LIMIT


def c_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for n in reversed(shape):
        strides.insert(0, step)
        step *= n
    return tuple(strides)
