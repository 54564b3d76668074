"""Every example and stdlib kernel with arguments of the shapes it expects: the set that code
generation tests render and compile for each target.

``zoo_calls()`` returns ``(name, kernel, args, kwargs)`` tuples; ``kernel.lower(target, *args,
**kwargs)`` gives the thread program, ``kernel.compile(device, *args, **kwargs)`` a binary. The
arguments are host numpy arrays of zeros: enough for compiling, not test data.
"""

from __future__ import annotations

import functools
import importlib.util
import pathlib
from collections.abc import Iterator
from typing import Any

import ml_dtypes
import numpy as np

import tilevm as tv
from tilevm.stdlib.matmul import CONFIGS, gemm_kernel
from tilevm.stdlib.quant.decode import decode_kernel
from tilevm.stdlib.quant.format import quantize
from tilevm.stdlib.quant.prefill import prefill_kernel, splitk_sum
from tilevm.stdlib.quant.tuning import prefill_shared_bytes

ACTIVATIONS = (("f16", np.dtype(np.float16)), ("bf16", np.dtype(ml_dtypes.bfloat16)))
EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"

Call = tuple[str, tv.Kernel, tuple[Any, ...], dict[str, Any]]


def _example(name: str):
    spec = importlib.util.spec_from_file_location(f"zoo_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _f32(*shape: int) -> np.ndarray:
    return np.zeros(shape, np.float32)


def _example_calls() -> Iterator[Call]:
    va, sm, mm, qm = (_example(n) for n in ("vector_add", "softmax", "matmul", "quantized_matmul"))
    yield "vector_add", va.vector_add, (_f32(10_000), _f32(10_000), _f32(10_000)), {}
    yield "softmax", sm.softmax, (_f32(33, 300), _f32(33, 300)), {"BLOCK": 512}
    a, b = np.zeros((70, 90), np.float16), np.zeros((90, 50), np.float16)
    yield "matmul", mm.matmul, (a, b, _f32(70, 50)), {}
    for wtype in (tv.i3, tv.f6e3m2fn):
        packed = np.zeros((64, 256 * wtype.bits // 8), np.uint8)
        args = (_f32(20, 256), packed, _f32(64, 4), _f32(20, 64))
        yield f"quantized_matmul_{wtype}", qm.quantized_matmul, args, {"WTYPE": wtype}
    cs = _example("cumsum")
    yield "row_cumsum", cs.row_cumsum, (_f32(37, 1000), _f32(37, 1000)), {}
    yield "row_running_max", cs.row_running_max, (_f32(37, 300), _f32(37, 300)), {"BLOCK_N": 512}
    quick = _example("quickstart")
    n = 1000
    yield "quickstart_scaled_add", quick.scaled_add, (_f32(n), _f32(n), _f32(n), 2.0), {}


def _gemm_calls() -> Iterator[Call]:
    m, n, k = 200, 264, 136  # ragged edges in every dimension
    for name, dt in ACTIVATIONS:
        for config in ("small", "large"):
            cfg = CONFIGS[config]
            consts = dict(BM=cfg.BM, BN=cfg.BN, BK=cfg.BK, STAGES=cfg.STAGES,
                          GROUP_M=cfg.GROUP_M, warps=cfg.warps)  # fmt: skip
            a, b, c = np.zeros((m, k), dt), np.zeros((k, n), dt), np.zeros((m, n), dt)
            # the large configuration with the bias epilogue, the small one without
            bias = np.zeros(n, np.float32) if config == "large" else c
            yield (f"gemm_{name}_{config}", gemm_kernel, (a, b, c, bias),
                   {**consts, "A_T": False, "B_T": False, "HAS_BIAS": config == "large"})  # fmt: skip
        cfg = CONFIGS["narrow"]  # (skinny's rings need 80 KiB: more than AMD's 64)
        consts = dict(BM=cfg.BM, BN=cfg.BN, BK=cfg.BK, STAGES=cfg.STAGES, GROUP_M=cfg.GROUP_M,
                      warps=cfg.warps)  # fmt: skip
        a_t, b_t = np.zeros((k, 32), dt), np.zeros((n, k), dt)  # column-major operands
        c = np.zeros((32, n), dt)
        yield (f"gemm_{name}_narrow_transposed", gemm_kernel, (a_t, b_t, c, c),
               {**consts, "A_T": True, "B_T": True})  # fmt: skip


# (weight dtype, zero points, group size) for the quantized linear's kernels
QUANT_CASES = (("u4", True, 128), ("i3", False, 64), ("f6e3m2fn", False, 128), ("u8", False, -1))


@functools.cache
def _weight(dtype: str, zero: bool, group: int) -> Any:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((64, 512)).astype(np.float16)
    return quantize(w, tv.dtype(dtype), group, zero_point=zero)


def _field(qw: Any) -> tv.DataType:
    dt = qw.dtype
    return tv.int_type(dt.bits) if dt.kind == "uint" and qw.zeros is None else dt


def _quant_args(qw: Any, x: np.ndarray, y: np.ndarray) -> tuple[Any, ...]:
    zeros = qw.scales if qw.zeros is None else qw.zeros
    return x, qw.packed, qw.scales, zeros, np.zeros(qw.shape[0], x.dtype), y


def _quant_consts(qw: Any, bias: bool) -> dict[str, Any]:
    return {"FIELD": _field(qw), "ZERO": qw.zeros is not None, "BIAS": bias,
            "GROUP": 0 if qw.group_size == -1 else qw.group_size}  # fmt: skip


def _quant_calls() -> Iterator[Call]:
    for dtype, zero, group in QUANT_CASES:
        qw = _weight(dtype, zero, group)
        n, k = qw.shape
        for aname, adt in ACTIVATIONS:
            # decode: a few rows; BM 8 and 16, two and one row tiles a block (i3 with groups of
            # 64: only one row tile and 4 warps have a layout for AMD's atoms today)
            shapes = ((3, 1, 4), (12, 1, 4)) if dtype == "i3" else ((3, 2, 4), (12, 1, 8))
            for m, rn, warps in shapes:
                x, y = np.zeros((m, k), adt), np.zeros((m, n), adt)
                consts = {**_quant_consts(qw, bias=m == 3), "RN": rn, "BM": 8 if m <= 8 else 16,
                          "STAGES": 0, "warps": warps}  # fmt: skip
                yield (f"decode_{dtype}_{aname}_m{m}", decode_kernel, _quant_args(qw, x, y),
                       consts)  # fmt: skip
            # prefill: the host tile, unsplit and split along K
            m = 40
            x, y = np.zeros((m, k), adt), np.zeros((m, n), adt)
            for split in (1, 2):
                part = np.zeros((split, m, n), np.float32) if split > 1 else qw.scales
                bm = 32 if prefill_shared_bytes(qw.unit, 32, 2, 2) <= 64 * 1024 else 16
                consts = {**_quant_consts(qw, bias=True), "BM": bm, "RN": 2, "STAGES": 2,
                          "GROUP_M": 8, "SPLIT": split, "warps": 2}  # fmt: skip
                yield (f"prefill_{dtype}_{aname}_split{split}", prefill_kernel,
                       (*_quant_args(qw, x, y), part), consts)  # fmt: skip
    for aname, adt in ACTIVATIONS:
        part, bias, y = _f32(2, 40, 64), np.zeros(64, adt), np.zeros((40, 64), adt)
        consts = {"SPLIT": 2, "BIAS": True, "BM": 8, "BN": 128}
        yield f"splitk_sum_{aname}", splitk_sum, (part, bias, y), consts


def zoo_calls() -> list[Call]:
    """Every example and stdlib kernel, with arguments (a fresh list each call)."""
    return [*_example_calls(), *_gemm_calls(), *_quant_calls()]
