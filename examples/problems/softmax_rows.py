"""A problem module for ``python -m tilevm check|bench``: softmax over each row of a matrix.

The solution returns its output (the harness checks its exact type, dtype and shape against
the reference's). See docs/harness.md for the contract.
"""

from __future__ import annotations

import numpy as np

import tilevm as tv

SHAPES = [(33, 300), (1, 1), (7, 1000), (128, 97), (5, 2049)]
DEVICE_SHAPES = {"interp": [(5, 37), (3, 300)]}  # the interpreter is slow: small shapes there
TOLERANCE = {"atol": 1e-6, "rtol": 1e-5}


@tv.kernel
def softmax(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32], BLOCK: tv.constexpr):
    row = tv.block_id(0)
    v = tv.load(x, [row, 0], [1, BLOCK], other=float("-inf"))  # padding never wins the max
    e = tv.exp(v - tv.max(v, axis=1, keepdims=True))
    tv.store(out, e / tv.sum(e, axis=1, keepdims=True), [row, 0])


def make_inputs(shape, device, rng):
    rows, cols = shape
    return ((rng.standard_normal((rows, cols)) * 4).astype(np.float32),)


def solution(x, device):
    out = np.empty_like(x) if isinstance(x, np.ndarray) else x.new_empty(x.shape)
    block = 1 << (x.shape[1] - 1).bit_length()  # the next power of two holds the row
    softmax[x.shape[0],](x, out, BLOCK=block, device=device)
    return out


def reference(x):
    x = np.asarray(x.cpu() if hasattr(x, "cpu") else x, dtype=np.float64)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
