"""A linear layer with a fused epilogue: ``out = gelu_tanh(a @ w.T + bias)``, f16 ``a [M, K]``,
``w [N, K]`` (an ``nn.Linear`` weight), ``bias [N]``, f16 out, f32 accumulation.

Tensor cores through ``tv.dot`` (``mma.sync`` fed by ``ldmatrix`` on NVIDIA): each block owns
a 128x128 tile of the output (64x64 for small problems), walks K in 32-wide steps through a
4-deep ring of shared buffers filled by ``tv.copy_async`` (cp.async), blocks ordered in groups
of 8 row tiles so neighbours share tiles of ``a`` and ``w`` in L2. The bias and the GELU are
applied to the f32 accumulator before the one rounding to f16: the output is written once.
Reference: ``gelu(linear(a, w, bias), approximate="tanh")`` in torch eager on f16 (cuBLAS;
the linear's output is rounded to f16 before the GELU).
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from _helpers import as_torch, host_shapes, randn

import tilevm as tv

CATEGORY = "matmul"
SHAPES = [
    (4096, 4096, 4096),
    (4096, 14336, 4096),
    (16, 4096, 4096),
    (256, 8192, 8192),
    (64, 64, 64),
    (33, 65, 47),
    (1, 1, 1),
]  # (M, N, K)
DEVICE_SHAPES = host_shapes(
    [(64, 64, 64), (33, 65, 47), (1, 1, 1), (128, 192, 256)], [(16, 24, 40), (33, 65, 47)]
)
TOLERANCE = {"atol": 2e-3, "rtol": 3e-3}  # two f16 roundings in the reference
LARGE = {"BM": 128, "BN": 128, "BK": 32, "STAGES": 4, "GROUP_M": 8, "warps": 4}
SMALL = {"BM": 64, "BN": 64, "BK": 32, "STAGES": 3, "GROUP_M": 8, "warps": 4}
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


@tv.kernel
def linear_gelu(
    a: tv.Tensor,
    w: tv.Tensor,
    bias: tv.Tensor,
    out: tv.Tensor,
    BM: tv.constexpr,
    BN: tv.constexpr,
    BK: tv.constexpr,
    STAGES: tv.constexpr,
    GROUP_M: tv.constexpr,
):
    M = out.shape[0]
    N = out.shape[1]
    pid = tv.block_id(0)
    tiles_n = tv.cdiv(N, BN)
    group = pid // (GROUP_M * tiles_n)
    first_m = group * GROUP_M
    rows = tv.minimum(tv.cdiv(M, BM) - first_m, GROUP_M)
    m0 = (first_m + (pid % (GROUP_M * tiles_n)) % rows) * BM
    n0 = (pid % (GROUP_M * tiles_n)) // rows * BN

    a_ring = tv.shared([STAGES, BM, BK], a.dtype)
    w_ring = tv.shared([STAGES, BN, BK], w.dtype)
    acc = tv.zeros([BM, BN], tv.f32)
    for s in tv.static_range(STAGES - 1):  # the first STAGES - 1 steps in flight
        tv.copy_async(a_ring, a, [m0, s * BK], [s, 0, 0])
        tv.copy_async(w_ring, w, [n0, s * BK], [s, 0, 0])
        tv.commit_async()
    for i in range(tv.cdiv(a.shape[1], BK)):
        tv.wait_async(STAGES - 2)  # step i landed; every thread is done with step i - 1
        ahead = i + STAGES - 1  # refill the buffer step i - 1 used
        tv.copy_async(a_ring, a, [m0, ahead * BK], [ahead % STAGES, 0, 0])
        tv.copy_async(w_ring, w, [n0, ahead * BK], [ahead % STAGES, 0, 0])
        tv.commit_async()
        x = tv.load_shared(a_ring, [i % STAGES, 0, 0], [BM, BK])
        y = tv.transpose(tv.load_shared(w_ring, [i % STAGES, 0, 0], [BN, BK]))
        acc = tv.dot(x, y, acc)
    tv.wait_async(0)
    v = acc + tv.load(bias, [n0], [BN]).to(tv.f32)[None, :]
    inner = SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)
    tv.store(out, (0.5 * v * (1.0 + tv.tanh(inner))).to(out.dtype), [m0, n0])


def make_inputs(shape, device, rng):
    m, n, k = shape
    a = randn(rng, (m, k), "float16", device=device)
    w = randn(rng, (n, k), "float16", k**-0.5, device=device)  # outputs of size ~1
    return a, w, randn(rng, (n,), "float16", 0.5, device=device)


def outputs(a, w, bias):
    return [((a.shape[0], w.shape[0]), "float16")]


def solution(a, w, bias, out, device):
    m, n = out.shape
    cfg = LARGE if m * n >= 128 * 128 * 64 else SMALL  # 64+ big tiles, else more blocks
    grid = tv.cdiv(m, cfg["BM"]) * tv.cdiv(n, cfg["BN"])
    linear_gelu[grid,](a, w, bias, out, device=device, **cfg)


def reference(a, w, bias):
    return F.gelu(F.linear(as_torch(a), as_torch(w), as_torch(bias)), approximate="tanh")
