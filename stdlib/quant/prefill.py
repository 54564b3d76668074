"""The prefill path of the quantized linear: many activation rows, a tiled GEMM.

Each block owns a ``BM x BN`` tile of ``y`` (and, split ``SPLIT`` ways along K, one range of
its chunks) and walks K one packed chunk (``kc`` columns) at a time through rings of shared
buffers filled by ``tv.copy_async``: activations as they are, packed weights as they are stored.
Every warp dequantizes its share of a weight chunk once (``(q - z) * s`` in the activations'
dtype, magic-number casts), relabels it from fragment order to the real columns with a ``view``
and stores it into a shared tile, so weights are dequantized once per block, not once per warp
that reads them; the block then runs the ordinary tensor-core GEMM step (``ldmatrix``, ``mma``).

The dequantized tile is double-buffered and one chunk ahead: iteration ``i`` dequantizes chunk
``i + 1`` while it multiplies chunk ``i``, with no barrier between the two, so the scheduler
interleaves the dequantization's integer and half-precision work with the tensor-core work of
the same warp, and one barrier per chunk remains. For that, copy group ``g`` carries the
activations of chunk ``g`` with the weights of chunk ``g + 1``.

Split along K (few rows, so few output tiles), each block writes its f32 partial sums to
``part[split]``; ``splitk_sum`` adds them up in a fixed order (bias too) and rounds once.
"""

from __future__ import annotations

import tilevm as tv
from tilevm.layouts import shared_layout
from tilevm.stdlib.quant.layouts import Unit, tile_columns, tile_values, tile_words
from tilevm.stdlib.quant.params import group_params

STEP = 32  # columns per tensor-core step (one k16 pair of ldmatrix loads per operand)


