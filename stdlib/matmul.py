"""Dense GEMM, ``C = epilogue(A @ B + bias)``, for f16/bf16 inputs with f32 accumulation.

One kernel, written in the tile language: each block owns a ``BM x BN`` tile of C and walks K in
``BK``-wide steps through a ring of ``STAGES`` shared-memory buffers filled by asynchronous copies
(``tv.copy_async``), so the loads of later steps overlap the matrix work of the current one.
Nothing in it names a matrix instruction: the dot's accumulator layout is chosen by the compiler
from the target's atoms (``mma.sync`` on NVIDIA), and the shared loads feed the atoms' fragments
(``ldmatrix``) because their layouts divide. Edges of M, N and K are handled by the copies'
zero fill and the store's mask, so any shape works.

The epilogue runs on the block's f32 accumulator before the one rounding to C's dtype: an
optional ``bias`` row (length N, added to every row) and an optional ``@tv.func`` applied
elementwise (an activation), so ``gelu(a @ b + bias)`` costs no extra pass over C.

Operands may be row- or column-major: a column-major A is passed as its (row-major) transpose and
read through ``tv.transpose`` of a ``[BK, BM]`` shared tile; likewise B.

``matmul`` picks its tile configuration by autotuning (``gemm_tuned``): the first product of a
shape, operand order and dtype times every configuration that fits it and keeps the fastest,
in memory and on disk. ``choose_config`` is the heuristic used where nothing is timed (the
interpreter, ``TILEVM_AUTOTUNE=0``); ``matmul(..., config=...)`` names a configuration itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

import tilevm as tv
from tilevm.errors import entry_point
from tilevm.stdlib.host import empty_like, to_host


@tv.kernel
def gemm_kernel(
    a: tv.Tensor,
    b: tv.Tensor,
    c: tv.Tensor,
    bias: tv.Tensor,  # read only when HAS_BIAS
    BM: tv.constexpr,
    BN: tv.constexpr,
    BK: tv.constexpr,
    STAGES: tv.constexpr,
    GROUP_M: tv.constexpr,
    A_T: tv.constexpr,
    B_T: tv.constexpr,
    HAS_BIAS: tv.constexpr = False,
    EPILOGUE: tv.constexpr = None,  # a @tv.func of the f32 tile, or None
):
    M = c.shape[0]
    N = c.shape[1]
    K = a.shape[0] if A_T else a.shape[1]
    # Blocks run in column groups of GROUP_M row tiles: neighbours share A and B tiles in L2.
    pid = tv.block_id(0)
    tiles_m = tv.cdiv(M, BM)
    tiles_n = tv.cdiv(N, BN)
    group = pid // (GROUP_M * tiles_n)
    first_m = group * GROUP_M
    rows = tv.minimum(tiles_m - first_m, GROUP_M)
    m0 = (first_m + (pid % (GROUP_M * tiles_n)) % rows) * BM
    n0 = (pid % (GROUP_M * tiles_n)) // rows * BN

    a_ring = tv.shared([STAGES, BK, BM] if A_T else [STAGES, BM, BK], a.dtype)
    b_ring = tv.shared([STAGES, BN, BK] if B_T else [STAGES, BK, BN], b.dtype)
    acc = tv.zeros([BM, BN], tv.f32)
    steps = tv.cdiv(K, BK)
    # Prologue: the first STAGES - 1 steps in flight (steps past K copy nothing but zeros).
    for s in tv.static_range(STAGES - 1):
        _fill(a, b, a_ring, b_ring, m0, n0, s * BK, s, A_T, B_T)
        tv.commit_async()
    for i in range(steps):
        tv.wait_async(STAGES - 2)  # step i has landed; every thread is done with step i - 1
        # refill the buffer step i - 1 used, then multiply step i while the copies fly
        ahead = i + STAGES - 1
        _fill(a, b, a_ring, b_ring, m0, n0, ahead * BK, ahead % STAGES, A_T, B_T)
        tv.commit_async()
        stage = i % STAGES
        if A_T:
            x = tv.transpose(tv.load_shared(a_ring, [stage, 0, 0], [BK, BM]))
        else:
            x = tv.load_shared(a_ring, [stage, 0, 0], [BM, BK])
        if B_T:
            y = tv.transpose(tv.load_shared(b_ring, [stage, 0, 0], [BN, BK]))
        else:
            y = tv.load_shared(b_ring, [stage, 0, 0], [BK, BN])
        acc = tv.dot(x, y, acc)
    tv.wait_async(0)
    if HAS_BIAS:
        acc = acc + tv.reshape(tv.load(bias, [n0], [BN]).to(tv.f32), [1, BN])
    if EPILOGUE is not None:
        acc = EPILOGUE(acc)
    tv.store(c, acc.to(c.dtype), [m0, n0])


@tv.func
def _fill(a, b, a_ring, b_ring, m0, n0, k, stage, A_T, B_T):
    if A_T:
        tv.copy_async(a_ring, a, [k, m0], [stage, 0, 0])
    else:
        tv.copy_async(a_ring, a, [m0, k], [stage, 0, 0])
    if B_T:
        tv.copy_async(b_ring, b, [n0, k], [stage, 0, 0])
    else:
        tv.copy_async(b_ring, b, [k, n0], [stage, 0, 0])


@dataclass(frozen=True)
class GemmConfig:
    """A tile configuration: block tile, K step, pipeline depth, warps."""

    BM: int
    BN: int
    BK: int
    STAGES: int
    warps: int
    GROUP_M: int = 8

    def shared_bytes(self, element_bytes: int = 2) -> int:
        return self.STAGES * (self.BM + self.BN) * self.BK * element_bytes

    def to_config(self) -> tv.Config:
        """The same configuration as the autotuner takes it."""
        return tv.Config(
            BM=self.BM, BN=self.BN, BK=self.BK, STAGES=self.STAGES, GROUP_M=self.GROUP_M,
            warps=self.warps,
        )  # fmt: skip


CONFIGS = {
    "large": GemmConfig(128, 128, 32, 4, 4),
    "wide": GemmConfig(128, 256, 32, 3, 8),
    "medium": GemmConfig(64, 128, 32, 4, 4),
    "skinny": GemmConfig(16, 64, 128, 4, 4),
    "skinny-k256": GemmConfig(16, 64, 256, 3, 4),
    "narrow": GemmConfig(32, 64, 64, 4, 4),
    "small": GemmConfig(32, 32, 32, 2, 4),
}


def choose_config(m: int, n: int, k: int, shared_bytes: int | None = None) -> GemmConfig:
    """The heuristic where nothing is timed: skinny M streams B with deep K steps; large
    problems take the big tile when it still fills the machine, else a smaller one. With
    ``shared_bytes`` (the device's per-block limit), the first preference whose rings fit."""
    for name in _preferences(m, n):
        config = CONFIGS[name]
        if shared_bytes is None or config.shared_bytes() <= shared_bytes:
            return config
    return min(CONFIGS.values(), key=lambda c: c.shared_bytes())


def _preferences(m: int, n: int) -> tuple[str, ...]:
    if m <= 16:
        return ("skinny-k256", "skinny", "narrow", "small")
    if m <= 32:
        return ("narrow", "small")
    if m * n >= 128 * 128 * 100:
        return ("large", "medium", "small")
    if m * n >= 64 * 128 * 64:
        return ("medium", "small")
    return ("small",)


def prune_configs(configs: list[tv.Config], a: Any, c: Any, A_T: bool, **_: Any) -> list[tv.Config]:
    """The configurations worth timing for a product: none whose tile is mostly outside it
    (a block dimension beyond the problem's, rounded up to a power of two), which could only
    be slower than a smaller tile; the smallest tile where nothing fits."""
    m, n = c.shape
    k = a.shape[0] if A_T else a.shape[1]
    top_m, top_n, top_k = _pow2(max(m, 16)), _pow2(max(n, 32)), _pow2(max(k, 32))
    fits = [cfg for cfg in configs if top_m >= cfg.BM and top_n >= cfg.BN and top_k >= cfg.BK]
    return fits or [min(configs, key=lambda cfg: cfg.BM * cfg.BN * cfg.BK)]


def _heuristic(a: Any, c: Any, A_T: bool, device: str | None = None, **_: Any) -> tv.Config:
    m, n = c.shape
    k = a.shape[0] if A_T else a.shape[1]
    return choose_config(m, n, k, _shared_limit(device)).to_config()


def _shared_limit(device: str | None) -> int | None:
    """The device's shared memory per block; None where it has no limit to fit (the
    interpreter) or is unknown (a compile target without its device here)."""
    if device is None or device == "interp":
        return None
    try:
        return tv.device_properties(device).shared_bytes_per_block
    except tv.TilevmError:
        return None


def _pow2(n: int) -> int:
    return 1 << (int(n) - 1).bit_length()


# The GEMM with its configuration chosen by timing, per shape, operand order and dtype.
gemm_tuned = tv.autotune(
    configs=[cfg.to_config() for cfg in CONFIGS.values()],
    key=["a", "b", "A_T", "B_T"],
    heuristic=_heuristic,
    prune=prune_configs,
)(gemm_kernel)


SUPPORTED = ("float16", "bfloat16")


@entry_point
def matmul(
    a: Any, b: Any, out: Any = None, *, bias: Any = None, epilogue: Any = None,
    config: GemmConfig | None = None, **launch: Any,
) -> Any:  # fmt: skip
    """``epilogue(a @ b + bias)`` for 2-D f16/bf16 arrays (torch tensors on a GPU, or numpy
    arrays), f32 accumulation, the result in ``out`` (default: a new array of ``a``'s dtype).

    ``bias`` (optional): a 1-D float array of length N, added to every row in f32.
    ``epilogue`` (optional): a ``@tv.func`` of one f32 tile returning a tile of its shape,
    applied elementwise before the result is rounded to ``out``'s dtype, e.g.
    ``@tv.func def relu(x): return tv.maximum(x, 0.0)``.

    Row- and column-major operands are both read in place. The tile configuration is
    autotuned unless ``config`` names one. ``launch`` goes to the kernel launch (``device=``).
    """
    _check(a, b)
    m, k = a.shape
    n = b.shape[1]
    if out is None:
        out = empty_like(a, (m, n))
    elif tuple(out.shape) != (m, n):
        raise tv.LaunchError(
            "matmul output shape",
            expected=f"[{m}, {n}]",
            found=str(list(out.shape)),
            hint="pass out=None to allocate the result",
        )
    _check_epilogue(bias, epilogue, n)
    extra = {"HAS_BIAS": bias is not None, "EPILOGUE": epilogue}
    bias_arg = bias if bias is not None else out  # a tensor parameter the kernel never reads
    a_arg, a_t = _row_major(a)
    b_arg, b_t = _row_major(b)
    if config is None:
        grid = lambda meta: (_tiles(m, n, meta["BM"], meta["BN"]),)  # noqa: E731
        gemm_tuned[grid](a_arg, b_arg, out, bias_arg, A_T=a_t, B_T=b_t, **extra, **launch)
        return out
    gemm_kernel[_tiles(m, n, config.BM, config.BN),](
        a_arg, b_arg, out, bias_arg,
        BM=config.BM, BN=config.BN, BK=config.BK, STAGES=config.STAGES, GROUP_M=config.GROUP_M,
        A_T=a_t, B_T=b_t, warps=config.warps, **extra, **launch,
    )  # fmt: skip
    return out


def _check_epilogue(bias: Any, epilogue: Any, n: int) -> None:
    if bias is not None and (len(bias.shape) != 1 or bias.shape[0] != n):
        raise tv.LaunchError(
            "matmul bias shape",
            expected=f"a 1-D array of length N = {n}",
            found=str(list(bias.shape)),
            hint="one value per output column; pass bias=None for none",
        )
    if epilogue is not None and not isinstance(epilogue, tv.Func):
        raise tv.LaunchTypeError(
            "matmul epilogue must be a @tv.func",
            expected="a @tv.func of one f32 tile, e.g. def relu(x): return tv.maximum(x, 0.0)",
            found=type(epilogue).__name__,
            hint="decorate the function with @tv.func",
        )


def _tiles(m: int, n: int, bm: int, bn: int) -> int:
    return -(-m // bm) * -(-n // bn)


def reference(a: Any, b: Any, bias: Any = None) -> np.ndarray:
    """``a @ b (+ bias)`` in float64 on the host."""
    product = to_host(a).astype(np.float64) @ to_host(b).astype(np.float64)
    return product if bias is None else product + to_host(bias).astype(np.float64)


def _check(a: Any, b: Any) -> None:
    for name, x in (("a", a), ("b", b)):
        if len(x.shape) != 2:
            raise tv.LaunchError(
                f"matmul operand {name} must be 2-D", expected="[rows, cols]", found=str(x.shape)
            )
        dtype = _dtype_name(x)
        if dtype not in SUPPORTED:
            raise tv.LaunchTypeError(
                f"matmul operand {name} dtype",
                expected="float16 or bfloat16",
                found=dtype,
                hint="convert first, e.g. a.half()",
            )
    if a.shape[1] != b.shape[0]:
        raise tv.LaunchError(
            "matmul inner dimensions differ",
            expected=f"b with {a.shape[1]} rows (a is {list(a.shape)})",
            found=str(list(b.shape)),
        )
    if _dtype_name(a) != _dtype_name(b):
        raise tv.LaunchTypeError(
            "matmul operands differ in dtype", expected=_dtype_name(a), found=_dtype_name(b)
        )


def _dtype_name(x: Any) -> str:
    return str(x.dtype).removeprefix("torch.")


def _strides(x: Any) -> tuple[int, ...]:
    """Strides in elements (torch tensors and numpy arrays alike)."""
    if hasattr(x, "stride") and callable(x.stride):
        return tuple(x.stride())
    return tuple(s // x.itemsize for s in x.strides)


def _row_major(x: Any) -> tuple[Any, bool]:
    """``(x, False)`` when rows are contiguous, ``(x.T, True)`` when columns are."""
    s0, s1 = _strides(x)
    if s1 == 1 or x.shape[1] == 1:
        return x, False
    if s0 == 1 or x.shape[0] == 1:
        return x.T, True
    raise tv.LaunchError(
        "matmul operands must be row- or column-major",
        expected="a unit stride in one dimension",
        found=f"strides {(s0, s1)}",
        hint="make it contiguous first",
    )
