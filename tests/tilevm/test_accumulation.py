"""One accumulation rule on every executor (docs/language.md, "Accumulation"): ``tv.sum`` and
``tv.dot`` keep partial sums in the accumulator dtype (f32 for floats of 32 bits or less, f64
for f64) and round each one to it; ``dtype=`` picks a wider result and accumulator.

The data are positive and of one magnitude, so float32 partial sums lose bits at every step and
the float32-accumulated result stands measurably (many units in the last place) away from the
float64 one. Where the order of addition is pinned -- a row held by one thread, a dot's K -- every
executor here gives the float32 model's result bit for bit; where the layout leaves the order to
the executor, results agree within float32 accumulation's error bound.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import tilevm as tv
from tests.devices import DEVICES, at, need_compiler
from tests.tilevm.exact import rounded_code
from tilevm.interp import accumulate
from tilevm.layouts import local, spatial

EXECUTORS = [*DEVICES, "cpu:intel"]  # Intel's lowering (sub-groups of 16) on the CPU too
U32 = 2.0**-24  # float32's unit roundoff


@pytest.fixture(params=EXECUTORS)
def executor(request: pytest.FixtureRequest) -> str:
    return request.param


def _poisoned(shape, dtype) -> np.ndarray:
    return np.full(shape, np.nan, dtype)


def _ulps(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """|x - y| in units of the last place of float32 at y."""
    return np.abs(x.astype(np.float64) - y) / np.spacing(np.abs(y).astype(np.float32))


# ----- sums ----------------------------------------------------------------------------------


@tv.kernel
def row_sums(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32], out64: tv.Tensor[tv.f64],
             N: tv.constexpr):  # fmt: skip
    """Each thread holds one whole row: its sum is a sequential float32 sum, in column order."""
    rows = tv.num_threads()
    r0 = tv.block_id(0) * rows
    t = tv.load(x, [r0, 0], [rows, N], layout=spatial(rows, 1) * local(1, N))
    tv.store(out, tv.sum(t, 1), [r0])
    tv.store(out64, tv.sum(t, 1, dtype=tv.f64), [r0])


def _threads(executor: str, warps: int) -> int:
    """The block's threads: warps of 64 on AMD, sub-groups of 16 on Intel and SYCL, else 32."""
    if executor == "cpu:amd":
        return 64 * warps
    return (16 if executor == "cpu:intel" or executor.startswith("sycl") else 32) * warps