@tv.kernel
def prefill_kernel(
    x: tv.Tensor,  # [M, K] f16/bf16
    w: tv.Tensor[tv.i32],  # [tiles, chunks, words] packed
    scales: tv.Tensor,  # [groups, N]
    zeros: tv.Tensor,  # [groups, N] (read when ZERO)
    bias: tv.Tensor,  # [N] (read when BIAS and SPLIT == 1)
    y: tv.Tensor,  # [M, N]
    part: tv.Tensor,  # [SPLIT, M, N] f32 partial sums (written when SPLIT > 1)
    FIELD: tv.constexpr,
    ZERO: tv.constexpr,
    BIAS: tv.constexpr,
    GROUP: tv.constexpr,  # columns per scale; 0: one scale per row
    BM: tv.constexpr,
    RN: tv.constexpr,  # 16-row weight tiles per block (BN = 16 RN)
    STAGES: tv.constexpr,
    GROUP_M: tv.constexpr,
    SPLIT: tv.constexpr,  # blocks along K (block_id(1) picks the range)
):
    unit = Unit(FIELD.bits)
    KC = unit.kc
    T = tv.num_threads() // 32  # groups of 32 lanes; each dequantizes RN / T weight tiles
    BN = 16 * RN
    M = y.shape[0]
    N = y.shape[1]
    # Blocks run in column groups of GROUP_M row tiles: neighbours share tiles in L2.
    pid = tv.block_id(0)
    tiles_n = tv.cdiv(N, BN)
    group = pid // (GROUP_M * tiles_n)
    first_m = group * GROUP_M
    rows = tv.minimum(tv.cdiv(M, BM) - first_m, GROUP_M)
    m0 = (first_m + (pid % (GROUP_M * tiles_n)) % rows) * BM
    n0 = (pid % (GROUP_M * tiles_n)) // rows * BN
    tile0 = n0 // 16
    per = tv.cdiv(w.shape[1], SPLIT)
    c0 = tv.block_id(1) * per  # this block's first chunk
    steps = tv.minimum(per, w.shape[1] - c0)

    x_ring = tv.shared([STAGES, BM, KC], x.dtype)
    w_ring = tv.shared(
        [STAGES, RN, 1, unit.words], tv.i32, layout=shared_layout([STAGES, RN, 1, unit.words])
    )  # as stored
    wf = tv.shared([2, BN, KC], x.dtype)  # two chunks' weights, dequantized, columns contiguous
    acc = tv.zeros([BM, BN], tv.f32)
    tv.copy_async(w_ring, w, [tile0, c0, 0], [0, 0, 0, 0])
    tv.commit_async()
    for s in tv.static_range(STAGES - 1):  # group s: activations of chunk s, weights of s + 1
        tv.copy_async(x_ring, x, [m0, (c0 + s) * KC], [s, 0, 0])
        tv.copy_async(w_ring, w, [tile0, c0 + s + 1, 0], [(s + 1) % STAGES, 0, 0, 0])
        tv.commit_async()
    tv.wait_async(STAGES - 1)  # the first chunk's weights have landed
    sz = group_params(scales, zeros, c0, 1, n0, BN, unit, ZERO, GROUP, True)
    _dequantize(w_ring, 0, wf, 0, sz, x.dtype, unit, RN, T, FIELD, ZERO, GROUP)
    # Scales and zero points come from global memory: the next chunk's are requested an
    # iteration before its dequantization needs them, so their latency is not exposed.
    sz = group_params(scales, zeros, c0 + 1, 1, n0, BN, unit, ZERO, GROUP, True)
    for i in range(steps):
        # group i has landed (activations of chunk i, weights of i + 1), and every thread is
        # done with iteration i - 1: its ring slots and dequantized tile may be refilled
        tv.wait_async(STAGES - 2)
        ahead = i + STAGES - 1
        tv.copy_async(x_ring, x, [m0, (c0 + ahead) * KC], [ahead % STAGES, 0, 0])
        tv.copy_async(w_ring, w, [tile0, c0 + ahead + 1, 0], [(ahead + 1) % STAGES, 0, 0, 0])
        tv.commit_async()
        # the next chunk's dequantization (unused past the range) and this chunk's products
        # are independent: no barrier between them
        sz_ahead = group_params(scales, zeros, c0 + i + 2, 1, n0, BN, unit, ZERO, GROUP, True)
        _dequantize(
            w_ring, (i + 1) % STAGES, wf, (i + 1) % 2, sz, x.dtype, unit, RN, T, FIELD, ZERO,
            GROUP,
        )  # fmt: skip
        sz = sz_ahead
        for j in tv.static_range(KC // STEP):
            a = tv.load_shared(x_ring, [i % STAGES, 0, j * STEP], [BM, STEP])
            b = tv.transpose(tv.load_shared(wf, [i % 2, 0, j * STEP], [BN, STEP]))
            acc = tv.dot(a, b, acc)
    tv.wait_async(0)
    if SPLIT > 1:
        tv.store(part, tv.reshape(acc, [1, BM, BN]), [tv.block_id(1), m0, n0])
    else:
        if BIAS:
            acc = acc + tv.reshape(tv.load(bias, [n0], [BN]).to(tv.f32), [1, BN])
        tv.store(y, acc.to(y.dtype), [m0, n0])


@tv.func
def _dequantize(w_ring, slot, wf, buf, sz, dtype, unit, RN, T, FIELD, ZERO, GROUP):
    """The weights in ring slot ``slot``, as ``(q - z) * s`` in ``dtype`` with ``sz = (s, z)``
    from ``group_params``, into ``wf[buf]`` (chunks past the end read zeros and are never
    multiplied)."""
    G = GROUP if GROUP else unit.kc
    BN = 16 * RN
    s, z = sz
    raw = tv.load_shared(w_ring, [slot, 0, 0, 0], [RN, 1, unit.words])
    raw = tv.annotate(raw, tile_words(unit, RN, T))
    q = tv.view(raw, dtype=FIELD, layout=tile_values(unit, RN, T, G, False))
    wt = q.to(dtype)  # [NG, G, BN]
    if ZERO:
        wt = wt - tv.reshape(z.to(dtype), [s.shape[0], 1, BN])
    wt = wt * tv.reshape(s.to(dtype), [s.shape[0], 1, BN])
    wt = tv.annotate(wt, tile_values(unit, RN, T, G, True))
    tv.store_shared(wf, tv.view(wt, layout=tile_columns(unit, RN, T)), [buf, 0, 0])


@tv.kernel
def splitk_sum(
    part: tv.Tensor[tv.f32],  # [SPLIT, M, N]
    bias: tv.Tensor,  # [N] (read when BIAS)
    y: tv.Tensor,  # [M, N]
    SPLIT: tv.constexpr,
    BIAS: tv.constexpr,
    BM: tv.constexpr,
    BN: tv.constexpr,
):
    """``y = sum(part, axis=0) (+ bias)``: the same order of additions on every run (no
    atomics), rounded once."""
    m0 = tv.block_id(1) * BM
    n0 = tv.block_id(0) * BN
    total = tv.sum(tv.load(part, [0, m0, n0], [SPLIT, BM, BN]), axis=0)
    if BIAS:
        total = total + tv.reshape(tv.load(bias, [n0], [BN]).to(tv.f32), [1, BN])
    tv.store(y, total.to(y.dtype), [m0, n0])
