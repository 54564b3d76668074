"""A first look at tilevm: a kernel, data types of any width, and the layout algebra.

Runs a kernel on the CPU (the default device for numpy arrays) and on the reference
interpreter; quantizes random weights to 3-bit integers and to the 6-bit float f6e3m2fn and packs
them the way a GPU kernel loads them; and shows how a tile is spread over a warp's threads,
including the tensor-core fragment a 16x16 f16 operand must have.
"""

from __future__ import annotations

import numpy as np

import tilevm as tv
from tilevm.layouts import atoms, local, spatial


@tv.kernel
def scaled_add(
    x: tv.Tensor[tv.f32],
    y: tv.Tensor[tv.f32],
    out: tv.Tensor[tv.f32],
    alpha: tv.f32,
    BLOCK: tv.constexpr = 256,
):
    start = tv.block_id(0) * BLOCK
    a = tv.load(x, [start], [BLOCK])
    b = tv.load(y, [start], [BLOCK])
    tv.store(out, alpha * a + b, [start])


def kernel_demo(rng: np.random.Generator) -> None:
    n = 1000
    x, y = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    out = np.full(n, np.nan, np.float32)
    scaled_add[tv.cdiv(n, 256),](x, y, out, 2.0)  # numpy arrays: compiled for this CPU
    error = np.abs(out - (np.float32(2.0) * x + y)).max()
    print(f"scaled_add on the CPU: max error {error} (devices here: {tv.devices()})")
    again = np.full(n, np.nan, np.float32)
    scaled_add[tv.cdiv(n, 256),](x, y, again, 2.0, device="interp")  # the reference semantics
    print(f"the interpreter agrees bit for bit: {np.array_equal(out, again)}")
    print(scaled_add.ir(x, y, out, 2.0), end="\n\n")


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
    kernel_demo(np.random.default_rng())
    quantize_demo(np.random.default_rng())
    layout_demo()
