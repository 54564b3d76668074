"""The array operations the harness needs, for numpy arrays and torch tensors alike: exact-type
checks, byte snapshots, private copies, poisoned allocation, float64 host views, moving host
inputs to a GPU.

torch is optional: it is used only when installed, and only on tensors that are torch's.
"""

from __future__ import annotations

import hashlib
import sys
from typing import Any

import numpy as np

import tilevm as tv
from tilevm.dtypes import interop

SCALARS = (bool, int, float)


def torch_module() -> Any:
    """torch if it has been imported (a torch tensor implies it), else None."""
    return sys.modules.get("torch")


def is_torch_tensor(value: Any) -> bool:
    torch = torch_module()
    return torch is not None and isinstance(value, torch.Tensor)


def is_plain_array(value: Any) -> bool:
    """A ``np.ndarray`` or ``torch.Tensor`` of exactly that type: no subclass can compute its
    values lazily, on access, or hand the harness different data than the kernel wrote."""
    if type(value) is np.ndarray:
        return True
    torch = torch_module()
    return torch is not None and type(value) is torch.Tensor


def is_packed(value: Any) -> bool:
    """A ``tv.PackedArray`` (exactly) over a plain array of bytes: sub-byte inputs."""
    return type(value) is tv.PackedArray and is_plain_array(value.data)


def type_name(value: Any) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


def dtype_name(value: Any) -> str:
    """The array's element type as tilevm spells it (``f32``, ``bf16``, ``i8``)."""
    try:
        return str(tv.dtype(value.dtype))
    except (tv.TilevmError, TypeError):
        return str(value.dtype)


def shape_of(value: Any) -> tuple[int, ...]:
    return tuple(int(n) for n in value.shape)


def device_of(value: Any) -> str:
    """Where an array lives: "cpu" for host memory, torch's device name otherwise."""
    return str(value.device) if is_torch_tensor(value) else "cpu"


def raw_bytes(value: Any) -> bytes:
    """The array's element bytes in row-major order (copied to the host); a packed array's
    packed bytes."""
    if is_packed(value):
        return raw_bytes(value.data)
    if is_torch_tensor(value):
        torch = torch_module()
        flat = value.detach().contiguous().reshape(-1)
        return flat.view(torch.uint8).cpu().numpy().tobytes()
    return np.ascontiguousarray(value).tobytes()


def digest(value: Any) -> str:
    """A fingerprint of an input or output: dtype, shape and a hash of its bytes."""
    if is_packed(value):
        text = f"packed {value.dtype}{value.shape}".encode()
        return hashlib.sha256(text + raw_bytes(value)).hexdigest()
    if not is_plain_array(value):
        return repr(value)
    text = f"{dtype_name(value)}{shape_of(value)}".encode()
    return hashlib.sha256(text + raw_bytes(value)).hexdigest()


def private_copy(value: Any) -> Any:
    """A copy that shares no memory with ``value`` (scalars are immutable: themselves)."""
    if is_packed(value):
        return tv.PackedArray(private_copy(value.data), value.dtype, value.shape)
    if is_torch_tensor(value):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    return value


def to_float64(value: Any) -> np.ndarray:
    """The values on the host as float64 (integers as int64, so large ones stay exact)."""
    if is_torch_tensor(value):
        torch = torch_module()
        host = value.detach().cpu()
        if host.dtype.is_floating_point:
            return host.to(torch.float64).numpy()
        return host.to(torch.int64).numpy() if host.dtype != torch.bool else host.numpy()
    array = np.asarray(value)
    if array.dtype.kind in "iub":
        return array.astype(np.int64)
    return array.astype(np.float64)


def poison_value(dtype: tv.DataType) -> float | int:
    """NaN for floats that have one; otherwise a value a correct kernel rarely writes: the
    most negative (signed) or largest (unsigned) integer, the largest float."""
    if dtype.is_float:
        return float("nan") if dtype.has_nan else float(dtype.max)
    return int(dtype.min) if dtype.kind == "int" else int(dtype.max)


def poisoned(shape: tuple[int, ...], dtype: Any, like: Any) -> Any:
    """A new array of ``shape`` and ``dtype``, filled with the poison value, in the same
    library and on the same device as ``like`` (numpy on the host when ``like`` is a scalar)."""
    dt = interop.as_dtype(dtype)
    fill = poison_value(dt)
    if is_torch_tensor(like):
        torch = torch_module()
        return torch.full(shape, fill, dtype=interop.torch_dtype(dt), device=like.device)
    host = interop.numpy_dtype(dt)
    if host is None:
        raise ValueError(f"numpy has no array type for {dt}")
    return np.full(shape, fill, dtype=host)


def to_device(value: Any, device: str) -> Any:
    """A host input moved to a GPU device as a torch tensor (bytes unchanged, ml_dtypes types
    through their torch twins), a packed array's bytes likewise; anything already a torch
    tensor, or a scalar, as it is."""
    if is_packed(value):
        return value if is_torch_tensor(value.data) else value.to(device)
    if not isinstance(value, np.ndarray):
        return value
    torch = torch_module()
    twin = interop.torch_dtype(tv.dtype(value.dtype))
    raw = torch.from_numpy(np.ascontiguousarray(value).reshape(-1).view(np.uint8).copy())
    return raw.to(device).view(twin).reshape(value.shape)


__all__ = [
    "SCALARS",
    "device_of",
    "digest",
    "dtype_name",
    "is_packed",
    "is_plain_array",
    "is_torch_tensor",
    "poison_value",
    "poisoned",
    "private_copy",
    "raw_bytes",
    "shape_of",
    "to_device",
    "to_float64",
    "type_name",
]
