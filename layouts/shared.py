"""Shared-memory layouts: strides plus an optional XOR swizzle, mapping indices to offsets.

A swizzle permutes offsets inside aligned blocks so that threads reading a column of a row-major
tile hit different banks. ``Swizzle(bits, base, shift)`` XORs ``bits`` bits taken ``shift`` places
above bit ``base`` into the bits at ``base``::

    offset:  ... | yyy (bits at base+shift) | ... | zzz (bits at base) | base low bits
    result = offset ^ ((offset >> shift) & (((1 << bits) - 1) << base))

Offsets are counted in elements; ``byte_offset`` scales them by the element width.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tilevm.layouts.errors import LayoutError


@dataclass(frozen=True)
class Swizzle:
    bits: int
    base: int
    shift: int

    def __post_init__(self) -> None:
        if min(self.bits, self.base, self.shift) < 0 or self.shift < self.bits:
            raise LayoutError(
                "invalid swizzle",
                expected="bits, base, shift >= 0 and shift >= bits (so the map is a permutation)",
                found=f"swizzle(bits={self.bits}, base={self.base}, shift={self.shift})",
                code="layout-args",
            )

    def __call__(self, offset):
        mask = ((1 << self.bits) - 1) << self.base
        return offset ^ ((offset >> self.shift) & mask)

    def __repr__(self) -> str:
        return f"swizzle({self.bits}, {self.base}, {self.shift})"


def swizzle(bits: int, base: int, shift: int) -> Swizzle:
    return Swizzle(bits, base, shift)


@dataclass(frozen=True)
class SharedLayout:
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    swizzle: Swizzle | None = None

    def offset(self, *index: int) -> int:
        """Element offset of ``index`` (after the swizzle)."""
        if len(index) == 1 and isinstance(index[0], (tuple, list)):
            index = tuple(index[0])
        if len(index) != len(self.shape) or any(not 0 <= i < n for i, n in zip(index, self.shape)):
            raise LayoutError(
                "index outside the shared layout's shape",
                expected=f"{len(self.shape)} coordinates within {list(self.shape)}",
                found=str(list(index)),
                code="layout-range",
            )
        linear = sum(i * s for i, s in zip(index, self.strides))
        return int(self.swizzle(linear)) if self.swizzle else int(linear)

    def offsets(self) -> np.ndarray:
        """Offsets of every index, as an array of ``shape``."""
        grids = np.indices(self.shape, dtype=np.int64)
        linear = sum(g * s for g, s in zip(grids, self.strides))
        return self.swizzle(linear) if self.swizzle else linear

    def byte_offset(self, index: Sequence[int], element_bits: int) -> int:
        """Offset in bytes for elements of ``element_bits`` bits (must land on a byte)."""
        bit = self.offset(*index) * element_bits
        if bit % 8:
            raise LayoutError(
                "element does not start on a byte boundary",
                expected="an index whose bit offset is a multiple of 8",
                found=f"bit offset {bit}",
                hint="address sub-byte elements through the word that holds them",
                code="layout-range",
            )
        return bit // 8

    @property
    def cosize(self) -> int:
        """Elements of storage the layout spans (largest offset + 1)."""
        return int(self.offsets().max()) + 1

    def is_injective(self) -> bool:
        offsets = self.offsets().reshape(-1)
        return np.unique(offsets).size == offsets.size

    def swizzled(self, bits: int, base: int, shift: int) -> SharedLayout:
        return SharedLayout(self.shape, self.strides, Swizzle(bits, base, shift))

    def __repr__(self) -> str:
        text = f"shared_layout({list(self.shape)}, strides={list(self.strides)})"
        return text + (
            f".swizzled({self.swizzle.bits}, {self.swizzle.base}, {self.swizzle.shift})"
            if self.swizzle
            else ""
        )

    def table(self) -> str:
        """The offsets as a grid (2-D layouts; others are shown flattened to rows)."""
        offsets = self.offsets().reshape(-1, self.shape[-1])
        width = len(str(int(offsets.max())))
        return "\n".join(" ".join(str(int(o)).rjust(width) for o in row) for row in offsets)


def shared_layout(
    shape: Sequence[int],
    strides: Sequence[int] | None = None,
    *,
    order: str = "row",
    swizzle: Swizzle | None = None,
) -> SharedLayout:
    """A shared layout with the given strides, or compact row- (``order='row'``) or column-major."""
    shape = tuple(int(n) for n in shape)
    if not shape or any(n < 1 for n in shape):
        raise LayoutError(
            "bad shared layout shape",
            expected="positive ints",
            found=str(list(shape)),
            code="layout-args",
        )
    if strides is None:
        if order not in ("row", "column"):
            raise LayoutError(
                "unknown order", expected="'row' or 'column'", found=repr(order), code="layout-args"
            )
        dims = range(len(shape) - 1, -1, -1) if order == "row" else range(len(shape))
        computed = [0] * len(shape)
        step = 1
        for d in dims:
            computed[d] = step
            step *= shape[d]
        strides = computed
    strides = tuple(int(s) for s in strides)
    if len(strides) != len(shape) or any(s < 0 for s in strides):
        raise LayoutError(
            "one non-negative stride per dimension",
            expected=f"{len(shape)} strides >= 0",
            found=str(list(strides)),
            code="layout-shape",
        )
    return SharedLayout(shape, strides, swizzle)


def swizzled_row_major(shape: Sequence[int], element_bits: int) -> SharedLayout:
    """Row-major, with each row's 16-byte chunks XOR-permuted by the row index so that eight
    consecutive rows read at the same chunk (a warp's ``ldmatrix``, or any column walk of
    16-byte vectors) fall in eight different 16-byte bank groups of a 128-byte line.

    Offsets are in elements: chunk bits start at ``base`` (16 bytes of elements); the row index
    starts ``log2(chunks per row)`` bits above. Rows of under 32 bytes, or not a power of two of
    chunks, stay plain row-major.
    """
    layout = shared_layout(shape)
    element_bytes = max(1, element_bits // 8)
    chunks = shape[-1] * element_bytes // 16
    if len(shape) < 2 or shape[-1] * element_bytes % 16 or chunks < 2 or chunks & (chunks - 1):
        return layout
    base = (16 // element_bytes).bit_length() - 1
    row_shift = chunks.bit_length() - 1
    bits = min(row_shift, 3)
    return layout.swizzled(bits, base, max(3, row_shift))
