"""The SYCL backend on its own: every example and stdlib kernel renders for SYCL; a set of kernels
compiles through the run-time SYCL compiler and runs on the OpenCL CPU device, matching the
interpreter bit for bit (reductions: to float32 rounding); compiled bundles come back from the
disk cache without compiling. Each kernel compiles once (about 2 s); later runs load it."""

from __future__ import annotations

import copy
import importlib.util
import os
import pathlib
from typing import Any

import ml_dtypes
import numpy as np
import pytest

import tilevm as tv
from tests.kernel_zoo import zoo_calls
from tilevm.backends.sycl import renderer, runtime
from tilevm.backends.sycl.target import intel_target, opencl_cpu_target
from tilevm.stdlib.matmul import CONFIGS, gemm_kernel

DEVICE = "opencl:cpu"
EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
CALLS = zoo_calls()


def _example(name: str):
    spec = importlib.util.spec_from_file_location(f"sycl_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sycl() -> None:
    why = runtime.unavailable()
    if why is not None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"the SYCL backend must work in CI (.ci/setup-sycl.sh): {why}")
        pytest.skip(f"SYCL backend unavailable: {why}")


# ----- rendering (no toolchain needed) ----------------------------------------------------------
@pytest.mark.parametrize("target", [opencl_cpu_target(), intel_target("xe")], ids=str)
@pytest.mark.parametrize(("name", "kernel", "args", "kwargs"), CALLS, ids=[c[0] for c in CALLS])
def test_every_zoo_kernel_renders_as_a_free_function_kernel(name, kernel, args, kwargs, target):
    lowered = kernel.lower(target, *args, **kwargs)
    source = renderer.render(lowered)
    sub_group = f"sub_group_size<{target.warp_size}>"
    assert f"void {lowered.thread.name}(" in source
    assert "nd_range_kernel<3>" in source and sub_group in source
    assert "__syncthreads" not in source and "__shfl" not in source and "atomicAdd" not in source
    if lowered.thread.shared_bytes:
        assert f"unsigned char b[{lowered.thread.shared_bytes}]" in source


# ----- running on the OpenCL CPU device ---------------------------------------------------------
def _sycl_launch(kernel: tv.Kernel, grid: Any, args: tuple, kwargs: dict) -> runtime.Built:
    grid = tuple(grid) + (1,) * (3 - len(tuple(grid)))
    built = runtime.build(kernel.lower(runtime.target(DEVICE), *args, **kwargs), DEVICE)
    specs, values, _ = kernel.specialize(args, {k: v for k, v in kwargs.items() if k != "warps"})
    tensors = {s.name: values[s.name] for s in specs if s.kind == "tensor"}
    scalars = {s.name: (s.dtype, values[s.name]) for s in specs if s.kind == "scalar"}
    runtime.run(built, grid, tensors, scalars)
    return built


def _poison(value: Any) -> None:
    if isinstance(value, tv.PackedArray):
        value.data[...] = 0xAA
    elif value.dtype.kind == "f" or value.dtype == ml_dtypes.bfloat16:
        value[...] = np.nan
    else:
        value.view(np.uint8)[...] = 0xAA


def _both(kernel: tv.Kernel, grid: Any, args: tuple, outputs: tuple[int, ...], **kwargs: Any):
    """The arguments after the interpreter's launch and after the SYCL one (outputs poisoned
    first in both)."""
    for i in outputs:
        _poison(args[i])
    ours = copy.deepcopy(args)
    kernel[grid](*args, device="interp", **kwargs)
    _sycl_launch(kernel, grid, ours, kwargs)
    return args, ours


def _bits(value: Any) -> np.ndarray:
    if isinstance(value, tv.PackedArray):
        return value.codes()  # the interpreter rewrites the bits past the end; the kernel not
    return np.ascontiguousarray(value).view(np.uint8)


def test_vector_add_matches_the_interpreter_bit_for_bit(sycl, rng) -> None:
    n = 10_000 + int(rng.integers(1, 1000))
    x, y = (rng.standard_normal(n).astype(np.float32) for _ in range(2))
    va = _example("vector_add").vector_add
    ref, ours = _both(va, (tv.cdiv(n, 1024),), (x, y, np.empty(n, np.float32)), (2,))
    np.testing.assert_array_equal(_bits(ours[2]), _bits(ref[2]))


