"""Running sums along each row of a matrix, and a running maximum: ``tv.cumsum`` and
``tv.associative_scan``. A block takes a few rows; rows longer than one tile are done tile by
tile, each tile's sums shifted by the total of the tiles before it."""

from __future__ import annotations

import numpy as np

import tilevm as tv


@tv.kernel
def row_cumsum(
    x: tv.Tensor[tv.f32],
    out: tv.Tensor[tv.f32],
    BLOCK_M: tv.constexpr = 4,
    BLOCK_N: tv.constexpr = 256,
):
    m0 = tv.block_id(0) * BLOCK_M
    carry = tv.zeros([BLOCK_M, 1], tv.f32)  # each row's total so far
    for n0 in range(0, x.shape[1], BLOCK_N):
        tile = tv.load(x, [m0, n0], [BLOCK_M, BLOCK_N])  # outside the matrix: 0, adds nothing
        tv.store(out, tv.cumsum(tile, axis=1) + carry, [m0, n0])
        carry = carry + tv.sum(tile, axis=1, keepdims=True)


@tv.func
def larger(a, b):
    return tv.maximum(a, b)


@tv.kernel
def row_running_max(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32], BLOCK_N: tv.constexpr):
    row = tv.block_id(0)
    v = tv.load(x, [row, 0], [1, BLOCK_N], other=float("-inf"))  # padding never wins
    tv.store(out, tv.associative_scan(v, 1, larger), [row, 0])


def run(
    rows: int = 37, cols: int = 1000, device: str | None = None, seed: int | None = None
) -> float:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    sums = np.full_like(x, np.nan)
    row_cumsum[tv.cdiv(rows, 4),](x, sums, device=device)
    peaks = np.full_like(x, np.nan)
    block = 1 << (cols - 1).bit_length()  # the next power of two holds the row
    row_running_max[rows,](x, peaks, BLOCK_N=block, device=device)
    assert np.array_equal(peaks, np.maximum.accumulate(x, axis=1))
    ref = np.cumsum(x.astype(np.float64), axis=1)
    scale = np.cumsum(np.abs(x.astype(np.float64)), axis=1)
    return float((np.abs(sums - ref) / scale).max())  # relative to the sum of magnitudes


if __name__ == "__main__":
    print(f"cumsum: max relative error {run():.1e}")
