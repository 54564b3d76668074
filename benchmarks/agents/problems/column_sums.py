"""Sums of the columns of a 2-D f32 tensor: ``out[n] = sum_m x[m, n]``, f32 accumulation.

A column strip is too little work for one block on a wide GPU, so the rows are split too:
block ``(j, s)`` sums rows ``s*rows_per_split ...`` of a 128-column strip into a ``[32, 128]``
register tile (elementwise adds, no reduction inside the loop, 16-byte loads), reduces it
across its threads once and writes one partial row; a second kernel adds the partial rows in
a fixed order (deterministic, no atomics). Reference: ``x.sum(dim=0)`` in f32 (torch).
"""

from __future__ import annotations

from _helpers import as_torch, host_shapes, randn, scratch

import tilevm as tv

CATEGORY = "reduction"
SHAPES = [(4096, 4096), (16384, 1024), (1024, 14336), (33, 300), (1, 1), (1000, 7)]
DEVICE_SHAPES = host_shapes([(33, 300), (1, 1), (1000, 7), (300, 257)], [(5, 37), (70, 130)])
TOLERANCE = {"atol": 1e-4, "rtol": 1e-5}  # f32 sums of up to 16384 terms of size ~1
BM, BN, WARPS = 32, 128, 4
TARGET_BLOCKS = 528  # four blocks per multiprocessor of an H200 (132)


@tv.kernel
def partial_column_sums(
    x: tv.Tensor[tv.f32], partial: tv.Tensor[tv.f32], ROWS: tv.constexpr, BM: tv.constexpr,
    BN: tv.constexpr,
):  # fmt: skip
    n0 = tv.block_id(0) * BN
    split = tv.block_id(1)
    acc = tv.zeros([BM, BN], tv.f32)
    for m in tv.range(split * ROWS, tv.minimum(split * ROWS + ROWS, x.shape[0]), BM):
        acc += tv.load(x, [m, n0], [BM, BN])  # ROWS is whole tiles: no row read twice
    tv.store(partial, tv.sum(acc, axis=0, keepdims=True), [split, n0])


@tv.kernel
def add_partials(
    partial: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32], S: tv.constexpr, BN: tv.constexpr
):
    n0 = tv.block_id(0) * BN
    tv.store(out, tv.sum(tv.load(partial, [0, n0], [S, BN]), axis=0), [n0])


def make_inputs(shape, device, rng):
    return (randn(rng, shape, "float32", device=device),)


def outputs(x):
    return [((x.shape[1],), "float32")]


def solution(x, out, device):
    rows, cols = x.shape
    strips = tv.cdiv(cols, BN)
    splits = max(1, min(tv.cdiv(rows, BM), TARGET_BLOCKS // strips, 64))
    per_split = tv.cdiv(tv.cdiv(rows, splits), BM) * BM  # whole BM tiles: no overlap
    splits = tv.cdiv(rows, per_split)
    partial = scratch(x, (splits, cols), "float32")
    partial_column_sums[strips, splits](
        x, partial, ROWS=per_split, BM=BM, BN=BN, warps=WARPS, device=device
    )
    s = 1 << (splits - 1).bit_length()
    add_partials[strips,](partial, out, S=s, BN=BN, warps=WARPS, device=device)


def reference(x):
    return as_torch(x).sum(dim=0)
