"""A problem module for ``python -m tilevm check|bench``: y = W x, a matrix-vector product.

The harness allocates the output (``outputs``), filled with NaN, and the solution writes into
it: a kernel that skips a row leaves NaN there. See docs/harness.md for the contract.
"""

from __future__ import annotations

import numpy as np

import tilevm as tv

SHAPES = [(1, 1), (33, 257), (100, 64), (257, 1000)]  # (rows of W, columns of W)
DEVICE_SHAPES = {"interp": [(5, 37), (9, 130)]}
TOLERANCE = {"atol": 1e-4, "rtol": 1e-4}  # f32 sums of up to 1000 products

ROWS = 4  # rows of W per block
BLOCK_K = 128  # columns per step of the loop over K


@tv.kernel
def gemv(w: tv.Tensor[tv.f32], x: tv.Tensor[tv.f32], y: tv.Tensor[tv.f32]):
    row = tv.block_id(0) * ROWS
    acc = tv.zeros([ROWS], tv.f32)
    for k in tv.range(0, w.shape[1], BLOCK_K):
        tile = tv.load(w, [row, k], [ROWS, BLOCK_K])  # outside W reads 0
        v = tv.load(x, [k], [BLOCK_K])
        acc += tv.sum(tile * tv.reshape(v, [1, BLOCK_K]), axis=1)
    tv.store(y, acc, [row])


def make_inputs(shape, device, rng):
    rows, cols = shape
    w = rng.standard_normal((rows, cols)).astype(np.float32)
    x = rng.standard_normal(cols).astype(np.float32)
    return w, x


def outputs(w, x):
    return [((w.shape[0],), "float32")]


def solution(w, x, y, device):
    gemv[tv.cdiv(w.shape[0], ROWS),](w, x, y, device=device)


def reference(w, x):
    w64 = np.asarray(w.cpu() if hasattr(w, "cpu") else w, dtype=np.float64)
    x64 = np.asarray(x.cpu() if hasattr(x, "cpu") else x, dtype=np.float64)
    return (w64 @ x64).astype(np.float32)
