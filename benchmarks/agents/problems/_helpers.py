"""Shared by the problem modules next to this file (the harness puts their folder on
``sys.path``): torch views of the inputs for the references, scratch buffers on the inputs'
device, and the per-device shape lists.

The references are torch eager code, as a PyTorch user writes the same operation; each module
states its precision (16-bit inputs are computed in float32 by torch itself). They are the
speed baseline of ``bench`` on a GPU, so they stay idiomatic rather than float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def as_torch(x: Any) -> torch.Tensor:
    """A torch tensor sharing ``x``'s memory (numpy on the host, a tensor as it is)."""
    return torch.from_numpy(x) if isinstance(x, np.ndarray) else x


def scratch(like: Any, shape: tuple[int, ...], dtype: str) -> Any:
    """An uninitialised buffer on ``like``'s device: numpy for numpy, torch for torch."""
    if isinstance(like, np.ndarray):
        return np.empty(shape, dtype=dtype)
    return torch.empty(shape, dtype=getattr(torch, dtype), device=like.device)


def flat(x: Any) -> Any:
    """A 1-D view of a contiguous array (writes through it reach ``x``)."""
    return x.reshape(-1)


def next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def row_warps(block: int, element_bytes: int) -> int:
    """Warps for a block that holds one row of ``block`` elements: at least 32 bytes per
    thread (two 16-byte loads in flight), at most 16 warps."""
    return max(1, min(16, block * element_bytes // (32 * 32)))


def host_shapes(cpu: list[Any], interp: list[Any]) -> dict[str, list[Any]]:
    """``DEVICE_SHAPES`` for the host executors: the CPU devices (``cpu``, ``cpu:amd``, ...),
    SYCL on the OpenCL CPU device, and the (slow) interpreter."""
    return {"cpu": cpu, "sycl": cpu, "interp": interp}


def randn(rng: np.random.Generator, shape: tuple[int, ...], dtype: str, scale: float = 1.0,
          device: str = "cpu") -> Any:
    """Normal values times ``scale`` in ``dtype``: a numpy array for a host device; for a GPU a
    torch tensor made there, from a seed drawn from ``rng`` (a fresh, reproducible draw per
    call, without generating hundreds of MB on the host and copying them over)."""
    kind, _, index = device.partition(":")
    if kind not in ("cuda", "hip"):
        return (rng.standard_normal(shape, dtype=np.float32) * scale).astype(dtype)
    where = f"cuda:{index if index.isdigit() else 0}"
    generator = torch.Generator(device=where).manual_seed(int(rng.integers(2**62)))
    values = torch.randn(shape, generator=generator, device=where, dtype=torch.float32)
    return (values * scale).to(getattr(torch, dtype))
