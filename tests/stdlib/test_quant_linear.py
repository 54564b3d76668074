"""``quant.linear`` against a float64 dequantize-then-matmul reference: every weight type (each
integer width signed, unsigned with and without zero points, the small floats) with every group
size on every executor, the rows covering both kernels (decode up to 16 rows, prefill above),
f16 and bf16 activations, weight shapes that are not multiples of the kernels' tiles, fresh
random data and poisoned outputs. On a GPU the full product runs, up to 4096 rows."""

from __future__ import annotations

import numpy as np
import pytest

import tilevm as tv
from tests.devices import DEVICES, at
from tilevm.backends.cuda import driver
from tilevm.stdlib.quant import dispatch as linear_module
from tilevm.stdlib.quant import linear, quantize, reference, tuning

FLOATS = ["f3e1m1", "f4e2m1fn", "f5e2m2", "f6e2m3fn", "f6e3m2fn", "f7e3m3", "f8e4m3fn", "f8e5m2",
          "f8e4m3fnuz", "f8e5m2fnuz", "f4e2m1", "f8e4m3"]  # fmt: skip
WEIGHTS = (
    [(f"i{b}", False) for b in range(1, 9)]
    + [(f"u{b}", zp) for b in range(1, 9) for zp in (False, True)]
    + [(f, False) for f in FLOATS]
)
GROUPS = [32, 64, 128, -1]
ROWS = [1, 3, 16, 100]
ACTIVATIONS = [np.float16, "bfloat16"]
N, K = 40, 384  # 2.5 row tiles; 3 chunks of 128 columns, 1.5 of 256


def _activation_dtype(name):
    return tv.dtypes.to_numpy(tv.bf16) if name == "bfloat16" else np.dtype(name)


def _case(rng, dtype: str, zero_point: bool, group: int, m: int, act, bias: bool):
    w = rng.standard_normal((N, K)).astype(np.float32) * rng.uniform(0.5, 2, (N, 1))
    qw = quantize(w, dtype, group, zero_point=zero_point)
    x = rng.standard_normal((m, K)).astype(_activation_dtype(act))
    b = rng.standard_normal(N).astype(np.float32) if bias else None
    return qw, x, b


def _check(y: np.ndarray, qw, x, b) -> None:
    got = y.astype(np.float64)
    assert not np.isnan(got).any(), "unwritten output (NaN poison survived)"
    ref = reference(x, qw, b)
    tol = 2e-3 if y.dtype == np.float16 else 1.6e-2  # output rounding: 2**-11 or 2**-8
    err = np.linalg.norm(got - ref) / np.linalg.norm(ref)
    assert err < tol, f"relative error {err:.2e}"


def _run(device: str, qw, x, b) -> np.ndarray:
    y = np.full((x.shape[0], N), np.nan).astype(x.dtype)
    at(device, _Linear(qw, b))(x, y)
    return y


class _Linear:
    """``linear`` in the shape ``tests.devices.run`` launches (arrays first, device= last)."""

    def __init__(self, qw, bias) -> None:
        self.qw, self.bias = qw, bias

    def __call__(self, x, y, device: str) -> None:
        qw, bias = self.qw, self.bias
        if device.startswith("cuda"):
            qw = qw.to("cuda")
            bias = None if bias is None else _torch().from_numpy(bias).cuda()
        linear(x, qw, bias, out=y, device=device)


def _torch():
    import torch

    return torch


