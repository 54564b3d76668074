"""Conversions to floats round once, and shifts read their count as unsigned, on every executor
(the interpreter, the CPU and a CUDA GPU where there is one; SYCL on the OpenCL CPU device for one
kernel), checked against exact references from Python's integers and fractions (``exact.py``).

Conversions: the values beside the destination's ties (where rounding through an intermediate
type would round twice), at its overflow and underflow, and the special values. Shifts: counts of
-1, 0, 1, width - 1, width, width + 9 and the largest, on types of 8 to 64 bits and odd widths.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

import tilevm as tv
from tests.devices import DEVICES, SYCL_CPU, _sycl_devices, run
from tests.tilevm import program_gen as pg
from tests.tilevm.exact import rounded_code, shifted, wrapped

N = 512  # elements per launch: one block
EXECUTORS = ("interp", "cpu") + (("cuda",) if "cuda" in DEVICES else ())


@tv.kernel
def convert(x: tv.Tensor, out: tv.Tensor, N: tv.constexpr):
    tv.store(out, tv.load(x, [0], [N]).to(out.dtype), [0])


@tv.kernel
def shifts(x: tv.Tensor, count: tv.Tensor, left: tv.Tensor, right: tv.Tensor, N: tv.constexpr):
    v, n = tv.load(x, [0], [N]), tv.load(count, [0], [N])
    tv.store(left, v << n, [0])
    tv.store(right, v >> n, [0])


def fill(values: list, rng: np.random.Generator) -> list:
    """``values`` shuffled and repeated (or cut) to N elements."""
    assert len(values) <= N, len(values)
    picked = list(values) + [values[i] for i in rng.integers(0, len(values), N - len(values))]
    return [picked[i] for i in rng.permutation(N)]


def run_convert(src: tv.DataType, dst: tv.DataType, codes: np.ndarray, device: str) -> np.ndarray:
    x = pg.array(src, codes, (N,))
    out = pg.array(dst, np.full(N, pg.poison_code(dst)), (N,))
    run(convert[1,], x, out, N=N, device=device)
    return pg.read(out, dst)


def check_conversion(src: tv.DataType, dst: tv.DataType, values: list) -> None:
    """Every executor's patterns against the values rounded once."""
    if src.is_integer:
        codes = np.asarray([wrapped(v, src) & ((1 << src.bits) - 1) for v in values], np.uint64)
        exact = [int(v) for v in values]
    else:
        codes = np.asarray(src.encode(np.asarray(values, np.float64)), np.uint64)
        exact = list(src.decode(codes.astype(src.storage)).astype(np.float64))
    want = np.asarray([rounded_code(v, dst) for v in exact], np.uint64)
    for device in EXECUTORS:
        got = run_convert(src, dst, codes, device)
        bad = np.flatnonzero(differ(got, want, dst))
        assert bad.size == 0, (
            f"{device}: {src} -> {dst} of {bad.size} values, e.g. "
            + ", ".join(
                f"{exact[i]!r} gave 0x{int(got[i]):x}, not 0x{int(want[i]):x}" for i in bad[:4]
            )  # fmt: skip
        )


def differ(got: np.ndarray, want: np.ndarray, dt: tv.DataType) -> np.ndarray:
    """Where two arrays of ``dt`` patterns differ, any NaN equal to any NaN (a GPU's conversions
    need not keep a NaN's sign or payload; CUDA's make every NaN the same)."""
    if dt.is_integer:
        return got != want
    with np.errstate(invalid="ignore"):
        nan = np.isnan(dt.decode(got.astype(dt.storage))) & np.isnan(
            dt.decode(want.astype(dt.storage))
        )
    return (got != want) & ~nan


# ----- integers to floats -----------------------------------------------------------------------


def integer_corners(src: tv.DataType, dst: tv.DataType, rng: np.random.Generator) -> list[int]:
    """Integers of ``src`` beside ties of ``dst`` at every magnitude where its grid is coarser
    than 1 (ties one below, at and one above), beside its overflow threshold, and the extremes."""
    lo, hi = int(src.min), int(src.max)
    p = dst.mantissa + 1  # bits of precision
    values = [0, 1, lo, hi, lo + 1, hi - 1, 2**24 + 1, 2**53 + 1, 2**63 - 2**39, 2**64 - 1]
    top_bit = src.bits - (1 if src.kind == "int" else 0)
    for length in range(p + 2, top_bit + 1):
        shift = length - p
        for top in rng.integers(1 << (p - 1), 1 << p, 4):
            tie = (int(top) << shift) | (1 << (shift - 1))
            values += [tie - 1, tie, tie + 1]
    largest = Fraction(float(dst.max))
    if largest < 2**62:  # overflow is within reach of the integers
        ulp = Fraction(2) ** (math.floor(math.log2(largest)) - dst.mantissa)
        threshold = largest + ulp / 2
        values += [math.floor(threshold) + d for d in (-1, 0, 1, 2)]
    values += [-v for v in values]
    return [v for v in set(values) if lo <= v <= hi]


