"""Maximum and argmax of each row (f16 values, int64 indices), the first index of the maximum
on ties, as ``torch.argmax``.

The language has no argmax reduction; it is two reductions: the maximum, then the smallest
column index whose value equals it. One block per row walks the row in chunks, each thread
keeping its columns' running maximum and where it was first seen; two block reductions at
the end.
Inputs hold no NaN (a NaN would be the maximum for torch; here it never compares equal).
Reference: ``x.amax(dim=1)`` and ``x.argmax(dim=1)`` (torch).
"""

from __future__ import annotations

from _helpers import as_torch, host_shapes, next_pow2

import tilevm as tv

CATEGORY = "reduction"
SHAPES = [(4096, 32000), (16384, 4096), (64, 128256), (33, 300), (1, 1), (7, 1000)]
DEVICE_SHAPES = host_shapes([(33, 300), (1, 1), (7, 5000), (4, 4096)], [(5, 37), (3, 300)])
MAX_BLOCK = 4096


@tv.kernel
def row_argmax(x: tv.Tensor, values: tv.Tensor, indices: tv.Tensor, BLOCK: tv.constexpr):
    row = tv.block_id(0)
    cols = tv.arange(0, BLOCK)[None, :]
    # per column position: the running maximum and where it was first seen (no reduction,
    # no barrier inside the loop; a later equal value does not replace an earlier one)
    best = tv.full([1, BLOCK], float("-inf"), tv.f32)
    best_col = tv.zeros([1, BLOCK], tv.i32)
    for k in tv.range(0, x.shape[1], BLOCK):
        v = tv.load(x, [row, k], [1, BLOCK], other=float("-inf")).to(tv.f32)
        better = v > best
        best = tv.where(better, v, best)
        best_col = tv.where(better, cols + k, best_col)
    m = tv.max(best, axis=1, keepdims=True)
    first = tv.min(tv.where(best == m, best_col, x.shape[1]), axis=1)
    tv.store(values, tv.reshape(m, [1]).to(values.dtype), [row])
    tv.store(indices, first.to(tv.i64), [row])


def make_inputs(shape, device, rng):
    rows, cols = shape
    # integers in a small range: many ties, so "the first maximum" is really tested
    values = rng.integers(-1000, 1000, (rows, cols)) / 8
    return (values.astype("float16"),)


def outputs(x):
    return [((x.shape[0],), "float16"), ((x.shape[0],), "int64")]


def solution(x, values, indices, device):
    block = min(MAX_BLOCK, next_pow2(x.shape[1]))
    warps = max(1, min(8, block // 256))
    row_argmax[x.shape[0],](x, values, indices, BLOCK=block, warps=warps, device=device)


def reference(x):
    t = as_torch(x)
    return t.amax(dim=1), t.argmax(dim=1)