CASES = [
    (dtype, zp, group, ROWS[(i + j) % len(ROWS)], ACTIVATIONS[(i + j // 2) % 2], (i + j) % 2 == 0)
    for i, (dtype, zp) in enumerate(WEIGHTS)
    for j, group in enumerate(GROUPS)
]  # every weight type meets every group size; rows, activations and bias rotate


@pytest.fixture(autouse=True)
def _heuristic_configs(monkeypatch):
    """The kernels' heuristic configs: tuning (timing every config) is for real workloads."""
    monkeypatch.setenv("TILEVM_AUTOTUNE", "0")


@pytest.mark.parametrize("device", [d for d in DEVICES if d in ("interp", "cpu", "cpu:amd")])
@pytest.mark.parametrize(
    "dtype, zero_point, group, m, act, bias", CASES, ids=lambda v: str(v).replace(" ", "")
)
def test_linear_matches_the_float64_reference(
    dtype, zero_point, group, m, act, bias, device, rng
) -> None:
    qw, x, b = _case(rng, dtype, zero_point, group, m, act, bias)
    _check(_run(device, qw, x, b), qw, x, b)


def test_leading_dimensions_and_a_new_output(rng) -> None:
    qw, x, b = _case(rng, "u4", True, 64, 6, np.float16, True)
    x3 = x.reshape(2, 3, K)
    y = linear(x3, qw, b)
    assert y.shape == (2, 3, N) and y.dtype == np.float16
    _check(y.reshape(6, N), qw, x, b)
    assert linear(np.zeros((0, K), np.float16), qw).shape == (0, N)


def test_both_kernels_give_the_same_sums(rng) -> None:
    """Decode (f32 scaling per group) and prefill (weights scaled in f16) on the same rows."""
    qw, x, _ = _case(rng, "i4", False, 128, 16, np.float16, False)
    y1 = np.empty((16, N), np.float16)
    y2 = np.empty((16, N), np.float16)
    linear_module.decode(x, qw, None, y1)
    linear_module.prefill(x, qw, None, y2)
    _check(y1, qw, x, None)
    _check(y2, qw, x, None)


@pytest.mark.parametrize("device", [d for d in DEVICES if d in ("cpu", "cpu:amd")])
@pytest.mark.parametrize("config", [
    tv.Config(RN=1, BM=8, STAGES=0, warps=4),
    tv.Config(RN=2, BM=16, STAGES=0, warps=2),
    tv.Config(RN=4, BM=8, STAGES=0, warps=1),
    tv.Config(RN=1, BM=8, STAGES=3, warps=2),
    tv.Config(RN=2, BM=16, STAGES=2, warps=1),
], ids=str)  # fmt: skip
def test_decode_configs(config, device, rng) -> None:
    """One, two and four row tiles, 1-4 warps, the next chunk in registers or a ring of 2-3
    rounds in shared memory: K = 1408 is 11 chunks of 128, so the warps' last rounds and the
    prefetches run past the end."""
    k = 1408
    w = rng.standard_normal((N, k)).astype(np.float32)
    for dtype, zp, group in (("u4", True, 64), ("u5", False, -1), ("f6e3m2fn", False, 128)):
        qw = quantize(w, dtype, group, zero_point=zp)
        x = rng.standard_normal((config.constexprs["BM"] - 3, k)).astype(np.float16)
        b = rng.standard_normal(N).astype(np.float32)
        y = np.full((x.shape[0], N), np.nan, np.float16)
        linear_module.decode(x, qw, b, y, config=config, device=device)
        _check(y, qw, x, b)


@pytest.mark.parametrize("device", [d for d in DEVICES if d in ("interp", "cpu", "cpu:amd")])
@pytest.mark.parametrize("split", [2, 3, 5])
def test_prefill_split_along_k(split, device, rng) -> None:
    """K split over blocks (ranges of unequal length, the last chunk partial, with 5 splits
    one range empty): the partial sums are added by ``splitk_sum``."""
    k = 1408  # 11 chunks of 128 (5.5 of 256)
    w = rng.standard_normal((N, k)).astype(np.float32)
    for dtype, zp, group in (("u4", True, 64), ("i3", False, -1)):
        qw = quantize(w, dtype, group, zero_point=zp)
        x = rng.standard_normal((37, k)).astype(np.float16)
        b = rng.standard_normal(N).astype(np.float32)
        y = np.full((37, N), np.nan, np.float16)
        linear_module.prefill(x, qw, b, y, split=split, device=device)
        _check(y, qw, x, b)


@pytest.mark.parametrize("m, n, chunks, split", [
    (64, 8192, 64, 4),  # 64 tiles of 64 x 128, two blocks per multiprocessor
    (256, 8192, 64, 2),  # 64 tiles of 256 x 128, one per multiprocessor
    (4096, 8192, 64, 1),  # 1024 tiles: the GPU is full
    (256, 4096, 112, 4),  # 32 tiles
    (17, 128, 64, 8),  # one tile: at most MAX_SPLIT
    (17, 128, 10, 2),  # ten chunks: at least four per split
])  # fmt: skip
def test_prefill_split_fills_the_gpu(m, n, chunks, split) -> None:
    assert tuning.choose_split(m, n, chunks, multiprocessors=132) == split


@pytest.mark.parametrize("optin_kib", [227, 163, 99])  # sm_90, sm_80, sm_86 limits
@pytest.mark.parametrize("bits", range(1, 9))
def test_gpu_heuristic_and_candidates_fit_the_devices_shared_memory(optin_kib, bits, monkeypatch):
    """On a GPU with less shared memory than an H200 the prefill's heuristic tile and every
    candidate left for tuning still fit (else an untuned launch would fail to compile)."""

    device = tv.DeviceProperties("a GPU", 108, optin_kib * 1024)
    monkeypatch.setattr(tuning, "on_gpu", lambda x: True)
    monkeypatch.setattr(tv, "device_properties", lambda x: device)
    field, unit, limit = getattr(tv, f"u{bits}"), tuning.Unit(bits), optin_kib * 1024
    x, y = np.empty((4096, 64)), np.empty((4096, 64))

    def size(config: tv.Config) -> int:
        c = config.constexprs
        return tuning.prefill_shared_bytes(unit, c["BM"], c["RN"], c["STAGES"])

    if not any(size(c) <= limit for c in tuning.PREFILL_CONFIGS):
        pytest.skip(f"no prefill tile of u{bits} fits {optin_kib} KiB (a clear compile error)")
    assert size(tuning.prefill_heuristic(x, y, field)) <= limit
    assert all(size(c) <= limit for c in tuning.prefill_prune(tuning.PREFILL_CONFIGS, x, y, field))


def test_prefill_split_out_of_range_is_a_clear_error(rng) -> None:
    qw, x, _ = _case(rng, "u4", True, 64, 20, np.float16, False)
    with pytest.raises(tv.LaunchError, match="split"):
        linear_module.prefill(x, qw, None, np.empty((20, N), np.float16), split=9)


@pytest.mark.parametrize(
    "x_dtype, shape, message",
    [
        (np.float32, (3, K), "activations dtype"),
        (np.float16, (3, K + 1), "do not match the weight"),
    ],
)
def test_bad_activations_are_clear_errors(x_dtype, shape, message, rng) -> None:
    qw, _, _ = _case(rng, "u4", True, 64, 1, np.float16, False)
    with pytest.raises(tv.TilevmError, match=message):
        linear(np.zeros(shape, x_dtype), qw)
    with pytest.raises(tv.LaunchError, match="bias"):
        linear(np.zeros((3, K), np.float16), qw, np.zeros(N + 1, np.float32))


@pytest.mark.gpu
@pytest.mark.skipif(not driver.available(), reason="no CUDA GPU here")
@pytest.mark.parametrize("m", [1, 3, 16, 100, 4096])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_full_matrix_on_the_gpu(m, act, rng) -> None:
    """Every weight type x group size x zero points on/off x rows x activations on CUDA, with
    weight shapes of a few tiles and edges (N = 200, K = 1536)."""
    torch = _torch()
    n, k = 200, 1536
    for dtype, zp in WEIGHTS:
        for group in GROUPS:
            w = torch.randn(n, k, device="cuda")
            qw = quantize(w, dtype, group, zero_point=zp)
            tdt = torch.float16 if act is np.float16 else torch.bfloat16
            x = torch.randn(m, k, device="cuda", dtype=tdt)
            y = torch.full((m, n), float("nan"), device="cuda", dtype=tdt)
            linear(x, qw, out=y)
            torch.cuda.synchronize()
            ref = reference(x, qw)
            got = y.double().cpu().numpy()
            assert not np.isnan(got).any(), (dtype, zp, group)
            err = np.linalg.norm(got - ref) / np.linalg.norm(ref)
            assert err < (2e-3 if tdt == torch.float16 else 1.6e-2), (dtype, zp, group, err)


@pytest.mark.gpu
@pytest.mark.skipif(not driver.available(), reason="no CUDA GPU here")
@pytest.mark.parametrize("config", [
    tv.Config(RN=2, BM=8, STAGES=4, warps=8),
    tv.Config(RN=1, BM=16, STAGES=3, warps=4),
], ids=str)  # fmt: skip
def test_decode_ring_on_the_gpu(config, rng) -> None:
    """The decode kernel with its words staged through a cp.async ring, every weight type,
    per-group and per-row scales (N = 200, K = 1536: edges in both)."""
    torch = _torch()
    n, k, m = 200, 1536, config.constexprs["BM"] - 1
    for dtype, zp in WEIGHTS:
        for group in (64, -1):
            qw = quantize(torch.randn(n, k, device="cuda"), dtype, group, zero_point=zp)
            x = torch.randn(m, k, device="cuda", dtype=torch.float16)
            y = torch.full((m, n), float("nan"), device="cuda", dtype=torch.float16)
            linear_module.decode(x, qw, None, y, config=config)
            torch.cuda.synchronize()
            ref = reference(x, qw)
            got = y.double().cpu().numpy()
            assert not np.isnan(got).any(), (dtype, zp, group)
            err = np.linalg.norm(got - ref) / np.linalg.norm(ref)
            assert err < 2e-3, (dtype, zp, group, err)
