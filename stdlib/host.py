"""Host-side helpers the stdlib's wrappers share: numpy views of arguments, new outputs."""

from __future__ import annotations

from typing import Any

import numpy as np


def to_host(x: Any) -> np.ndarray:
    """``x`` as a numpy array on the host: numpy arrays as they are; torch tensors (any
    device) copied, 16-bit floats (which numpy may lack) widened to float32."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach"):
        t = x.detach().cpu()
        narrow = t.dtype.is_floating_point and t.element_size() < 4
        return t.float().numpy() if narrow else t.numpy()
    return np.asarray(x)


def empty_like(x: Any, shape: tuple[int, ...], dtype: Any = None) -> Any:
    """A new uninitialised array of ``shape`` where ``x`` lives, of ``x``'s dtype or of the
    numpy ``dtype`` given (a torch tensor's new array gets torch's dtype of that name)."""
    if isinstance(x, np.ndarray):
        return np.empty(shape, x.dtype if dtype is None else dtype)
    if dtype is None:
        return x.new_empty(shape)
    import torch

    return x.new_empty(shape, dtype=getattr(torch, np.dtype(dtype).name))
