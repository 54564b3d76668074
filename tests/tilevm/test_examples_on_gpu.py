"""The examples' kernels on every executor (their own run() uses the interpreter), checked
against float64 references on fresh random data with poisoned outputs."""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest

import tilevm as tv
from tests.devices import at

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def _example(name: str):
    spec = importlib.util.spec_from_file_location(f"gpu_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("m", "n", "k"), [(70, 50, 90), (64, 64, 64), (33, 97, 17)])
def test_shared_memory_matmul(device: str, m: int, n: int, k: int, rng) -> None:
    mm = _example("matmul")
    a = rng.standard_normal((m, k)).astype(np.float16)
    b = rng.standard_normal((k, n)).astype(np.float16)
    c = np.full((m, n), np.nan, np.float32)
    at(device, mm.matmul[tv.cdiv(m, 32), tv.cdiv(n, 32)])(a, b, c)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(c, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("wtype", [tv.i3, tv.f6e3m2fn, tv.u4, tv.i5], ids=str)
def test_quantized_matmul_views_packed_bytes(device: str, wtype: tv.DataType, rng) -> None:
    qm = _example("quantized_matmul")
    m, n, kk = 20, 64, 256
    x = rng.standard_normal((m, kk)).astype(np.float32)
    w = rng.standard_normal((n, kk)).astype(np.float32)
    q, scales = qm.quantize(w, wtype, 64)
    packed = tv.pack(q, wtype).reshape(n, kk * wtype.bits // 8)
    y = np.full((m, n), np.nan, np.float32)
    at(device, qm.quantized_matmul[tv.cdiv(m, 16), tv.cdiv(n, 32)])(
        x, packed, scales, y, WTYPE=wtype
    )
    deq = (q.reshape(n, kk // 64, 64) * scales[..., None]).reshape(n, kk)
    ref = x.astype(np.float64) @ deq.T.astype(np.float64)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def test_row_softmax(device: str, rng) -> None:
    sm = _example("softmax")
    x = (rng.standard_normal((33, 300)) * 4).astype(np.float32)
    out = np.full_like(x, np.nan)
    at(device, sm.softmax[33,])(x, out, BLOCK=512)
    ref = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
    ref /= ref.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-7)


class _DLPackOnly:
    """An array from another library: only the DLPack protocol, no torch type."""

    def __init__(self, tensor) -> None:
        self._tensor = tensor

    def __dlpack__(self, *args, **kwargs):
        return self._tensor.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._tensor.__dlpack_device__()


def test_dlpack_objects_launch_on_their_gpu(device: str, rng) -> None:
    if device != "cuda":
        pytest.skip("DLPack arguments are device memory: this test needs a CUDA GPU")
    import torch

    va = _example("vector_add")
    n = 5000
    x = torch.from_numpy(rng.standard_normal(n).astype(np.float32)).cuda()
    y = torch.from_numpy(rng.standard_normal(n).astype(np.float32)).cuda()
    out = torch.full_like(x, float("nan"))
    va.vector_add[tv.cdiv(n, 1024),](_DLPackOnly(x), _DLPackOnly(y), _DLPackOnly(out))
    torch.cuda.synchronize()
    np.testing.assert_array_equal(out.cpu().numpy(), (x + y).cpu().numpy())


def test_print_on_the_gpu_prints_scalars_and_every_tile_element(device: str, capfd) -> None:
    from tests.tilevm import kernels

    printing = tv.kernel(kernels.printing.fn)  # a fresh compile cache: static_print prints

    if device == "interp":
        pytest.skip("device printf: the interpreter's print is tested in test_launch")
    x = np.array([3, 1, 4, 1], np.int32)
    out = np.zeros(4, np.int32)
    at(device, printing[2,])(x, out)
    printed = capfd.readouterr().out
    assert "[block (1, 0, 0)] value %v=<tile, below>" in printed
    assert "[block (0, 0, 0)] %v[2]=4" in printed
    np.testing.assert_array_equal(out, x * 3)


@pytest.mark.parametrize(("rows", "cols"), [(37, 1000), (8, 256), (5, 2049)])
def test_row_cumsum_and_running_max(device: str, rows: int, cols: int, rng) -> None:
    cs = _example("cumsum")
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    sums = np.full_like(x, np.nan)
    at(device, cs.row_cumsum[tv.cdiv(rows, 4),])(x, sums)
    ref = np.cumsum(x.astype(np.float64), axis=1)
    # f32 additions along a path of at most ~40 (slots, lanes, warps, tiles): relative to the
    # running sum of magnitudes
    scale = np.cumsum(np.abs(x.astype(np.float64)), axis=1)
    assert (np.abs(sums - ref) / scale).max() < 40 * 2.0**-24
    peaks = np.full_like(x, np.nan)
    block = 1 << (cols - 1).bit_length()
    at(device, cs.row_running_max[rows,])(x, peaks, BLOCK_N=block)
    np.testing.assert_array_equal(peaks, np.maximum.accumulate(x, axis=1))
