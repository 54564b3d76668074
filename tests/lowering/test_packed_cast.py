"""Casts of packed fields (a ``view`` of machine words) to f16, bf16 and f32: the magic-number
lowering against the interpreter's exact decoding, for every code of every narrow type, with the
fields in their natural order and in the pair-interleaved order the quantized kernels pack."""

from __future__ import annotations

import re

import numpy as np
import pytest

import tilevm as tv
from tests.devices import at
from tilevm.backends.cuda import disasm, nvrtc
from tilevm.layouts import local, register_layout, spatial
from tilevm.lowering.lower_cast import BF16, F16, F32, scheme
from tilevm.runtime import registry

THREADS = 32  # one warp of the CPU's and CUDA's targets (a test on a device uses its warp)
SLOTS = 32  # fields per thread

INTS = [tv.int_type(b, signed) for b in range(1, 9) for signed in (False, True)]
FLOATS = [tv.dtype(n) for n in ("f3e1m1", "f4e2m1fn", "f5e2m2", "f6e2m3fn", "f6e3m2fn",
                                "f7e3m3", "f8e4m3fn", "f8e5m2", "f8e4m3fnuz", "f8e5m2fnuz",
                                "f8e4m3", "f6e3m2")]  # fmt: skip
PAIR_WEIGHT = {1: 16, 2: 8, 3: 4, 4: 4, 5: 4, 6: 2, 7: 2, 8: 2}


