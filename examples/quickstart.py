"""A first look at tilevm: data types of any width and the layout algebra.

Quantizes random weights to 3-bit integers and to the 6-bit float f6e3m2fn, packs them the way a
GPU kernel loads them, and shows how a tile is spread over a warp's threads, including the
tensor-core fragment that a 16x16 f16 operand must have.
"""

from __future__ import annotations

import numpy as np

import tilevm as tv
from tilevm.layouts import atoms, local, spatial


def quantize_demo(rng: np.random.Generator) -> None:
    weights = rng.standard_normal((4, 128)).astype(np.float32)
    for dt in (tv.i3, tv.f6e3m2fn, tv.f4e2m1fn):
        # one scale per row maps the row's largest magnitude onto the type's largest value
        scale = np.abs(weights).max(axis=1, keepdims=True) / float(dt.max)
        packed = tv.pack(weights / scale, dt)
        restored = tv.unpack(packed, dt, weights.shape).astype(np.float32) * scale
        error = np.abs(restored - weights).mean() / np.abs(weights).mean()
        print(
            f"{dt!s:>9}: {dt.bits} bits, range [{dt.min}, {dt.max}], "
            f"{weights.nbytes} bytes -> {packed.nbytes} bytes, mean relative error {error:.3f}"
        )
    print("first bytes of the packed i3 rows:", tv.pack(np.arange(8) - 4, tv.i3).tolist())


def layout_demo() -> None:
    tile = local(2, 1).spatial(4, 8)
    print(f"\n{tile!r}: {tile.shape} tile, {tile.num_threads} threads x {tile.local_size} slots")
    print(tile.table())
    a = atoms.MMA_M16N8K16_F16.a
    warp_tile = local(2, 1) * a
    print(f"\nmma.sync m16n8k16 A fragment: {a!r}")
    print(f"a 32x16 warp tile {warp_tile!r} divided by it: {warp_tile / a!r}")
    print(f"the tile reduced over columns: {tv.layouts.reduce(tile, [1])!r}")
    print(f"and a 4x4 thread arrangement: {spatial(4, 4)!r}")


if __name__ == "__main__":
    quantize_demo(np.random.default_rng())
    layout_demo()