INTEGER_CASES = [
    (tv.i64, tv.f32),
    (tv.u64, tv.f32),
    (tv.i64, tv.bf16),
    (tv.u64, tv.bf16),
    (tv.i64, tv.f16),
    (tv.i32, tv.bf16),
    (tv.u32, tv.bf16),
    (tv.i32, tv.f16),
    (tv.i32, tv.f32),
    (tv.u32, tv.f8e8m0fnu),
    (tv.i64, tv.f8e8m0fnu),
    (tv.i64, tv.f8e4m3fn),
    (tv.u64, tv.dtype("f12e7m5fnu")),
    (tv.i64, tv.dtype("f7e3m3")),
]


@pytest.mark.parametrize(("src", "dst"), INTEGER_CASES, ids=lambda dt: str(dt))
def test_integers_round_once_to_floats(src, dst, rng) -> None:
    values = integer_corners(src, dst, rng)
    for start in range(0, len(values), N):
        check_conversion(src, dst, fill(values[start : start + N], rng))


@pytest.mark.parametrize("dst", [tv.f32, tv.bf16, tv.f16, tv.f8e8m0fnu], ids=str)
def test_host_encode_of_64_bit_integers_rounds_once(dst, rng) -> None:
    """``DataType.encode`` of int64 and uint64 arrays (the interpreter's conversions) rounded
    them through float64 first."""
    for src in (tv.i64, tv.u64):
        values = integer_corners(src, dst, rng)
        storage = np.int64 if src == tv.i64 else np.uint64
        got = dst.encode(np.asarray(values, storage)).astype(np.uint64)
        want = np.asarray([rounded_code(v, dst) for v in values], np.uint64)
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, f"{src} -> {dst}: {[values[i] for i in bad[:4]]}"


# ----- f64 to narrower floats -------------------------------------------------------------------


def float_corners(dst: tv.DataType, rng: np.random.Generator) -> list[float]:
    """f64 values at the ties of ``dst`` and a hair either side (far below f32's precision:
    through f32 they would land on the tie), near its overflow threshold and its smallest
    values, and the special values."""
    finite = int(dst.max_code)
    codes = np.concatenate([rng.integers(0, finite, 24), [0, 1, 2, finite - 1]])
    grid = dst.decode(codes.astype(dst.storage)).astype(np.float64)
    above = dst.decode((codes + 1).astype(dst.storage)).astype(np.float64)
    largest = float(dst.max)
    ulp = 2.0 ** (math.floor(math.log2(largest)) - dst.mantissa)
    mids = list(grid / 2 + above / 2) + [largest + ulp / 2, float(dst.smallest_subnormal) / 2]
    values = [largest, 2 * largest, 0.0, -0.0, math.inf, -math.inf, math.nan, 2.0**-160]
    for mid in mids:
        hair = 2.0 ** (math.floor(math.log2(mid)) - 30)
        values += [mid - hair, mid, mid + hair, mid + hair / 2**20]
    return values + [-v for v in values]


FLOAT_TARGETS = [
    tv.f16,
    tv.bf16,
    tv.f8e4m3fn,
    tv.f8e5m2,
    tv.f8e4m3fnuz,
    tv.f6e3m2fn,
    tv.f4e2m1fn,
    tv.f8e8m0fnu,
    tv.dtype("f7e3m3"),
    tv.dtype("f8e4m3b147"),  # lowest weight 2**-149: f32 has no bit below it
    tv.dtype("f8e4m3b145fn"),
    tv.f32,
]


@pytest.mark.parametrize("dst", FLOAT_TARGETS, ids=str)
def test_f64_rounds_once_to_narrower_floats(dst, rng) -> None:
    check_conversion(tv.f64, dst, fill(float_corners(dst, rng), rng))


# ----- Python numbers adopting a narrow float dtype ---------------------------------------------


@tv.kernel
def literals(x: tv.Tensor, full: tv.Tensor, product: tv.Tensor, picked: tv.Tensor, N: tv.constexpr,
             V: tv.constexpr):  # fmt: skip
    v = tv.load(x, [0], [N])
    tv.store(full, tv.full([N], V, x.dtype), [0])
    tv.store(product, v * V, [0])
    tv.store(picked, tv.where(v > 0, V, v), [0])


