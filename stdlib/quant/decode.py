"""The decode path of the quantized linear: few activation rows, weights streamed once.

``y[m, n] = sum_k x[m, k] * w[n, k]`` with ``w = (q - z) * s`` per group. A block owns ``RN``
tiles of 16 weight rows and every activation row of its ``BM``-row slice; its warps split K (warp
``s`` takes chunks ``s, s + S, ...``), so small N still fills the GPU and every warp streams
coalesced 16-byte pieces of packed weights. Per chunk a warp:

* loads its packed words and ``view``s them as the weight type (fragment order),
* casts them to the activations' dtype (magic numbers: two weights per and/or and packed add),
  subtracting zero points in that dtype (exact: small integers),
* multiplies them on the tensor cores with the activations (loaded 16 bytes at a time and
  relabelled by a ``view`` into the same fragment order) as a batched dot over
  ``[warps, groups in the chunk]``, so each quantization group's partial sum is separate,
* scales each group's partial sums in f32 and adds them up.

The warps' partial results meet once at the end (a reduction over the warp axis).
"""

from __future__ import annotations

import tilevm as tv
from tilevm.layouts import shared_layout
from tilevm.stdlib.quant.layouts import (
    Unit,
    activations,
    activations_relabelled,
    weight_values,
    weight_words,
)
from tilevm.stdlib.quant.params import group_params


@tv.kernel
def decode_kernel(
    x: tv.Tensor,  # [M, K] f16/bf16
    w: tv.Tensor[tv.i32],  # [tiles, chunks, words] packed
    scales: tv.Tensor,  # [groups, N]
    zeros: tv.Tensor,  # [groups, N] (read when ZERO)
    bias: tv.Tensor,  # [N] (read when BIAS)
    y: tv.Tensor,  # [M, N]
    FIELD: tv.constexpr,  # the dtype the packed fields are read as
    ZERO: tv.constexpr,
    BIAS: tv.constexpr,
    GROUP: tv.constexpr,  # columns per scale; 0: one scale per row
    RN: tv.constexpr,  # 16-row weight tiles per block
    BM: tv.constexpr,  # activation rows per block (8 or 16)
    STAGES: tv.constexpr,  # 0: the next chunk's words wait in registers; else a shared ring
):
    unit = Unit(FIELD.bits)
    S = tv.num_threads() // 32  # groups of 32 lanes (one per warp on NVIDIA)
    G = GROUP if GROUP else unit.kc
    NG = unit.kc // G
    BN = 16 * RN
    tile0 = tv.block_id(0) * RN
    n0 = tile0 * 16
    m0 = tv.block_id(1) * BM
    acc = tv.zeros([S, BN, BM], tv.f32)
    if STAGES:
        # A ring of STAGES rounds of chunks (one per warp) in shared memory, filled by cp.async:
        # STAGES - 1 rounds in flight per block at no cost in registers.
        shape = [STAGES, RN, S, unit.words]
        ring = tv.shared(shape, tv.i32, layout=shared_layout(shape))
        for r in tv.static_range(STAGES - 1):
            tv.copy_async(ring, w, [tile0, r * S, 0], [r, 0, 0, 0])
            tv.commit_async()
    raw, s, z = _fetch(w, scales, zeros, tile0, 0, unit, RN, S, ZERO, GROUP, not STAGES)
    for i in range(tv.cdiv(w.shape[1], S)):
        c0 = i * S
        # The next chunk's weights (with its scales and zero points) are requested before this
        # one is used: two chunks in flight per warp. (Three, one more tuple carried through
        # the loop, measured slower on an H200 at every config, and so did prefetching the
        # activations: they come from L2, and the registers cost more occupancy than they hide.)
        ahead = _fetch(w, scales, zeros, tile0, c0 + S, unit, RN, S, ZERO, GROUP, not STAGES)
        if STAGES:
            tv.wait_async(STAGES - 2)  # round i landed; every warp is done with round i - 1
            later = i + STAGES - 1
            tv.copy_async(ring, w, [tile0, later * S, 0], [later % STAGES, 0, 0, 0])
            tv.commit_async()
            words = tv.load_shared(ring, [i % STAGES, 0, 0, 0], [RN, S, unit.words])
            words = tv.annotate(words, weight_words(unit, RN, S))
        else:
            words = raw
        xt = tv.load(x, [m0, c0 * unit.kc], [BM, S * unit.kc], layout=activations(unit, BM, S))
        q = tv.view(words, dtype=FIELD, layout=weight_values(unit, RN, S, G))
        wt = q.to(x.dtype)  # [S, NG, BN, G]
        if ZERO and GROUP:
            wt = wt - tv.reshape(z.to(x.dtype), [S, NG, BN, 1])
        if ZERO and not GROUP:
            wt = wt - tv.reshape(z.to(x.dtype), [1, 1, BN, 1])
        xb = tv.view(xt, layout=activations_relabelled(unit, BM, S, G))  # [S, NG, G, BM]
        part = tv.dot(wt, xb)  # [S, NG, BN, BM]
        if GROUP:
            part = part * tv.reshape(s.to(tv.f32), [S, NG, BN, 1])
        acc = acc + tv.sum(part, axis=1)
        raw, s, z = ahead
    total = tv.sum(acc, axis=0)  # [BN, BM]: the warps' partial sums meet
    if not GROUP:
        total = total * tv.reshape(tv.load(scales, [0, n0], [1, BN]).to(tv.f32), [BN, 1])
    if BIAS:
        total = total + tv.reshape(tv.load(bias, [n0], [BN]).to(tv.f32), [BN, 1])
    tv.store(y, tv.transpose(total).to(y.dtype), [m0, n0])


@tv.func
def _fetch(w, scales, zeros, tile0, c0, unit, RN, S, ZERO, GROUP, WORDS):
    """The packed words (if ``WORDS``), scales and zero points of chunks ``c0 .. c0 + S - 1``
    (one per warp); past the end they read as zeros. Per-row scales apply at the end."""
    raw = 0
    if WORDS:
        raw = tv.load(w, [tile0, c0, 0], [RN, S, unit.words], layout=weight_words(unit, RN, S))
    s, z = group_params(scales, zeros, c0, S, tile0 * 16, 16 * RN, unit, ZERO, GROUP, False)
    return raw, s, z
