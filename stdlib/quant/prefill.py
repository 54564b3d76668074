"""The prefill path of the quantized linear: many activation rows, a tiled GEMM.

Each block owns a ``BM x BN`` tile of ``y`` and walks K one packed chunk (``kc`` columns) at a
time through rings of shared buffers filled by ``tv.copy_async``: activations as they are, packed
weights as they are stored. Per chunk, every warp dequantizes its share of the weight tile once
(``(q - z) * s`` in the activations' dtype, magic-number casts), relabels it from fragment order
to the real columns with a ``view``, and stores it into a shared tile; then the block runs the
ordinary tensor-core GEMM step on the two shared tiles (``ldmatrix`` and ``mma``), 32 columns
at a time. Weights are thus dequantized once per block, not once per warp that reads them.
"""

from __future__ import annotations

import tilevm as tv
from tilevm.layouts import shared_layout
from tilevm.stdlib.quant.layouts import Unit, tile_columns, tile_values, tile_words

STEP = 32  # columns per tensor-core step (one k16 pair of ldmatrix loads per operand)


@tv.kernel
def prefill_kernel(
    x: tv.Tensor,  # [M, K] f16/bf16
    w: tv.Tensor[tv.i32],  # [tiles, chunks, words] packed
    scales: tv.Tensor,  # [groups, N]
    zeros: tv.Tensor,  # [groups, N] (read when ZERO)
    bias: tv.Tensor,  # [N] (read when BIAS)
    y: tv.Tensor,  # [M, N]
    FIELD: tv.constexpr,
    ZERO: tv.constexpr,
    BIAS: tv.constexpr,
    GROUP: tv.constexpr,  # columns per scale; 0: one scale per row
    BM: tv.constexpr,
    RN: tv.constexpr,  # 16-row weight tiles per block (BN = 16 RN)
    STAGES: tv.constexpr,
    GROUP_M: tv.constexpr,
):
    unit = Unit(FIELD.bits)
    KC = unit.kc
    T = tv.num_threads() // 32  # groups of 32 lanes; each dequantizes RN / T weight tiles
    G = GROUP if GROUP else KC
    NG = KC // G
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

    x_ring = tv.shared([STAGES, BM, KC], x.dtype)
    w_ring = tv.shared(
        [STAGES, RN, 1, unit.words], tv.i32, layout=shared_layout([STAGES, RN, 1, unit.words])
    )  # as stored
    wf = tv.shared([BN, KC], x.dtype)  # the chunk's weights, dequantized, columns contiguous
    acc = tv.zeros([BM, BN], tv.f32)
    steps = w.shape[1]
    for s in tv.static_range(STAGES - 1):
        tv.copy_async(x_ring, x, [m0, s * KC], [s, 0, 0])
        tv.copy_async(w_ring, w, [tile0, s, 0], [s, 0, 0, 0])
        tv.commit_async()
    for i in range(steps):
        tv.wait_async(STAGES - 2)  # chunk i has landed; everyone is done with chunk i - 1
        ahead = i + STAGES - 1
        tv.copy_async(x_ring, x, [m0, ahead * KC], [ahead % STAGES, 0, 0])
        tv.copy_async(w_ring, w, [tile0, ahead, 0], [ahead % STAGES, 0, 0, 0])
        tv.commit_async()
        stage = i % STAGES
        raw = tv.load_shared(w_ring, [stage, 0, 0, 0], [RN, 1, unit.words])
        raw = tv.annotate(raw, tile_words(unit, RN, T))
        q = tv.view(raw, dtype=FIELD, layout=tile_values(unit, RN, T, G, False))
        wt = q.to(x.dtype)  # [NG, G, BN]
        if ZERO and GROUP:
            wt = wt - tv.reshape(tv.load(zeros, [i * NG, n0], [NG, BN]).to(x.dtype), [NG, 1, BN])
        if ZERO and not GROUP:
            wt = wt - tv.reshape(tv.load(zeros, [0, n0], [1, BN]).to(x.dtype), [1, 1, BN])
        if GROUP:
            wt = wt * tv.reshape(tv.load(scales, [i * NG, n0], [NG, BN]).to(x.dtype), [NG, 1, BN])
        else:
            wt = wt * tv.reshape(tv.load(scales, [0, n0], [1, BN]).to(x.dtype), [1, 1, BN])
        wt = tv.annotate(wt, tile_values(unit, RN, T, G, True))
        tv.store_shared(wf, tv.view(wt, layout=tile_columns(unit, RN, T)))
        tv.sync()
        for j in tv.static_range(KC // STEP):
            a = tv.load_shared(x_ring, [stage, 0, j * STEP], [BM, STEP])
            b = tv.transpose(tv.load_shared(wf, [0, j * STEP], [BN, STEP]))
            acc = tv.dot(a, b, acc)
    tv.wait_async(0)
    if BIAS:
        acc = acc + tv.reshape(tv.load(bias, [n0], [BN]).to(tv.f32), [1, BN])
    tv.store(y, acc.to(y.dtype), [m0, n0])