def test_softmax_matches_the_interpreter(sycl, rng) -> None:
    rows, cols = 33, 300
    x = (rng.standard_normal((rows, cols)) * 4).astype(np.float32)
    sm = _example("softmax").softmax
    ref, ours = _both(sm, (rows,), (x, np.empty_like(x)), (1,), BLOCK=512)
    np.testing.assert_allclose(ours[1], ref[1], rtol=4e-6, atol=1e-7)
    np.testing.assert_allclose(ours[1].sum(axis=1), 1, rtol=1e-5)


def test_matmul_example_matches_the_interpreter(sycl, rng) -> None:
    m, n, k = 70, 50, 90
    a = rng.standard_normal((m, k)).astype(np.float16)
    b = rng.standard_normal((k, n)).astype(np.float16)
    mm = _example("matmul").matmul
    grid = (tv.cdiv(m, 32), tv.cdiv(n, 32))
    ref, ours = _both(mm, grid, (a, b, np.empty((m, n), np.float32)), (2,))
    np.testing.assert_allclose(ours[2], ref[2], rtol=1e-5, atol=1e-5)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(ours[2], exact, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("wtype", [tv.i3, tv.f6e3m2fn], ids=str)
def test_quantized_matmul_matches_the_interpreter(sycl, rng, wtype: tv.DataType) -> None:
    qm = _example("quantized_matmul")
    m, n, k = 20, 64, 256
    x = rng.standard_normal((m, k)).astype(np.float32)
    q, scales = qm.quantize(rng.standard_normal((n, k)).astype(np.float32), wtype, 64)
    packed = tv.pack(q, wtype).reshape(n, k * wtype.bits // 8)
    grid = (tv.cdiv(m, 16), tv.cdiv(n, 32))
    args = (x, packed, scales, np.empty((m, n), np.float32))
    ref, ours = _both(qm.quantized_matmul, grid, args, (3,), WTYPE=wtype)
    np.testing.assert_allclose(ours[3], ref[3], rtol=1e-5, atol=1e-5)


@tv.kernel
def row_sums(x: tv.Tensor, out: tv.Tensor, BLOCK: tv.constexpr):
    # a row is spread over the whole block: sub-group shuffles, then shared memory
    row = tv.block_id(0)
    v = tv.load(x, [row, 0], [1, BLOCK])
    tv.store(out, tv.sum(v, axis=1), [row])
    tv.store(out, tv.max(v, axis=1), [row + tv.num_blocks(0)])


def test_shuffle_reductions_match_the_interpreter_exactly_on_integers(sycl, rng) -> None:
    rows, block = 6, 512
    x = rng.integers(-(2**20), 2**20, (rows, block)).astype(np.int32)
    ref, ours = _both(row_sums, (rows,), (x, np.empty(2 * rows, np.int32)), (1,), BLOCK=block)
    np.testing.assert_array_equal(ours[1], ref[1])
    np.testing.assert_array_equal(ours[1], np.concatenate([x.sum(axis=1), x.max(axis=1)]))


@tv.kernel
def narrow(x: tv.Tensor[tv.f32], out: tv.Tensor, DT: tv.constexpr, BLOCK: tv.constexpr):
    # neighbouring work-items share bytes (and 32-bit words) of the packed output
    start = tv.block_id(0) * BLOCK
    tv.store(out, tv.load(x, [start], [BLOCK]).to(DT), [start])


@pytest.mark.parametrize("dt", [tv.i3, tv.u4, tv.f6e3m2fn], ids=str)
def test_sub_byte_stores_match_the_interpreter_bit_for_bit(sycl, rng, dt: tv.DataType) -> None:
    n = 1000 + int(rng.integers(1, 24))  # a ragged end inside a byte
    x = (rng.standard_normal(n) * 4).astype(np.float32)
    # u4: a numpy array of ml_dtypes' uint4 (one element per byte on the host), packed for the
    # kernel and unpacked after it; the others: tilevm's packed arrays, passed as they are
    out = np.empty(n, ml_dtypes.uint4) if dt == tv.u4 else tv.PackedArray.empty((n,), dt)
    ref, ours = _both(narrow, (tv.cdiv(n, 256),), (x, out), (1,), DT=dt, BLOCK=256)
    np.testing.assert_array_equal(_bits(ours[1]), _bits(ref[1]))


@tv.kernel
def accumulate(x: tv.Tensor, out: tv.Tensor, BINS: tv.constexpr, BLOCK: tv.constexpr):
    bid = tv.block_id(0)
    tv.atomic_add(out, tv.load(x, [bid * BLOCK], [BLOCK]), [(bid % BINS) * BLOCK])


@pytest.mark.parametrize(
    "dtype", [np.int32, np.float16, ml_dtypes.bfloat16], ids=["i32", "f16", "bf16"]
)
def test_atomic_adds_from_many_blocks_sum_exactly(sycl, rng, dtype) -> None:
    bins, block, blocks = 3, 128, 14
    x = rng.integers(-8, 9, blocks * block).astype(dtype)  # small integers: exact in any order
    out = rng.integers(-8, 9, bins * block).astype(dtype)
    expected = out.astype(np.float64)
    np.add.at(expected, (np.arange(blocks)[:, None] % bins) * block + np.arange(block),
              x.reshape(blocks, block))  # fmt: skip
    _sycl_launch(accumulate, (blocks,), (x, out), {"BINS": bins, "BLOCK": block})
    np.testing.assert_array_equal(out.astype(np.float64), expected)


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16], ids=["f16", "bf16"])
def test_stdlib_gemm_matches_the_interpreter(sycl, rng, dtype) -> None:
    m, n, k = 40, 72, 48
    cfg = CONFIGS["small"]
    consts = dict(BM=cfg.BM, BN=cfg.BN, BK=cfg.BK, STAGES=cfg.STAGES, GROUP_M=cfg.GROUP_M,
                  A_T=False, B_T=False, warps=cfg.warps)  # fmt: skip
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    grid = (tv.cdiv(m, cfg.BM) * tv.cdiv(n, cfg.BN),)
    c = np.empty((m, n), dtype)
    ref, ours = _both(gemm_kernel, grid, (a, b, c, c), (2,), **consts)
    # f32 sums (in an order that may differ), then one rounding to the 16-bit output: at most
    # one unit in the last place apart
    got, want = ours[2].astype(np.float32), ref[2].astype(np.float32)
    ulp = float(np.finfo(dtype).eps)
    np.testing.assert_allclose(got, want, rtol=ulp, atol=ulp)


