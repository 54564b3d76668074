"""Transpose of a 2-D f16 tensor through shared memory: ``out = x.T`` (exact).

A block moves one 64x64 tile: 16-byte loads of its rows into a shared tile, a barrier, then
each thread reads eight consecutive rows of one column out of shared memory (threads of a
warp on neighbouring columns: no bank conflicts beyond two-way; the default shared layout's
swizzle spreads the rows) and writes them as one 16-byte store of the output's row.
Reference: ``x.t().contiguous()`` (torch).
"""

from __future__ import annotations

from _helpers import as_torch, host_shapes, randn

import tilevm as tv
from tilevm.layouts import column_spatial, local

CATEGORY = "data movement"
SHAPES = [(4096, 4096), (8192, 14336), (16, 4096), (33, 300), (1, 1), (70, 130)]
DEVICE_SHAPES = host_shapes([(33, 300), (1, 1), (70, 130), (128, 192)], [(5, 37), (70, 130)])
B, WARPS = 64, 4


@tv.kernel
def transpose(x: tv.Tensor, out: tv.Tensor, B: tv.constexpr):
    m0 = tv.block_id(1) * B
    n0 = tv.block_id(0) * B
    rows_per_pass = tv.num_threads() * 8 // B
    # rows of eight elements (16 bytes), threads row-major: the global load's layout
    by_rows = local(B // rows_per_pass, 1).spatial(rows_per_pass, B // 8).local(1, 8)
    # the output tile [n, m]: threads first down n (a column of the shared tile), then m
    by_columns = local(B // rows_per_pass, 1) * column_spatial(rows_per_pass, B // 8)
    tile = tv.shared([B, B], x.dtype)
    tv.store_shared(tile, tv.load(x, [m0, n0], [B, B], layout=by_rows))
    tv.sync()
    t = tv.annotate(tv.transpose(tv.load_shared(tile)), by_columns * local(1, 8))
    tv.store(out, t, [n0, m0])


def make_inputs(shape, device, rng):
    return (randn(rng, shape, "float16", device=device),)


def outputs(x):
    return [((x.shape[1], x.shape[0]), "float16")]


def solution(x, out, device):
    rows, cols = x.shape
    transpose[tv.cdiv(cols, B), tv.cdiv(rows, B)](x, out, B=B, warps=WARPS, device=device)


def reference(x):
    return as_torch(x).t().contiguous()