def interleaved(bits: int, threads: int = THREADS) -> object:
    """A thread's fields re-ordered so the two values of each output register sit
    ``PAIR_WEIGHT`` fields (16 bits where the width divides 16) apart."""
    w = PAIR_WEIGHT[bits]
    return register_layout([threads * SLOTS], [[threads, SLOTS // (2 * w), 2, w]], [0], [1, 3, 2])


@tv.kernel
def cast_fields(words: tv.Tensor[tv.u32], y: tv.Tensor, FIELD: tv.constexpr, ORDER: tv.constexpr):
    n_words = SLOTS * FIELD.bits // 32
    threads = tv.num_threads()
    raw = tv.load(words, [0], [threads * n_words], layout=spatial(threads) * local(n_words))
    q = tv.view(raw, dtype=FIELD, layout=spatial(threads) * local(SLOTS))
    out = q.to(y.dtype)
    if ORDER is not None:
        out = tv.annotate(out, ORDER)
    tv.store(y, out, [0])


def _every_code(field: tv.DataType, rng: np.random.Generator, threads: int) -> np.ndarray:
    codes = rng.integers(0, 1 << field.bits, threads * SLOTS)
    codes[rng.permutation(codes.size)[: 1 << field.bits]] = np.arange(1 << field.bits)
    return codes


def _run(field, out_dtype, order, device, rng) -> None:
    threads = registry.backend_for(device).warp_size(device)  # one warp
    order = interleaved(field.bits, threads) if order else None
    codes = _every_code(field, rng, threads)
    values = field.decode(codes.astype(field.storage)).astype(np.float64)
    packed = np.frombuffer(tv.pack(values, field).tobytes(), dtype=np.uint32).copy()
    y = np.full(codes.size, np.nan).astype(tv.dtypes.to_numpy(out_dtype))
    at(device, cast_fields[1,])(packed, y, FIELD=field, ORDER=order, warps=1)
    expected = out_dtype.decode(out_dtype.encode(values)).astype(np.float64)
    got = y.astype(np.float64)
    same = (got == expected) | (np.isnan(got) & np.isnan(expected))
    same &= np.isnan(expected) | (np.signbit(got) == np.signbit(expected))
    assert same.all(), f"{field} -> {out_dtype}: codes {codes[~same][:8]} gave {got[~same][:8]}"


@pytest.mark.parametrize("out_dtype", [tv.f16, tv.bf16, tv.f32], ids=str)
@pytest.mark.parametrize("field", INTS + FLOATS, ids=str)
def test_every_code_converts_exactly(field, out_dtype, rng) -> None:
    _run(field, out_dtype, out_dtype.bits == 16, "cpu", rng)


@pytest.mark.parametrize("field", [tv.u4, tv.i3, tv.u8, tv.f4e2m1fn, tv.f8e4m3fn], ids=str)
def test_packed_casts_agree_on_every_executor(field, device, rng) -> None:
    _run(field, tv.f16, True, device, rng)
    _run(field, tv.bf16, False, device, rng)


def test_schemes_cover_the_weight_types() -> None:
    """Every integer of up to 8 bits and every small float reaches f32 and f16 through a
    scheme; bf16 takes integers of up to 7 bits directly (8-bit ones go through f32)."""
    for field in INTS + FLOATS:
        assert scheme(field, F32) is not None, field
    for field in INTS + [f for f in FLOATS if f.name != "f8e5m2fnuz"]:
        assert scheme(field, F16) is not None, field
    assert scheme(tv.u8, BF16) is None and scheme(tv.i7, BF16) is not None


def _sass_ops(field: tv.DataType, out_dtype: tv.DataType) -> dict[str, int]:
    packed = np.zeros(THREADS * SLOTS * field.bits // 32, np.uint32)
    y = np.zeros(THREADS * SLOTS, tv.dtypes.to_numpy(out_dtype))
    compiled = cast_fields.compile(
        "cuda:sm_90a", packed, y, FIELD=field, ORDER=interleaved(field.bits), warps=1
    )
    ops: dict[str, int] = {}
    for op in re.findall(r"^\s+/\*[0-9a-f]{4}\*/\s+(?:@!?P\d\s+)?([A-Z0-9]+)", compiled.sass(),
                         re.M):  # fmt: skip
        ops[op] = ops.get(op, 0) + 1
    return ops


@pytest.mark.parametrize("field", [tv.u4, tv.i4, tv.u2, tv.u8], ids=str)
def test_pairs_16_bits_apart_become_one_packed_add_per_register(field) -> None:
    try:
        ops = _sass_ops(field, tv.f16)
    except (nvrtc.CudaUnavailable, disasm.DisassemblerError) as exc:
        pytest.skip(str(exc))
    assert ops.get("HADD2", 0) == SLOTS // 2  # two weights per packed add
    assert not {"I2F", "F2F", "I2FP"} & set(ops)  # no int-to-float conversions


@pytest.mark.parametrize("field", [tv.f8e4m3fn, tv.f8e4m3, tv.f6e3m2, tv.f5e2m2], ids=str)
def test_nan_and_inf_patches_are_an_add_not_a_lane_compare(field) -> None:
    """Codes recognised by an all-ones run of placed bits (the NaN of fn types, the all-ones
    exponent of IEEE-style ones) are patched through the carry of one integer add, not a
    per-lane compare (several instructions a register on GPUs without SIMD compares); e4m3's
    patch is a single exponent bit, moved into place by a shift (no multiply)."""
    pairs = _pair_lines(field)
    assert pairs and not any("tv_lanes16_eq(" in line for line in pairs)
    if (field.exponent, field.mantissa) == (4, 3):
        assert all(" * " not in line and "& 0x20002000u" in line for line in pairs)
    assert all("tv_lanes16_eq(" in line for line in _pair_lines(tv.f8e4m3fnuz))  # not all ones


def _pair_lines(field: tv.DataType) -> list[str]:
    """The generated lines that convert a pair of fields to f16 (one packed multiply each)."""
    packed = np.zeros(THREADS * SLOTS * field.bits // 32, np.uint32)
    y = np.zeros(THREADS * SLOTS, np.float16)
    source = cast_fields.emit(
        "cuda:sm_90a", packed, y, FIELD=field, ORDER=interleaved(field.bits), warps=1
    )
    return [
        line for line in source.splitlines() if "tv_half2_mul(" in line and "TV_INLINE" not in line
    ]