def test_a_built_kernel_comes_back_from_the_disk_cache(sycl, rng, tmp_path) -> None:
    va = _example("vector_add").vector_add
    n = 2048
    x, y = (rng.standard_normal(n).astype(np.float32) for _ in range(2))
    lowered = va.lower(runtime.target(DEVICE), x, y, x)
    source = renderer.render(lowered)
    first = runtime.compile(source, "vector_add", DEVICE)
    runtime._programs.clear()  # a new process: only the disk cache remembers
    again = runtime.compile(source, "vector_add", DEVICE)
    assert again.cached and again.binary == first.binary and again is not first
    out = np.full(n, np.nan, np.float32)
    runtime.launch(again, lowered.thread, (2, 1, 1), {"x": x, "y": y, "out": out}, {})
    np.testing.assert_array_equal(out, x + y)


def test_device_names_use_dpctl_filter_strings(sycl) -> None:
    names = runtime.device_names()
    assert "sycl:opencl:cpu:0" in names
    assert runtime.target("sycl:opencl:cpu").warp_size == 16


@pytest.mark.parametrize("warps", [4, 8])
@pytest.mark.parametrize("wtype", [tv.i3, tv.u5, tv.i1, tv.u7], ids=str)
def test_a_block_is_warps_sub_groups_and_its_viewed_bits_round_trip(
    sycl, rng, wtype: tv.DataType, warps: int
) -> None:
    # A block is warps * 16 work-items here (not warps * 32): the view round trip covers
    # exactly that many threads' bytes, its packed sub-byte stores lose no neighbour's bits, and
    # the bytes of an array past the block stay as they were. The interpreter, given a block of
    # the same number of threads, agrees bit for bit.
    from tests.tilevm.kernels import view_roundtrip

    sub_group = runtime.target(DEVICE).warp_size
    assert sub_group == 16
    threads, nbytes = warps * sub_group, wtype.bits  # nbytes bytes a thread: 8 elements
    raw = rng.integers(0, 256, 2 * threads * nbytes, dtype=np.uint8)  # twice the block's share
    out, values = np.empty_like(raw), tv.PackedArray.empty((2 * threads * 8,), wtype)
    _poison(out)
    _poison(values)
    poison_out, poison_values = out.copy(), values.codes().copy()
    ref_out, ref_values = out.copy(), copy.deepcopy(values)
    kwargs = dict(WTYPE=wtype, BYTES=nbytes, warps=warps)
    built = _sycl_launch(view_roundtrip, (1,), (raw, out, values), kwargs)
    assert built.num_threads == threads
    mine = threads * nbytes
    np.testing.assert_array_equal(out[:mine], raw[:mine])
    np.testing.assert_array_equal(out[mine:], poison_out[mine:])
    expected = tv.unpack(raw, wtype, 2 * threads * 8, bits=True)
    np.testing.assert_array_equal(values.codes()[: threads * 8], expected[: threads * 8])
    np.testing.assert_array_equal(values.codes()[threads * 8 :], poison_values[threads * 8 :])
    interp_warps = threads // 32  # the interpreter's warps are 32 threads
    view_roundtrip[1,](raw, ref_out, ref_values, WTYPE=wtype, BYTES=nbytes, warps=interp_warps,
                       device="interp")  # fmt: skip
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(values.codes(), ref_values.codes())