def test_a_row_in_one_thread_sums_in_f32_in_order(executor: str, rng) -> None:
    n, warps = 509, 2  # an odd row length
    rows = 4 * _threads(executor, warps)
    x = rng.uniform(0.5, 1.0, (rows, n)).astype(np.float32)
    out, out64 = _poisoned(rows, np.float32), _poisoned(rows, np.float64)
    at(executor, row_sums[rows // _threads(executor, warps),])(x, out, out64, N=n, warps=warps)
    model = np.cumsum(x, axis=1, dtype=np.float32)[:, -1]  # float32, one addition after another
    exact = x.astype(np.float64).sum(axis=1)  # exact: 509 values of 24 bits fit float64
    assert _ulps(exact, model).max() >= 4  # the test tells the two accumulations apart
    np.testing.assert_array_equal(out, model)
    np.testing.assert_array_equal(out64, exact)


@tv.kernel
def tile_sums(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32], whole: tv.Tensor[tv.f32],
              out64: tv.Tensor[tv.f64], R: tv.constexpr, N: tv.constexpr):  # fmt: skip
    """The default layout spreads each row over threads and warps: slots, shuffles, shared."""
    t = tv.load(x, [0, 0], [R, N])
    tv.store(out, tv.sum(t, 1), [0])
    tv.store(out64, tv.sum(t, 1, dtype=tv.f64), [0])
    tv.store(whole, tv.full([1], tv.sum(t), tv.f32), [0])


def test_sums_over_threads_stay_within_f32_accumulation_bounds(executor: str, rng) -> None:
    r, n = 3, 1024
    x = rng.uniform(0.5, 1.0, (r, n)).astype(np.float32)
    out, whole, out64 = _poisoned(r, np.float32), _poisoned(1, np.float32), _poisoned(r, np.float64)
    at(executor, tile_sums[1,])(x, out, whole, out64, R=r, N=n, warps=4)
    exact = x.astype(np.float64).sum(axis=1)
    # any order of float32 additions of n terms: |error| <= (n - 1) u sum|x|; the tree orders
    # here (a thread's few slots, then log2 steps) do far better, and the final rounding to f32
    # adds half an ulp
    pairwise = x.sum(axis=1, dtype=np.float32)  # numpy's pairwise float32 sum
    bound = 16 * U32 * np.abs(x).astype(np.float64).sum(axis=1)
    assert np.all(np.abs(out - exact) <= bound)
    assert np.all(np.abs(out - pairwise) <= 2 * bound)
    assert abs(whole[0] - exact.sum()) <= 16 * U32 * x.astype(np.float64).sum()
    np.testing.assert_array_equal(out64, exact)


@tv.kernel
def narrow_sums(x: tv.Tensor[tv.f16], out16: tv.Tensor[tv.f16], out32: tv.Tensor[tv.f32],
                N: tv.constexpr):  # fmt: skip
    rows = tv.num_threads()
    t = tv.load(x, [0, 0], [rows, N], layout=spatial(rows, 1) * local(1, N))
    tv.store(out16, tv.sum(t, 1), [0])  # f32 partial sums, rounded once to f16
    tv.store(out32, tv.sum(t, 1, dtype=tv.f32), [0])  # the same sums, not rounded to f16


def test_f16_sums_accumulate_in_f32_and_round_once(executor: str, rng) -> None:
    n = 200
    rows = _threads(executor, 1)
    x = rng.uniform(-1.0, 1.0, (rows, n)).astype(np.float16)
    out16, out32 = _poisoned(rows, np.float16), _poisoned(rows, np.float32)
    at(executor, narrow_sums[1,])(x, out16, out32, N=n, warps=1)
    model = np.cumsum(x.astype(np.float32), axis=1, dtype=np.float32)[:, -1]
    np.testing.assert_array_equal(out32, model)
    np.testing.assert_array_equal(out16, model.astype(np.float16))  # numpy: f32 -> f16 once


@tv.kernel
def int_sums(x: tv.Tensor[tv.i8], wrapped: tv.Tensor[tv.i8], counts: tv.Tensor[tv.i32],
             positives: tv.Tensor[tv.i32], N: tv.constexpr):  # fmt: skip
    t = tv.load(x, [0, 0], [4, N])
    tv.store(wrapped, tv.sum(t, 1), [0])  # i8 results wrap
    tv.store(counts, tv.sum(t, 1, dtype=tv.i32), [0])  # exact in i32
    tv.store(positives, tv.sum(t > 0, 1, dtype=tv.i32), [0])  # u1 values counted


def test_integer_sums_wrap_to_the_result_and_dtype_widens_it(executor: str, rng) -> None:
    n = 300
    x = rng.integers(-128, 128, (4, n)).astype(np.int8)
    wrapped, counts, positives = (np.full(4, -1, dt) for dt in (np.int8, np.int32, np.int32))
    at(executor, int_sums[1,])(x, wrapped, counts, positives, N=n, warps=2)
    exact = x.astype(np.int64).sum(axis=1)
    np.testing.assert_array_equal(counts, exact)
    np.testing.assert_array_equal(wrapped, exact.astype(np.int8))  # numpy wraps the same way
    np.testing.assert_array_equal(positives, (x > 0).sum(axis=1))


# ----- dots ----------------------------------------------------------------------------------


@tv.kernel
def dots(a: tv.Tensor, b: tv.Tensor, out: tv.Tensor[tv.f32], out64: tv.Tensor[tv.f64],
         M: tv.constexpr, N: tv.constexpr, K: tv.constexpr, KB: tv.constexpr):  # fmt: skip
    """A K loop in steps of KB (the last one partly outside: zeros, which add nothing)."""
    acc = tv.zeros([M, N], tv.f32)
    acc64 = tv.zeros([M, N], tv.f64)
    for k0 in range(0, K, KB):
        x = tv.load(a, [0, k0], [M, KB])
        y = tv.load(b, [k0, 0], [KB, N])
        acc = tv.dot(x, y, acc)
        acc64 = tv.dot(x, y, acc64)
    tv.store(out, acc, [0, 0])
    tv.store(out64, acc64, [0, 0])


def _sequential_fused_f32(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` in float32, one fused multiply-add per step of K, in order: each step's exact
    value (a float64 sum where that is exact, else a fraction) rounded once to float32."""
    acc = np.zeros((a.shape[0], b.shape[1]), np.float32)
    for k in range(a.shape[1]):
        p = a[:, k : k + 1].astype(np.float64) * b[k : k + 1, :].astype(np.float64)  # exact
        s = acc.astype(np.float64) + p
        bb = s - acc
        error = (acc - (s - bb)) + (p - bb)  # s + error == acc + p exactly (two-sum)
        step = s.astype(np.float32)
        for i, j in zip(*np.nonzero(error)):
            value = Fraction(float(acc[i, j])) + Fraction(float(p[i, j]))
            step[i, j] = np.uint32(rounded_code(value, tv.f32)).view(np.float32)
        acc = step
    return acc


@pytest.mark.parametrize(
    ("dtype", "mnk"), [("f16", (32, 16, 256)), ("f32", (12, 10, 301))], ids=str
)
def test_dot_accumulates_in_f32_along_k(executor: str, dtype: str, mnk, rng) -> None:
    """f16 runs on the emulated mma.sync and MFMA atoms (``cpu:cuda``, ``cpu:amd``), f32 and odd
    shapes on the multiply-add loop: both add along K in order, fused."""
    m, n, k = mnk
    np_dtype = np.float16 if dtype == "f16" else np.float32
    a = rng.uniform(0.5, 1.0, (m, k)).astype(np_dtype)
    b = rng.uniform(0.5, 1.0, (k, n)).astype(np_dtype)
    out, out64 = _poisoned((m, n), np.float32), _poisoned((m, n), np.float64)
    at(executor, dots[1,])(a, b, out, out64, M=m, N=n, K=k, KB=32, warps=4)
    model = _sequential_fused_f32(a, b)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    assert _ulps(exact, model).max() >= 4
    if executor == "cuda":  # a tensor core adds each step's products in its own order
        bound = k * U32 * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64))
        assert np.all(np.abs(out - model) <= bound)
    else:
        np.testing.assert_array_equal(out, model)
    # f64 accumulation: exact for f16 (22-bit products); f32 products have 48 bits, so their
    # float64 sums round at most by a few float64 ulps
    np.testing.assert_allclose(out64, exact, rtol=0 if dtype == "f16" else 1e-14)


# ----- the interpreter's fused multiply-add, against exact arithmetic ------------------------


def _exact_fma(x: float, y: float, c: float, np_type) -> float:
    value = Fraction(x) * Fraction(y) + Fraction(c)
    lo = np_type(float(value))  # float64 nearest, then walk to the correctly rounded np_type
    best = None
    for candidate in (np.nextafter(lo, np_type(-np.inf)), lo, np.nextafter(lo, np_type(np.inf))):
        err = abs(Fraction(float(candidate)) - value)
        even = int(np.asarray(candidate).view(np.uint64 if np_type is np.float64 else np.uint32))
        key = (err, even & 1)  # nearest, ties to even
        if best is None or key < best[0]:
            best = (key, candidate)
    return float(best[1])


@pytest.mark.parametrize("np_type", [np.float32, np.float64], ids=["f32", "f64"])
def test_interpreter_fma_rounds_once(np_type, rng) -> None:
    n = 2000
    x = rng.standard_normal(n).astype(np_type)
    y = rng.standard_normal(n).astype(np_type)
    c = -(x.astype(np.float64) * y).astype(np_type)  # cancellation: the product's low bits show
    c[::3] = rng.standard_normal(len(c[::3])).astype(np_type) * np_type(2.0**-30)
    c[1::3] = rng.standard_normal(len(c[1::3])).astype(np_type) * np_type(2.0**20)
    fma = accumulate._fma_f32 if np_type is np.float32 else accumulate._fma_f64
    got = fma(x, y, c)
    want = [_exact_fma(float(p), float(q), float(r), np_type) for p, q, r in zip(x, y, c)]
    np.testing.assert_array_equal(got, np.asarray(want, np_type))


# ----- errors ----------------------------------------------------------------------------------


@tv.kernel
def wrong_accumulator(x: tv.Tensor[tv.f32], out: tv.Tensor, CASE: tv.constexpr):
    t = tv.load(x, [0, 0], [16, 16])
    if CASE == "sum-int":
        r = tv.sum(t, 1, dtype=tv.i32)
    elif CASE == "sum-not-dtype":
        r = tv.sum(t, 1, dtype=3)
    elif CASE == "max-dtype":
        r = tv.max(t, 1, dtype=tv.f64)
    elif CASE == "dot-int-acc":
        r = tv.dot(t, t, tv.zeros([16, 16], tv.i32))
    elif CASE == "dot-dtype-differs":
        r = tv.dot(t, t, tv.zeros([16, 16], tv.f32), dtype=tv.f64)
    else:
        r = tv.dot(t.to(tv.i32), t.to(tv.i32), dtype=tv.f32)
    tv.store(out, r, [0, 0])


@pytest.mark.parametrize(
    ("case", "error", "code", "needle"),
    [
        ("sum-int", TypeError, "accumulator-dtype", "tv.sum of f32 values into i32"),
        ("sum-not-dtype", TypeError, "type", "must be a dtype"),
        ("max-dtype", TypeError, "type", "tv.max takes no dtype="),
        ("dot-int-acc", TypeError, "accumulator-dtype", "tv.dot of f32 values into i32"),
        ("dot-dtype-differs", TypeError, "type", "differs from its accumulator's"),
        ("dot-float-dtype-of-ints", TypeError, "accumulator-dtype", "i32 values into f32"),
    ],
)
def test_accumulator_dtypes_that_do_not_fit_are_errors_at_their_line(
    case: str, error: type, code: str, needle: str
) -> None:
    x = np.ones((16, 16), np.float32)
    out = np.zeros((16, 16), np.float32)
    with pytest.raises(error) as info:
        wrong_accumulator[1,](x, out, CASE=case, device="interp")
    err = info.value
    assert isinstance(err, tv.TilevmError)
    assert err.code == code and needle in str(err), str(err)
    assert err.location is not None and err.location.file.endswith("test_accumulation.py")


@pytest.mark.parametrize("target", ["cuda:sm_90a", "hip:gfx942", "sycl:xe"])
def test_wider_accumulators_render_and_compile_for_gpus(target: str) -> None:
    """f64 partial sums of f32 values, and f64 dots of f16: the GPU sources compile (SYCL's is
    rendered; its compiler runs on the device it compiles for)."""
    if not target.startswith("sycl"):
        need_compiler(target)
    x = np.zeros((512, 509), np.float32)
    args = (x, np.zeros(512, np.float32), np.zeros(512))
    dot_args = (np.zeros((32, 256), np.float16), np.zeros((256, 16), np.float16),
                np.zeros((32, 16), np.float32), np.zeros((32, 16)))  # fmt: skip
    source = row_sums.emit(target, *args, N=509, warps=2)
    assert "double" in source
    assert "double" in dots.emit(target, *dot_args, M=32, N=16, K=256, KB=32)
    if not target.startswith("sycl"):
        built = row_sums.compile(target, *args, N=509, warps=2)
        assert built.binary
        assert dots.compile(target, *dot_args, M=32, N=16, K=256, KB=32).binary