@pytest.mark.parametrize("dt", [tv.bf16, tv.f16, tv.f8e4m3fn, tv.dtype("f7e3m3")], ids=str)
def test_python_floats_round_once_to_the_dtype_they_adopt(dt) -> None:
    """A Python float operand of a narrow float type is that float rounded once to the type, in
    every instruction and on every executor (tv.full and tv.where rounded it through f32 on the
    CPU; a product used it as f32 on the interpreter, as the type on the CPU's paired path)."""
    near_tie = 1 + 2.0 ** -(dt.mantissa + 1) + 2.0**-30  # through f32: the tie, then 1
    value = dt.decode(np.asarray([rounded_code(near_tie, dt)], dt.storage))[0]
    ones = pg.codes_of(dt, np.ones(N))
    for device in EXECUTORS:
        outs = [pg.array(dt, np.full(N, pg.poison_code(dt)), (N,)) for _ in range(3)]
        run(literals[1,], pg.array(dt, ones, (N,)), *outs, N=N, V=near_tie, device=device)
        for name, out in zip(("full", "product", "where"), outs):
            got = dt.decode(pg.read(out, dt).astype(dt.storage))
            assert (got == value).all(), f"{device} {name}: {got[:4]}, not {value}"


# ----- shifts -------------------------------------------------------------------------------------

SHIFT_TYPES = [tv.i8, tv.u8, tv.i32, tv.u32, tv.i64, tv.u64, tv.i12, tv.u12, tv.i3, tv.u16]


def shift_counts(dt: tv.DataType) -> list[int]:
    """-1, 0, 1, width - 1, width, width + 9 and the largest count, where ``dt`` holds them
    (read as unsigned, -1 is the largest)."""
    counts = [-1, 0, 1, dt.bits - 1, dt.bits, dt.bits + 9, int(dt.max), int(dt.min)]
    return sorted({wrapped(c, dt) for c in counts})


def run_shifts(dt: tv.DataType, x: np.ndarray, count: np.ndarray, device: str):
    outs = [pg.array(dt, np.full(N, pg.poison_code(dt)), (N,)) for _ in range(2)]
    run(shifts[1,], pg.array(dt, x, (N,)), pg.array(dt, count, (N,)), *outs, N=N, device=device)
    return [pg.read(o, dt) for o in outs]


