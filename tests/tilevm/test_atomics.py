"""tv.atomic_add on every device: many blocks adding into the same elements (integers exactly,
floats to a tolerance), masking at the tensor's edges, replicated layouts adding each element
once, the scalar form's old values (distinct per block, the same in every thread), 16-bit floats,
clear errors for dtypes without atomics; and RED/ATOM instructions in the CUDA binaries."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

import tilevm as tv
from tests.devices import at
from tilevm.backends.cuda import disasm
from tilevm.layouts import replicate, spatial

BLOCK = 64
BINS = 5  # block b adds its tile of x into bin b % BINS of out: several blocks per element
ATOMIC_TYPES = [tv.i32, tv.u32, tv.i64, tv.u64, tv.f32, tv.f64, tv.f16, tv.bf16]


def numpy_type(dt: tv.DataType) -> np.dtype:
    return np.dtype(tv.dtypes.to_numpy(dt))


def sample(rng: np.random.Generator, dt: tv.DataType, n: int) -> np.ndarray:
    """Random values of ``dt``. 64- and 32-bit integers use their whole range (the sums wrap);
    f16 and bf16 get small integers, whose sums they hold exactly in any order."""
    if dt in (tv.f32, tv.f64):
        return rng.standard_normal(n).astype(numpy_type(dt))
    if dt.is_float:
        return rng.integers(-8, 9, n).astype(numpy_type(dt))
    info = np.iinfo(numpy_type(dt))
    return rng.integers(info.min, info.max, n, dtype=numpy_type(dt), endpoint=True)


@tv.kernel
def accumulate(x: tv.Tensor, out: tv.Tensor, BINS: tv.constexpr, BLOCK: tv.constexpr):
    bid = tv.block_id(0)
    tile = tv.load(x, [bid * BLOCK], [BLOCK])
    tv.atomic_add(out, tile, [(bid % BINS) * BLOCK])


@pytest.mark.parametrize("dt", ATOMIC_TYPES, ids=str)
def test_blocks_accumulate_into_shared_elements(
    device: str, dt: tv.DataType, rng: np.random.Generator
) -> None:
    blocks, n = 4 * BINS + 2, BINS * BLOCK - 7  # the last bin's tile crosses the tensor's end
    x = sample(rng, dt, blocks * BLOCK)
    buffer = sample(rng, dt, n + 16)  # beyond out: bytes no add may touch
    before = buffer.copy()
    out = buffer[:n]
    at(device, accumulate[blocks,])(x, out, BINS=BINS, BLOCK=BLOCK)
    bins = (np.arange(blocks)[:, None] % BINS) * BLOCK + np.arange(BLOCK)
    inside = bins < n
    if dt.is_integer:  # wrapping sums: exact in any order
        expected = before[:n].copy()
        np.add.at(expected, bins[inside], x.reshape(blocks, BLOCK)[inside])
        np.testing.assert_array_equal(out, expected)
    else:
        expected = before[:n].astype(np.float64)
        np.add.at(expected, bins[inside], x.reshape(blocks, BLOCK)[inside].astype(np.float64))
        exact = dt not in (tv.f32, tv.f64)
        rtol = 0 if exact else 8 * blocks * float(dt.eps)
        np.testing.assert_allclose(out.astype(np.float64), expected, rtol=rtol, atol=rtol)
    np.testing.assert_array_equal(buffer[n:], before[n:])


@tv.kernel
def add_shifted_tiles(x: tv.Tensor, out: tv.Tensor, BM: tv.constexpr, BN: tv.constexpr):
    # tiles shifted up and left by (3, 5): they straddle every edge, offsets below 0 included
    tile = tv.load(x, [0, 0], [BM, BN])
    tv.atomic_add(out, tile, [tv.block_id(0) * BM - 3, tv.block_id(1) * BN - 5])


def test_elements_outside_the_tensor_are_untouched(device: str, rng: np.random.Generator) -> None:
    rows, cols, bm, bn = 37, 45, 16, 32
    x = rng.integers(-1000, 1000, (bm, bn)).astype(np.int32)
    buffer = np.full((rows + 4, cols + 6), -(2**31), np.int32)  # poison around out
    out = buffer[2 : rows + 2, 3 : cols + 3]
    out[...] = rng.integers(-1000, 1000, (rows, cols))
    start = out.copy()
    grid = (tv.cdiv(rows + 3, bm), tv.cdiv(cols + 5, bn))
    at(device, add_shifted_tiles[grid])(x, out, BM=bm, BN=bn)
    r, c = np.indices((rows, cols))
    np.testing.assert_array_equal(out, start + x[(r + 3) % bm, (c + 5) % bn])
    border = np.ones(buffer.shape, bool)
    border[2 : rows + 2, 3 : cols + 3] = False
    assert (buffer[border] == -(2**31)).all()


@tv.kernel
def add_replicated(x: tv.Tensor, out: tv.Tensor, INNER: tv.constexpr):
    # each of the 32 elements is held by num_threads / 32 threads: neighbours, or warps apart
    copies = tv.num_threads() // 32
    layout = spatial(32).replicate(copies) if INNER else replicate(copies) * spatial(32)
    tile = tv.load(x, [0], [32], layout=layout)
    tv.atomic_add(out, tile, [0])


@tv.kernel
def add_row_sums(x: tv.Tensor, out: tv.Tensor, BM: tv.constexpr, BN: tv.constexpr):
    # a row's sum is held by every thread that held part of the row
    tile = tv.load(x, [tv.block_id(0) * BM, 0], [BM, BN])
    tv.atomic_add(out, tv.sum(tile, axis=1), [0])


@pytest.mark.parametrize("inner", [True, False], ids=["neighbour_copies", "warp_copies"])
def test_replicated_layouts_add_each_element_once(
    device: str, inner: bool, rng: np.random.Generator
) -> None:
    x = rng.integers(-100, 100, 32).astype(np.int32)
    out = rng.integers(-100, 100, 40).astype(np.int32)
    expected = out.copy()
    expected[:32] += 3 * x
    at(device, add_replicated[3,])(x, out, INNER=inner)
    np.testing.assert_array_equal(out, expected)


def test_reduced_tiles_add_each_row_once(device: str, rng: np.random.Generator) -> None:
    bm, bn, blocks = 16, 64, 6
    x = rng.integers(-100, 100, (blocks * bm, bn)).astype(np.int32)
    out = rng.integers(-100, 100, bm).astype(np.int32)
    expected = out + x.reshape(blocks, bm, bn).sum(axis=(0, 2))
    at(device, add_row_sums[blocks,])(x, out, BM=bm, BN=bn)
    np.testing.assert_array_equal(out, expected)


# ----- the scalar form: one add per block, the old value in every thread ----------------------


@tv.kernel
def take_tickets(
    counter: tv.Tensor, tickets: tv.Tensor, missed: tv.Tensor, last: tv.Tensor, N: tv.constexpr
):
    bid = tv.block_id(0) + tv.block_id(1) * tv.num_blocks(0)
    ticket = tv.atomic_add(counter, 1, [1])
    # every thread holds slots of this tile: each writes the ticket it was given
    tv.store(tickets, tv.full([1, N], ticket, tv.i32), [bid, 0])
    if ticket == tv.num_blocks(0) * tv.num_blocks(1) - 1:
        tv.store(last, tv.full([1], bid, tv.i32), [0])
    # outside the tensor: nothing is added, and the old value is 0
    outside = tv.atomic_add(counter, 100, [counter.shape[0] + bid])
    tv.store(missed, tv.full([1], outside, tv.i32), [bid])


def test_a_counter_gives_each_block_its_own_ticket(device: str) -> None:
    grid, n = (7, 5), 1024  # every thread holds several slots of the stored row
    blocks = grid[0] * grid[1]
    counter = np.array([-5, 0, 9], np.int32)
    tickets = np.full((blocks, n), -1, np.int32)
    missed = np.full(blocks, -1, np.int32)
    last = np.full(1, -1, np.int32)
    at(device, take_tickets[grid])(counter, tickets, missed, last, N=n)
    np.testing.assert_array_equal(counter, [-5, blocks, 9])
    assert sorted(tickets[:, 0]) == list(range(blocks))
    assert (tickets == tickets[:, :1]).all()  # the same old value in every thread
    assert tickets[last[0], 0] == blocks - 1
    np.testing.assert_array_equal(missed, 0)


@tv.kernel
def add_block_numbers(acc: tv.Tensor, olds: tv.Tensor):
    bid = tv.block_id(0)
    old = tv.atomic_add(acc, tv.cast(bid + 1, acc.dtype), [0])
    tv.store(olds, tv.full([1], old, acc.dtype), [bid])


@pytest.mark.parametrize("dt", ATOMIC_TYPES, ids=str)
def test_old_values_follow_the_order_the_adds_happened_in(device: str, dt: tv.DataType) -> None:
    """Block b adds b + 1: sorted by the old value each block got, the old values are the sums
    of the adds before it (exact in every dtype: small integers)."""
    blocks = 20
    acc = np.array([3, 77], numpy_type(dt))
    olds = np.zeros(blocks, numpy_type(dt))
    at(device, add_block_numbers[blocks,])(acc, olds)
    np.testing.assert_array_equal(acc, np.array([3 + blocks * (blocks + 1) // 2, 77], acc.dtype))
    order = np.argsort(olds.astype(np.float64))
    prefix = 3 + np.concatenate([[0], np.cumsum(order + 1)[:-1]])
    np.testing.assert_array_equal(olds[order].astype(np.float64), prefix)
    if device == "interp":  # blocks run in order there
        np.testing.assert_array_equal(order, np.arange(blocks))


# ----- errors ---------------------------------------------------------------------------------


@tv.kernel
def add_tile(x: tv.Tensor, out: tv.Tensor):
    tv.atomic_add(out, tv.load(x, [0], [64]), [0])


@tv.kernel
def add_scalar(out: tv.Tensor, value: tv.f32):
    tv.atomic_add(out, value, [0])


@pytest.mark.parametrize("dt", [tv.i8, tv.u16, tv.f8e4m3fn, tv.i3, tv.u1], ids=str)
def test_dtypes_without_atomics_are_clear_errors(dt: tv.DataType) -> None:
    data = (
        tv.PackedArray.from_values(np.zeros(64), dt)
        if dt.bits < 8
        else np.zeros(64, numpy_type(dt))
    )
    with pytest.raises(tv.KernelTypeError) as info:
        add_tile[1,](data, data, device="interp")
    err = info.value
    assert err.code == "atomic-dtype" and str(dt) in err.found
    assert "f32" in err.expected and err.hint
    assert err.location is not None and "tv.atomic_add" in err.location.source_line


def test_the_value_must_have_the_tensors_dtype() -> None:
    with pytest.raises(tv.KernelTypeError) as info:
        add_tile[1,](np.zeros(64, np.float16), np.zeros(64, np.float32), device="interp")
    assert info.value.code == "type" and "value.to(tv.f32)" in info.value.hint
    with pytest.raises(tv.KernelTypeError) as info:
        add_scalar[1,](np.zeros(4, np.int32), 1.5, device="interp")
    assert info.value.expected == "i32" and info.value.found == "f32"


def test_16_bit_float_atomics_need_a_gpu_that_has_them() -> None:
    x = np.zeros(64, tv.dtypes.to_numpy(tv.bf16))
    with pytest.raises(tv.KernelTypeError) as info:
        add_tile.compile("cuda:sm_75", x, x)
    assert info.value.code == "atomic-dtype" and "sm_80" in info.value.hint
    assert "bf16" not in info.value.expected and "f16" in info.value.expected


# ----- CUDA machine code ----------------------------------------------------------------------


@tv.kernel
def split_k_partials(x: tv.Tensor, out: tv.Tensor, counter: tv.Tensor, done: tv.Tensor):
    tile = tv.load(x, [tv.block_id(0) * 128], [128])
    tv.atomic_add(out, tile, [0])
    ticket = tv.atomic_add(counter, 1, [0])
    tv.store(done, tv.full([1], ticket, tv.i32), [tv.block_id(0)])


@pytest.mark.parametrize("arch", ["sm_80", "sm_90a"])
def test_cuda_atomics_are_red_and_atom_instructions(arch: str) -> None:
    if disasm.find_tool("cuobjdump") is None or disasm.find_tool("nvdisasm") is None:
        if os.environ.get("CI"):
            pytest.fail("cuobjdump is missing in CI (pip install nvidia-cuda-cuobjdump)")
        pytest.skip("cuobjdump not found (pip install nvidia-cuda-cuobjdump)")
    f32, i32 = np.zeros(1024, np.float32), np.zeros(8, np.int32)
    sass = split_k_partials.compile(f"cuda:{arch}", f32, f32, i32, i32).sass()
    # the tile's adds discard the old values (reductions); the counter's is read back
    assert re.search(r"\bREDG?\.E\.ADD\.F32", sass), sass
    assert re.search(r"\bATOMG?\.E\.ADD\.STRONG", sass), sass
