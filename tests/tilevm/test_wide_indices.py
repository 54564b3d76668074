"""Index arithmetic past 2**31: 64-bit offsets, sizes and strides are never truncated.

A tensor whose sizes, strides or element offsets reach 2**31 specializes the kernel to 64-bit
index arithmetic (tensors that fit keep 32-bit arithmetic); a 64-bit offset operand makes its
access 64-bit on any tensor. The large buffers here are allocated with ``np.zeros``, which maps
pages lazily: only the few pages a test touches are ever backed by memory.
"""

from __future__ import annotations

import numpy as np
import pytest

import tilevm as tv
from tests.devices import CPU_DEVICES, DEVICES, run

HOST = ["interp", *CPU_DEVICES]  # the multi-GiB views are launched in place on the host


@tv.kernel
def gather(x: tv.Tensor, out: tv.Tensor, off: tv.i64, N: tv.constexpr):
    tv.store(out, tv.load(x, [off], [N], other=-1.0), [0])


@tv.kernel
def scatter(x: tv.Tensor, out: tv.Tensor, off: tv.i64, N: tv.constexpr):
    tv.store(out, tv.load(x, [0], [N]), [off])


@pytest.mark.parametrize("device", DEVICES)
def test_a_64_bit_offset_is_not_truncated(device: str, rng: np.random.Generator) -> None:
    # 2**32 + 5 read element 5 and wrote there: the offset was cut to 32 bits
    x = rng.random(64).astype(np.float32)
    out = np.full(32, np.nan, np.float32)
    run(gather[1,], x, out, 2**32 + 5, N=32, device=device)
    np.testing.assert_array_equal(out, np.full(32, -1.0, np.float32))
    # a negative 64-bit offset reaching back into the tensor is exact too
    run(gather[1,], x, out, -(2**32) + 40, N=32, device=device)
    np.testing.assert_array_equal(out, np.full(32, -1.0, np.float32))

    target = np.full(64, 7.0, np.float32)
    run(scatter[1,], x, target, 2**32 + 5, N=32, device=device)
    np.testing.assert_array_equal(target, np.full(64, 7.0, np.float32))
    run(scatter[1,], x, target, 20, N=32, device=device)
    np.testing.assert_array_equal(target[20:52], x[:32])


@tv.kernel
def gather_u32(x: tv.Tensor, out: tv.Tensor, off: tv.u32, N: tv.constexpr):
    tv.store(out, tv.load(x, [off], [N], other=-1.0), [0])


@pytest.mark.parametrize("device", HOST)
def test_a_u32_offset_past_2_31_is_out_of_bounds(device: str, rng: np.random.Generator) -> None:
    x = rng.random(64).astype(np.float32)
    out = np.full(32, np.nan, np.float32)
    run(gather_u32[1,], x, out, 2**31 + 8, N=32, device=device)
    np.testing.assert_array_equal(out, np.full(32, -1.0, np.float32))


@tv.kernel
def copy_rows(x: tv.Tensor, out: tv.Tensor, N: tv.constexpr):
    pid = tv.block_id(0)
    tv.store(out, tv.load(x, [pid * N], [N]), [pid * N])


@pytest.mark.parametrize("device", HOST)
def test_strided_view_with_offsets_past_2_31(device: str) -> None:
    # big[::2**30] of a 3 GiB buffer: element offsets up to 3 * 2**30 (the CPU crashed)
    big = np.zeros(3 * 2**30 + 64, np.uint8)
    view = big[:: 2**30]
    view[:] = [11, 22, 33, 44]
    out = np.full(4, 0x5A, np.uint8)
    run(copy_rows[1,], view, out, N=4, device=device)
    np.testing.assert_array_equal(out, [11, 22, 33, 44])
    back = np.asarray([5, 6, 7, 8], np.uint8)
    run(copy_rows[1,], back, view, N=4, device=device)
    np.testing.assert_array_equal(view, [5, 6, 7, 8])
    assert np.count_nonzero(big[1 : 2**30]) == 0  # nothing written between the elements