def shift_data(dt: tv.DataType, rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """Every count with values of both signs (and the extremes), in a shuffled order."""
    counts = shift_counts(dt)
    values = [int(dt.min), int(dt.max), 1, -1 if dt.kind == "int" else 2]
    values += [wrapped(int(v), dt) for v in rng.integers(0, 1 << 63, 24, dtype=np.uint64)]
    pairs = [(v, c) for v in values for c in counts]
    pairs = [pairs[i] for i in rng.integers(0, len(pairs), N)] if len(pairs) > N else pairs
    pairs = fill(pairs, rng)
    return [v for v, _ in pairs], [c for _, c in pairs]


@pytest.mark.parametrize("dt", SHIFT_TYPES, ids=str)
def test_shift_counts_are_read_as_unsigned(dt, rng) -> None:
    """A count of the width or more (a negative one too) shifts every bit out: 0, or the sign
    for >> of a signed value -- on every executor alike."""
    values, counts = shift_data(dt, rng)
    mask = (1 << dt.bits) - 1
    as_codes = lambda xs: np.asarray([v & mask for v in xs], np.uint64)  # noqa: E731
    want_left = as_codes([shifted(v, c, dt, left=True) for v, c in zip(values, counts)])
    want_right = as_codes([shifted(v, c, dt, left=False) for v, c in zip(values, counts)])
    for device in EXECUTORS:
        left, right = run_shifts(dt, as_codes(values), as_codes(counts), device)
        for op, got, want in (("<<", left, want_left), (">>", right, want_right)):
            bad = np.flatnonzero(got != want)
            assert bad.size == 0, f"{device}: {dt} " + ", ".join(
                f"{values[i]} {op} {counts[i]} gave {wrapped(int(got[i]), dt)}, "
                f"not {wrapped(int(want[i]), dt)}"
                for i in bad[:4]
            )


@tv.kernel
def literal_counts(x: tv.Tensor[tv.i32], out: tv.Tensor[tv.i32], N: tv.constexpr):
    v = tv.load(x, [0], [N])
    tv.store(out, (v << -1) + (v << 40) + (v >> -1) + (v >> 40) * 2 + (v << 31), [0])


@pytest.mark.parametrize("device", EXECUTORS)
def test_literal_shift_counts_follow_the_rule(device, rng) -> None:
    """Counts known when the kernel compiles (the lowering's divisibility analysis shifted by
    them in Python: a negative one raised ValueError)."""
    values = rng.integers(-(2**31), 2**31, N, dtype=np.int64)
    out = np.full(N, 0x5A5A5A5A, np.int32)
    run(literal_counts[1,], values.astype(np.int32), out, N=N, device=device)
    sign = np.where(values < 0, -1, 0)
    want = [wrapped(3 * int(s) + (int(v) << 31), tv.i32) for s, v in zip(sign, values)]
    np.testing.assert_array_equal(out, want)


@tv.kernel
def constant_shift(out: tv.Tensor[tv.i64], S: tv.constexpr):
    tv.store(out, tv.full([32], 1 << S, tv.i64) + (-(2**40) >> S), [0])


@pytest.mark.parametrize("device", EXECUTORS)
def test_compile_time_shifts_are_pythons(device) -> None:
    """Shifts of compile-time ints fold as Python's (no width); a negative count is an error at
    its line (it raised a bare ValueError)."""
    out = np.full(32, 0x5A5A, np.int64)
    run(constant_shift[1,], out, S=40, device=device)
    np.testing.assert_array_equal(out, np.full(32, 2**40 - 1))
    with pytest.raises(tv.KernelValueError, match="negative count") as info:
        run(constant_shift[1,], out, S=-1, device=device)
    assert info.value.code == "shift-count" and info.value.location is not None


# ----- SYCL: the same helpers in its prelude, one kernel ------------------------------------------


@tv.kernel
def semantics(
    d: tv.Tensor[tv.f64],
    i: tv.Tensor[tv.i64],
    s: tv.Tensor[tv.i32],
    n: tv.Tensor[tv.i32],
    to_bf16: tv.Tensor[tv.bf16],
    to_e4m3: tv.Tensor[tv.f8e4m3fn],
    int_to_bf16: tv.Tensor[tv.bf16],
    left: tv.Tensor[tv.i32],
    right: tv.Tensor[tv.i32],
    N: tv.constexpr,
):
    x = tv.load(d, [0], [N])
    tv.store(to_bf16, x.to(tv.bf16), [0])
    tv.store(to_e4m3, x.to(tv.f8e4m3fn), [0])
    tv.store(int_to_bf16, tv.load(i, [0], [N]).to(tv.bf16), [0])
    v, c = tv.load(s, [0], [N]), tv.load(n, [0], [N])
    tv.store(left, v << c, [0])
    tv.store(right, v >> c, [0])


@pytest.mark.skipif(not _sycl_devices(), reason="no SYCL runtime here")
def test_sycl_rounds_once_and_shifts_by_any_count(rng) -> None:
    """One kernel on the OpenCL CPU device (its compiles take seconds): f64 and i64 to bf16,
    f64 to f8e4m3fn, and i32 shifts by every kind of count."""
    doubles = fill(float_corners(tv.bf16, rng)[:200] + float_corners(tv.f8e4m3fn, rng)[:200], rng)
    ints = fill(integer_corners(tv.i64, tv.bf16, rng)[:N], rng)
    values, counts = shift_data(tv.i32, rng)
    inputs = [
        np.asarray(doubles, np.float64),
        np.asarray(ints, np.int64),
        np.asarray(values, np.int32),
        np.asarray(counts, np.int32),
    ]
    kinds = (tv.bf16, tv.f8e4m3fn, tv.bf16, tv.i32, tv.i32)
    results = {}
    for device in ("interp", SYCL_CPU):
        outs = [pg.array(dt, np.full(N, pg.poison_code(dt)), (N,)) for dt in kinds]
        semantics[1,](*[a.copy() for a in inputs], *outs, N=N, device=device)
        results[device] = [pg.read(o, dt) for o, dt in zip(outs, kinds)]
    mask = 0xFFFFFFFF
    want = [
        [rounded_code(float(v), tv.bf16) for v in doubles],
        [rounded_code(float(v), tv.f8e4m3fn) for v in doubles],
        [rounded_code(v, tv.bf16) for v in ints],
        [shifted(v, c, tv.i32, left=True) & mask for v, c in zip(values, counts)],
        [shifted(v, c, tv.i32, left=False) & mask for v, c in zip(values, counts)],
    ]
    names = ["f64 -> bf16", "f64 -> f8e4m3fn", "i64 -> bf16", "<<", ">>"]
    for device, got in results.items():
        for name, g, w, dt in zip(names, got, want, kinds):
            bad = np.flatnonzero(differ(g, np.asarray(w, np.uint64), dt))
            assert bad.size == 0, f"{device}: {name} differs at {bad[:8]}"
