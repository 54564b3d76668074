"""Softmax over each row of a matrix: one block per row, the row in one tile."""

from __future__ import annotations

import numpy as np

import tilevm as tv


@tv.kernel
def softmax(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32], BLOCK: tv.constexpr):
    row = tv.block_id(0)
    v = tv.load(x, [row, 0], [1, BLOCK], other=float("-inf"))  # padding never wins the max
    shifted = v - tv.max(v, axis=1, keepdims=True)
    e = tv.exp(shifted)
    tv.store(out, e / tv.sum(e, axis=1, keepdims=True), [row, 0])


def run(
    rows: int = 33, cols: int = 300, device: str | None = None, seed: int | None = None
) -> float:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, cols)) * 4).astype(np.float32)
    out = np.full_like(x, np.nan)
    block = 1 << (cols - 1).bit_length()  # the next power of two holds the row
    softmax[rows,](x, out, BLOCK=block, device=device)
    ref = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
    ref /= ref.sum(axis=1, keepdims=True)
    return float(np.abs(out - ref).max())


if __name__ == "__main__":
    print(f"softmax: max error {run():.1e}")
