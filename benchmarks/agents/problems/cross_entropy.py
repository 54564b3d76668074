"""Cross-entropy loss per row: ``loss[b] = logsumexp(logits[b]) - logits[b, target[b]]``,
f16 logits, int64 targets, f32 loss and math.

One block per row streams the vocabulary in 4096-column chunks with an online logsumexp:
each thread keeps, per column position, a running maximum and a sum of exponentials
rescaled when the maximum grows (one exponential per element, no reduction inside the loop);
the block combines them once.
The target's logit is one load at a run-time offset read from the targets tensor.
Reference: ``torch.nn.functional.cross_entropy(logits.float(), target, reduction="none")``.
"""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F
from _helpers import as_torch, host_shapes, next_pow2, randn

import tilevm as tv

CATEGORY = "loss"
SHAPES = [(4096, 32000), (1024, 128256), (16, 128256), (33, 300), (1, 1), (7, 1000)]
DEVICE_SHAPES = host_shapes([(33, 300), (1, 1), (7, 5000), (4, 4096)], [(5, 37), (3, 300)])
TOLERANCE = {"atol": 1e-4, "rtol": 1e-5}
MAX_BLOCK = 4096


@tv.kernel
def cross_entropy(
    logits: tv.Tensor, target: tv.Tensor, loss: tv.Tensor[tv.f32], BLOCK: tv.constexpr
):
    row = tv.block_id(0)
    # A finite floor below any f16 logit: padding (-inf) then adds exp(-inf) = 0, never the
    # NaN of exp(-inf - -inf).
    m = tv.full([1, BLOCK], -1e30, tv.f32)
    s = tv.zeros([1, BLOCK], tv.f32)
    for k in tv.range(0, logits.shape[1], BLOCK):
        v = tv.load(logits, [row, k], [1, BLOCK], other=float("-inf")).to(tv.f32)
        d = v - m
        e = tv.exp(-tv.abs(d))  # one exponential per element either way
        s = tv.where(d > 0.0, s * e + 1.0, s + e)  # a new maximum rescales the old sum
        m = tv.maximum(m, v)
    top = tv.max(m, axis=1, keepdims=True)
    total = tv.sum(s * tv.exp(m - top), axis=1)
    t = tv.sum(tv.load(target, [row], [1])).to(tv.i32)  # the target index, as a scalar
    picked = tv.reshape(tv.load(logits, [row, t], [1, 1]), [1]).to(tv.f32)
    tv.store(loss, tv.log(total) + tv.reshape(top, [1]) - picked, [row])


def make_inputs(shape, device, rng):
    rows, vocab = shape
    target = rng.integers(0, vocab, rows).astype(np.int64)
    return randn(rng, (rows, vocab), "float16", 3.0, device=device), target


def outputs(logits, target):
    return [((logits.shape[0],), "float32")]


def solution(logits, target, loss, device):
    block = min(MAX_BLOCK, next_pow2(logits.shape[1]))
    warps = max(1, min(8, block // 256))
    cross_entropy[logits.shape[0],](logits, target, loss, BLOCK=block, warps=warps, device=device)


def reference(logits, target):
    return F.cross_entropy(as_torch(logits).float(), as_torch(target), reduction="none")