@tv.kernel
def tail(x: tv.Tensor, out: tv.Tensor, N: tv.constexpr):
    n = x.shape[0]  # past 2**31: an i64
    tv.store(out, tv.load(x, [n - N], [N]), [0])
    tv.store(x, tv.load(out, [0], [N]) + 1, [n - 2 * N])


@pytest.mark.parametrize("device", HOST)
def test_a_tensor_of_more_than_2_31_elements(device: str, rng: np.random.Generator) -> None:
    # refused before (2**31 or more elements); now its size and offsets are 64-bit
    big = np.zeros(2**31 + 96, np.uint8)
    end = rng.integers(1, 200, 32, dtype=np.uint8)
    big[-32:] = end
    out = np.full(32, 0x5A, np.uint8)
    run(tail[1,], big, out, N=32, device=device)
    np.testing.assert_array_equal(out, end)
    np.testing.assert_array_equal(big[-64:-32], end + 1)
    assert np.count_nonzero(big[: -64]) == 0


@tv.kernel
def sum_window(x: tv.Tensor, out: tv.Tensor[tv.f32], start: tv.i64, steps: tv.i64):
    acc = tv.zeros([32], tv.f32)
    for i in range(start, start + steps):  # an i64 counter: the bounds are i64
        acc = acc + tv.load(x, [i - 2**32], [32], other=0.0)
    tv.store(out, acc, [0])


@pytest.mark.parametrize("device", DEVICES)
def test_a_loop_with_64_bit_bounds(device: str, rng: np.random.Generator) -> None:
    x = rng.random(64).astype(np.float32)
    out = np.full(32, np.nan, np.float32)
    run(sum_window[1,], x, out, 2**32 + 3, 4, device=device)
    want = sum(np.concatenate([x, np.zeros(32, np.float32)])[i : i + 32] for i in range(3, 7))
    np.testing.assert_allclose(out, want, rtol=1e-6)


def test_narrow_and_wide_tensors_are_separate_specializations(rng: np.random.Generator) -> None:
    small = rng.integers(1, 200, 8, dtype=np.uint8)
    out = np.zeros(4, np.uint8)
    copy_rows[2,](small, out.repeat(2), N=4, device="cpu")  # a narrow launch first
    big = np.zeros(3 * 2**30 + 64, np.uint8)
    view = big[:: 2**30]
    view[:] = small[:4]
    copy_rows[1,](view, out, N=4, device="cpu")  # then a wide one: recompiled, not reused
    np.testing.assert_array_equal(out, small[:4])
    specs, _, _ = copy_rows.specialize((view, out), {"N": 4})
    assert [s.wide for s in specs if s.kind == "tensor"] == [True, False]
    assert "64-bit indices" in copy_rows.ir(view, out, N=4)


@pytest.mark.parametrize("target", ["cuda:sm_90a", "hip:gfx942", "sycl:xe"])
def test_wide_sizes_and_strides_are_64_bit_parameters(target: str) -> None:
    big = np.zeros(3 * 2**30 + 64, np.uint8)
    source = copy_rows.emit(target, big[:: 2**30], np.zeros(4, np.uint8), N=4)
    narrow = copy_rows.emit(target, np.zeros(4, np.uint8), np.zeros(4, np.uint8), N=4)
    def signature(text: str) -> str:
        return text[text.index("copy_rows(") :].split(")")[0]

    assert "int64_t x_shape0" in signature(source) and "int64_t x_stride0" in signature(source)
    assert "int x_shape0" in signature(narrow) and "int64_t" not in signature(narrow)


def test_wide_cuda_kernel_compiles() -> None:
    pytest.importorskip("cuda.bindings")
    big = np.zeros(3 * 2**30 + 64, np.uint8)
    built = copy_rows.compile("cuda:sm_90a", big[:: 2**30], np.zeros(4, np.uint8), N=4)
    assert built.binary
