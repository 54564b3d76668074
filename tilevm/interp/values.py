"""Run-time values of the interpreter.

A register tile is stored the way a GPU holds it: ``bits[thread, slot]``, the bit pattern each
thread keeps in each slot of the tile's layout. Elementwise work goes through the logical view
(values by index); ``view`` works on the bits, so it behaves exactly as on hardware.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from tilevm.dtypes import DataType
from tilevm.layouts import RegisterLayout, SharedLayout


@dataclass
class Tile:
    dtype: DataType
    layout: RegisterLayout
    bits: np.ndarray  # [num_threads, local_size] of dtype.storage

    @property
    def shape(self) -> tuple[int, ...]:
        return self.layout.shape

    def values(self) -> np.ndarray:
        """The tile by logical index (decoded values)."""
        out = np.empty(self.shape, dtype=self.dtype.value_dtype)
        out[_index(self.layout)] = self.dtype.decode(self.bits)
        return out

    def codes(self) -> np.ndarray:
        """The tile's bit patterns by logical index."""
        out = np.empty(self.shape, dtype=self.dtype.storage)
        out[_index(self.layout)] = self.bits
        return out

    @classmethod
    def from_codes(cls, dtype: DataType, layout: RegisterLayout, codes: np.ndarray) -> Tile:
        codes = np.broadcast_to(codes, layout.shape)
        return cls(dtype, layout, codes[_index(layout)].astype(dtype.storage))


@lru_cache(maxsize=256)
def _index(layout: RegisterLayout) -> tuple[np.ndarray, ...]:
    """Where each (thread, slot) sits in the tile: asked for by every tile instruction of every
    block, so computed once per layout."""
    indices = layout.indices()
    indices.flags.writeable = False  # shared by every tile of this layout
    return tuple(indices[..., d] for d in range(layout.rank))


@dataclass
class Scalar:
    dtype: DataType
    value: int | float | bool


@dataclass
class Shared:
    dtype: DataType
    layout: SharedLayout
    codes: np.ndarray  # flat, cosize elements


@dataclass
class GlobalTensor:
    """A kernel argument as the interpreter sees it: bit patterns with element strides."""

    dtype: DataType
    codes: np.ndarray  # an array of dtype.storage sharing memory with the argument when possible
    shape: tuple[int, ...]
    strides: tuple[int, ...]
