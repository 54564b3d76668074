"""Bit packing: exact bit positions, round trips at every width, speed on large arrays."""

from __future__ import annotations

import time

import ml_dtypes
import numpy as np
import pytest

import tilevm as tv
from tilevm.dtypes import pack_codes, unpack_codes


def slow_pack(codes: list[int], bits: int) -> bytes:
    """The definition: element i at bits [i*b, (i+1)*b), little-endian bit order in each byte."""
    stream = 0
    for i, code in enumerate(codes):
        stream |= code << (i * bits)
    return stream.to_bytes((len(codes) * bits + 7) // 8, "little")


@pytest.mark.parametrize("bits", range(1, 65))
def test_pack_puts_every_bit_where_the_definition_says(bits: int, rng: np.random.Generator) -> None:
    for count in (1, 7, 8, 9, 61):
        codes = [int(c) for c in rng.integers(0, 2**bits, count, dtype=np.uint64)]
        packed = pack_codes(np.array(codes, dtype=np.uint64), bits)
        assert packed.tobytes() == slow_pack(codes, bits)
        assert unpack_codes(packed, bits, count).tolist() == codes


def test_three_bit_example_by_hand() -> None:
    # a=0b101, b=0b011, c=0b110: byte 0 = c1 c0 | b | a = 10 011 101, byte 1 = 0000000 c2 = 1
    assert tv.pack(np.array([5, 3, 6]), tv.u3).tolist() == [0b10011101, 0b1]


@pytest.mark.parametrize(
    "name",
    [
        "i3",
        "u5",
        "i1",
        "u7",
        "f6e3m2fn",
        "f4e2m1fn",
        "f3e1m1",
        "f5e2m2",
        "i12",
        "f16",
        "bf16",
        "i33",
    ],
)
def test_values_round_trip_through_pack_and_unpack(name: str, rng: np.random.Generator) -> None:
    dt = tv.dtype(name)
    shape = (37, 11)
    if dt.is_float:
        values = dt.round(rng.standard_normal(shape) * 4)
    else:
        values = rng.integers(dt.min, dt.max, shape, endpoint=True)
    packed = tv.pack(values, dt)
    assert packed.dtype == np.uint8 and packed.size == dt.nbytes(values.size)
    out = tv.unpack(packed, dt, shape)
    assert out.shape == shape and np.array_equal(out, values)
    assert np.array_equal(tv.unpack(packed, dt, shape, bits=True), dt.encode(values))


def test_ml_dtypes_arrays_pack_bit_for_bit(rng: np.random.Generator) -> None:
    x = rng.standard_normal(100).astype(ml_dtypes.float4_e2m1fn)
    packed = tv.pack(x, tv.f4e2m1fn)
    assert np.array_equal(tv.unpack(packed, tv.f4e2m1fn, 100), x.astype(np.float32))


def test_pack_rejects_ambiguous_and_out_of_range_input() -> None:
    with pytest.raises(tv.DtypeError, match="ambiguous") as info:
        tv.pack(np.array([1, 2, 3]), tv.f4e2m1fn)
    assert "bits=True" in info.value.hint
    assert tv.unpack(
        tv.pack(np.array([1, 2, 3]), tv.f4e2m1fn, bits=True), tv.f4e2m1fn, 3, bits=True
    ).tolist() == [1, 2, 3]
    with pytest.raises(tv.DtypeError, match="does not fit"):
        tv.pack(np.array([16]), tv.u4, bits=True)
    with pytest.raises(tv.DtypeError, match="too small"):
        tv.unpack(np.zeros(2, np.uint8), tv.u3, 8)
    with pytest.raises(tv.DtypeError, match="uint8"):
        tv.unpack(np.zeros(8, np.int32), tv.u3, 8)
    assert tv.unpack(b"\xff", tv.u4, 2).tolist() == [15, 15]


@pytest.mark.slow
def test_packing_64_mi_three_bit_values_takes_seconds(rng: np.random.Generator) -> None:
    codes = rng.integers(0, 8, 64 << 20, dtype=np.uint8)
    start = time.perf_counter()
    packed = pack_codes(codes, 3)
    packed_in = time.perf_counter() - start
    start = time.perf_counter()
    back = unpack_codes(packed, 3, codes.size)
    unpacked_in = time.perf_counter() - start
    assert np.array_equal(back, codes)
    assert packed.size == 24 << 20
    assert packed_in < 20 and unpacked_in < 20, (packed_in, unpacked_in)