@tv.kernel
def strided_copy(x: tv.Tensor, out: tv.Tensor, info: tv.Tensor[tv.i32], BM: tv.constexpr,
                 BN: tv.constexpr):  # fmt: skip
    i, j = tv.block_id(0) * BM, tv.block_id(1) * BN
    tv.store(out, tv.load(x, [i, j], [BM, BN]), [i, j])
    n = tv.arange(0, 4)
    strides = tv.where(n == 0, x.stride(0), tv.where(n == 1, x.stride(1),
                       tv.where(n == 2, out.stride(0), out.stride(1))))  # fmt: skip
    tv.store(info, tv.zeros([4], tv.i32) + strides, [0])


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, ml_dtypes.int4], ids=["f32", "u8", "i4"])
def test_strided_host_views_keep_their_strides_on_the_device(sycl, rng, dtype) -> None:
    # A numpy view is staged with its gaps, not compacted: the kernel reads the strides it was
    # specialized for (compacting [::2, 1::3] of 70 x 90 would give a row stride of 30, not 180)
    # and writes only the view's elements of a strided output; negative strides included.
    if dtype == np.float32:
        base = rng.standard_normal((70, 90)).astype(dtype)
    else:
        low, high = (-8, 8) if dtype == ml_dtypes.int4 else (0, 256)
        base = rng.integers(low, high, (70, 90)).astype(dtype)
    cases = [(base[::2, 1::3], (70, 90), np.s_[::2, ::3]),
             (base[::-1, 5:65], (140, 80), np.s_[::-2, 7:67])]  # fmt: skip
    for x, whole_shape, pick in cases:
        whole = np.empty(whole_shape, dtype)
        _poison(whole) if dtype != ml_dtypes.int4 else whole.fill(dtype(-1))
        poisoned, out = whole.copy(), whole[pick]
        info = np.full(4, -1, np.int32)
        grid = (tv.cdiv(x.shape[0], 16), tv.cdiv(x.shape[1], 32))
        _sycl_launch(strided_copy, grid, (x, out, info), {"BM": 16, "BN": 32})
        size = np.dtype(dtype).itemsize
        np.testing.assert_array_equal(
            info, [*(s // size for s in x.strides), *(s // size for s in out.strides)]
        )
        np.testing.assert_array_equal(np.ascontiguousarray(out).view(np.uint8),
                                      np.ascontiguousarray(x).view(np.uint8))  # fmt: skip
        untouched = np.ones(whole.shape, bool)
        untouched[pick] = False
        np.testing.assert_array_equal(whole[untouched].view(np.uint8),
                                      poisoned[untouched].view(np.uint8))  # fmt: skip


def test_a_torch_xpu_tensor_is_refused_with_a_clear_error(monkeypatch) -> None:
    import torch

    from tilevm.backends.sycl import backend

    monkeypatch.setattr(backend, "torch_device", lambda value: torch.device("xpu", 0))
    with pytest.raises(tv.LaunchTypeError) as info:
        backend.BACKEND.tensor(np.zeros(3, np.float32), "x")
    assert info.value.code == "sycl-xpu" and "x.cpu()" in info.value.hint


@tv.kernel
def _stepped(out: tv.Tensor[tv.i32], step: tv.i32):
    total = 0
    for i in tv.range(0, 10, step):
        total += i
    tv.store(out, tv.full([1], total, tv.i32), [0])


def test_a_zero_step_stops_the_kernel_with_a_clear_error(sycl) -> None:
    """On the OpenCL CPU device __builtin_trap() ended the kernel with no error for the host."""
    out = np.full(1, -1, np.int32)
    _stepped[1,](out, 3, device="sycl:opencl:cpu")
    assert out[0] == 0 + 3 + 6 + 9
    with pytest.raises(tv.LaunchError, match="trap") as info:
        _stepped[1,](out, 0, device="sycl:opencl:cpu")
    assert info.value.code == "trap"
    _stepped[1,](out, 2, device="sycl:opencl:cpu")  # the status word is fresh for every launch
    assert out[0] == 0 + 2 + 4 + 6 + 8


def test_the_opencl_cpu_runtime_is_found_from_a_virtual_environment(sycl, monkeypatch) -> None:
    """A virtual environment over the one holding intel-opencl-rt has no libintelocl.so in its
    own lib folder: the loader was left unset and dpctl found no device."""
    import sys

    monkeypatch.delenv("OCL_ICD_FILENAMES")
    monkeypatch.setattr(sys, "prefix", "/nonexistent-venv")
    runtime._point_icd_loader_at_the_cpu_runtime()
    library = pathlib.Path(os.environ["OCL_ICD_FILENAMES"])
    assert library.name == "libintelocl.so" and library.exists()
    from tilevm.backends.sycl import shim

    assert (shim.sycl_prefix() / "include" / "sycl" / "sycl.hpp").exists()


@tv.kernel
def add_into(out: tv.Tensor, x: tv.Tensor, y: tv.Tensor, BLOCK: tv.constexpr):
    start = tv.block_id(0) * BLOCK
    tv.store(out, tv.load(x, [start], [BLOCK]) + tv.load(y, [start], [BLOCK]), [start])


@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.int4], ids=["f32", "i4"])
def test_one_host_array_passed_twice_keeps_what_the_kernel_wrote(sycl, rng, dtype) -> None:
    # Each host argument is staged in its own device buffer; copying back an argument the
    # kernel did not change (staged after the output) used to overwrite what it wrote through another argument that is
    # the same array (the output came back unwritten).
    def fresh(n: int) -> np.ndarray:
        if dtype == np.float32:
            return rng.standard_normal(n).astype(dtype)
        return rng.integers(-4, 4, n).astype(dtype)

    n = 1000
    x = fresh(n)
    expected = x.astype(np.float64) * 2
    add_into[tv.cdiv(n, 128),](x, x, x, BLOCK=128, device="sycl")  # in place, all three alias
    np.testing.assert_array_equal(x.astype(np.float64), expected)
    x, acc = fresh(n), fresh(n)
    expected = (x.astype(np.float64) + acc.astype(np.float64)).astype(dtype)  # rounded once
    add_into[tv.cdiv(n, 128),](acc, x, acc, BLOCK=128, device="sycl")  # acc += x
    np.testing.assert_array_equal(acc, expected)
