"""The math functions erf, sigmoid, log1p, expm1, tan, atan, pow and fdiv, and the approximate
forms (``approx=True``), on every executor, against float64 references from Python's math module
(``tests/tilevm/math_refs.py``), on fresh random data with poisoned outputs; compile-time folding
gives the values computed at run time."""

from __future__ import annotations

import numpy as np
import pytest

import tilevm as tv
from tests.devices import DEVICES, at
from tests.tilevm.math_refs import approx_bound, c_pow, reference

EXECUTORS = [*DEVICES, "cpu:intel"]  # the Intel lowering (sub-groups of 16) too
BLOCK = 128
N = 3 * BLOCK + 29  # a ragged last tile
UNARY = ["erf", "sigmoid", "log1p", "expm1", "tan", "atan"]
# the ulps (of the dtype) a device's library may be off before the last rounding: CUDA's math
# API gives erff 2, tanf 4, atanf 2, log1pf 1, expm1f 1; OpenCL allows erf 16, tan 5, atan 5
ULPS = {"erf": 16, "tan": 8, "atan": 6, "sigmoid": 4, "log1p": 4, "expm1": 4}
EDGES = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, -1e-30, 30.0, -30.0, 1e4, -1e4]


@tv.func
def apply(x, OP):
    if OP == "erf":
        r = tv.erf(x)
    elif OP == "sigmoid":
        r = tv.sigmoid(x)
    elif OP == "log1p":
        r = tv.log1p(x)
    elif OP == "expm1":
        r = tv.expm1(x)
    elif OP == "tan":
        r = tv.tan(x)
    else:
        r = tv.atan(x)
    return r


@tv.kernel
def unary(x: tv.Tensor, out: tv.Tensor, OP: tv.constexpr, BLOCK: tv.constexpr):
    start = tv.block_id(0) * BLOCK
    tv.store(out, apply(tv.load(x, [start], [BLOCK]), OP), [start])


def inputs(op: str, dt: tv.DataType, rng: np.random.Generator) -> np.ndarray:
    """Random values where the function varies (log1p above -1, expm1 where it does not
    overflow) and the edges (infinities, nan, zeros of both signs, tiny and large values)."""
    spread = min(6.0, float(dt.max) / 4)
    x = rng.standard_normal(N - len(EDGES)) * spread
    if op == "log1p":
        x = np.abs(x) * 2 - 0.9
    edges = np.array(EDGES)
    if op == "expm1":
        edges = np.clip(edges, -80, 80)
    x = np.concatenate([x, edges])
    return np.asarray(dt.round(x), dtype=np.float64)


def as_array(values: np.ndarray, dt: tv.DataType) -> np.ndarray:
    return np.asarray(values).astype(tv.dtypes.to_numpy(dt))


def check_close(out: np.ndarray, expected: np.ndarray, ulps: float, dt: tv.DataType) -> None:
    """Equal at nan and the infinities; elsewhere within ``ulps`` ulps of the dtype (relative),
    or as far from zero as ``ulps`` of its smallest normal value."""
    out = np.asarray(out, dtype=np.float64)
    special = ~np.isfinite(expected)
    np.testing.assert_array_equal(out[special], expected[special])
    with np.errstate(invalid="ignore"):  # inf - inf at the specials, checked above
        ok = np.abs(out - expected) <= ulps * dt.eps * np.abs(expected) + ulps * dt.smallest_normal
    bad = np.flatnonzero(~ok & ~special)
    assert bad.size == 0, f"{bad.size} values off, e.g. {out[bad[:5]]} for {expected[bad[:5]]}"


@pytest.mark.parametrize("device", EXECUTORS)
@pytest.mark.parametrize("dt", [tv.f32, tv.f16, tv.bf16, tv.f64], ids=str)
@pytest.mark.parametrize("op", UNARY)
def test_math_functions_match_python_math(device, op, dt, rng) -> None:
    x = inputs(op, dt, rng)
    out = as_array(np.full(N, np.nan), dt)
    at(device, unary[tv.cdiv(N, BLOCK),])(as_array(x, dt), out, OP=op, BLOCK=BLOCK)
    expected = np.asarray(dt.round(reference(op, x)), dtype=np.float64)
    # the interpreter is the semantics: float64 rounded once (math and numpy agree to 1 ulp of
    # float64, which rounding to a narrower type does not see but on a tie)
    exact = 2 if dt == tv.f64 else 0.5
    check_close(out, expected, exact if device == "interp" else ULPS[op], dt)


@pytest.mark.parametrize("device", EXECUTORS)
def test_sigmoid_saturates_without_nan(device) -> None:
    x = np.array([-np.inf, -3e38, -1e4, -104.0, -88.0, -20.0, -1.0, -0.0, 0.0, 1.0, 20.0, 88.0,
                  104.0, 1e4, 3e38, np.inf] * 8, np.float32)  # fmt: skip
    out = np.full(x.size, np.nan, np.float32)
    at(device, unary[1,])(x, out, OP="sigmoid", BLOCK=x.size)
    assert not np.isnan(out).any() and (out >= 0).all() and (out <= 1).all()
    assert (out[x <= -1e4] == 0).all() and (out[x >= 20] == 1).all()
    check_close(out, reference("sigmoid", x.astype(np.float64)).astype(np.float32), 4, tv.f32)


@tv.kernel
def power(x: tv.Tensor, y: tv.Tensor, out: tv.Tensor, R: tv.constexpr, C: tv.constexpr):
    base = tv.load(x, [0, 0], [R, 1])  # [R, 1] ** [1, C] -> [R, C]
    tv.store(out, tv.pow(base, tv.load(y, [0, 0], [1, C])), [0, 0])


@pytest.mark.parametrize("device", EXECUTORS)
@pytest.mark.parametrize("dt", [tv.f32, tv.f16, tv.f64], ids=str)
def test_pow_broadcasts_and_follows_c_at_the_edges(device, dt, rng) -> None:
    rows, cols = 16, 24
    x = np.abs(rng.standard_normal(rows)) * 3 + 0.05
    x[:6] = [-2.0, -0.5, 0.0, -0.0, np.inf, np.nan]  # negative bases, zeros, inf, nan
    y = rng.standard_normal(cols) * 3
    y[:6] = [3.0, 2.0, -1.0, 0.5, 0.0, np.nan]  # odd/even integers, a pole, a root, 0, nan
    x, y = (np.asarray(dt.round(v), dtype=np.float64) for v in (x, y))
    out = as_array(np.full((rows, cols), np.nan), dt)
    at(device, power[1,])(as_array(x[:, None], dt), as_array(y[None, :], dt), out, R=rows, C=cols)
    expected = np.array([[c_pow(a, b) for b in y] for a in x])
    expected = np.asarray(dt.round(expected), dtype=np.float64)
    check_close(out, expected, (2 if dt == tv.f64 else 0.5) if device == "interp" else 2, dt)


@tv.kernel
def folded(out: tv.Tensor[tv.f32], X: tv.constexpr, Y: tv.constexpr, OP: tv.constexpr):
    if OP == "pow":
        now, later = tv.pow(X, Y), tv.pow(tv.full([32], X, tv.f32), Y)
    elif OP == "fdiv":
        now, later = tv.fdiv(X, Y), tv.fdiv(tv.full([32], X, tv.f32), Y)
    else:
        now, later = apply(X, OP), apply(tv.full([32], X, tv.f32), OP)
    tv.store(out, tv.full([32], now, tv.f32), [0])
    tv.store(out, later, [32])


@pytest.mark.parametrize("device", ["interp", "cpu"])
@pytest.mark.parametrize(
    ("op", "x", "y"),
    [("pow", 1.7, 2.3), ("pow", -8.0, 1 / 3), ("pow", 0.0, -1.0), ("fdiv", 1.0, 0.0),
     ("fdiv", 2.0, 3.0), ("erf", 0.3, None), ("sigmoid", -200.0, None), ("log1p", 1e-9, None),
     ("expm1", 1e-9, None), ("tan", 1.5, None), ("atan", -7.0, None), ("log1p", -1.0, None)],
)  # fmt: skip
def test_compile_time_values_fold_to_what_run_time_computes(device, op, x, y) -> None:
    # values of f32, so that tv.full([32], X, tv.f32) holds the very number folded
    x, y = float(np.float32(x)), None if y is None else float(np.float32(y))
    out = np.full(64, -1.0, np.float32)
    folded[1,](out, X=x, Y=y, OP=op, device=device, warps=1)
    now, later = out[:32], out[32:]
    np.testing.assert_array_equal(now, now[0])
    if device == "interp" or not np.isfinite(later[0]):
        np.testing.assert_array_equal(now, later)  # bit for bit (nan where nan)
    else:  # the CPU's f32 libm: within 2 ulp of the correctly rounded value
        np.testing.assert_allclose(later, now, rtol=2 * 2.0**-23)


@tv.kernel
def approximate(
    x: tv.Tensor, y: tv.Tensor, out: tv.Tensor, OP: tv.constexpr, APPROX: tv.constexpr,
    BLOCK: tv.constexpr,
):  # fmt: skip
    start = tv.block_id(0) * BLOCK
    a = tv.load(x, [start], [BLOCK], other=1.0)
    if OP == "exp":
        r = tv.exp(a, approx=APPROX)
    elif OP == "exp2":
        r = tv.exp2(a, approx=APPROX)
    elif OP == "log2":
        r = tv.log2(a, approx=APPROX)
    elif OP == "rsqrt":
        r = tv.rsqrt(a, approx=APPROX)
    else:
        r = tv.fdiv(a, tv.load(y, [start], [BLOCK], other=1.0), approx=APPROX)
    tv.store(out, r, [start])


def approx_inputs(op: str, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Arguments whose results are normal floats (where every documented bound holds)."""
    if op == "exp":
        x = rng.uniform(-80, 80, n)
    elif op == "exp2":
        x = rng.uniform(-120, 120, n)
    else:  # positive, over many binades, and around 1 (log2's absolute-error range)
        x = np.exp2(rng.uniform(-60, 60, n))
        x[: n // 4] = rng.uniform(0.3, 3, n // 4)
        if op in ("log2", "rsqrt"):  # down to the smallest normal floats
            x[n // 4 : n // 2] = np.exp2(rng.uniform(-125, -60, n // 4))
    y = np.exp2(rng.uniform(-60, 60, n)) * rng.choice([-1.0, 1.0], n)
    return x.astype(np.float32), y.astype(np.float32)


APPROX_OPS = ["exp", "exp2", "log2", "rsqrt", "div"]


@pytest.mark.parametrize("device", EXECUTORS)
@pytest.mark.parametrize("op", APPROX_OPS)
def test_approximate_math_is_within_the_documented_bound(device, op, rng) -> None:
    n = 8 * 1024 + 77
    x, y = approx_inputs(op, rng, n)
    out = np.full(n, np.nan, np.float32)
    at(device, approximate[tv.cdiv(n, 1024),])(x, y, out, OP=op, APPROX=True, BLOCK=1024)
    xd, yd = x.astype(np.float64), y.astype(np.float64)
    exact = xd / yd if op == "div" else reference(op, xd)
    rel, absolute = approx_bound(op, device, xd)
    error = np.abs(out - exact)
    ok = (error <= rel * np.abs(exact)) | (error <= absolute)
    worst = np.argmax(error / np.abs(exact))
    assert ok.all(), f"{np.count_nonzero(~ok)} beyond the bound; worst x={x[worst]}: {out[worst]}"


@pytest.mark.parametrize("device", EXECUTORS)
@pytest.mark.parametrize("op", APPROX_OPS)
def test_approximate_math_of_halves_and_doubles(device, op, rng) -> None:
    """f16 computes in f32 (the approximate instruction), rounded once to f16: within one f16
    ulp; f64 has no approximate form: the exact function, bit for bit."""
    n = 1024
    # arguments and results (quotients too) within f16's normal range
    x = rng.uniform(-9, 9, n) if op in ("exp", "exp2") else np.exp2(rng.uniform(-6, 6, n))
    y = np.exp2(rng.uniform(-6, 6, n)) * rng.choice([-1.0, 1.0], n)
    x, y = (v.astype(np.float16).astype(np.float64) for v in (x, y))
    half = np.full(n, np.nan, np.float16)
    at(device, approximate[1,])(x.astype(np.float16), y.astype(np.float16), half, OP=op,
                                APPROX=True, BLOCK=n)  # fmt: skip
    exact = x / y if op == "div" else reference(op, x)
    np.testing.assert_allclose(half.astype(np.float64), tv.f16.round(exact), rtol=2.0**-10)
    fast, slow = np.full(n, np.nan), np.full(n, np.nan)
    for out, flag in ((fast, True), (slow, False)):
        at(device, approximate[1,])(x, y, out, OP=op, APPROX=flag, BLOCK=n)
    np.testing.assert_array_equal(fast, slow)


def test_approx_marks_the_instruction_and_exact_is_the_default() -> None:
    x = np.ones(64, np.float32)
    fast = approximate.ir(x, x, x, OP="exp", APPROX=True, BLOCK=64)
    slow = approximate.ir(x, x, x, OP="exp", APPROX=False, BLOCK=64)
    assert "unary(%a, approx=True, op='exp')" in fast
    assert "approx=" not in slow and "op='exp'" in slow
    div = approximate.ir(x, x, x, OP="div", APPROX=True, BLOCK=64)
    assert "approx=True, op='div'" in div


@tv.kernel
def softmax_rows(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32], C: tv.constexpr, FAST: tv.constexpr):
    row = tv.block_id(0)
    v = tv.load(x, [row, 0], [1, C], other=-float("inf"))
    e = tv.exp(v - tv.max(v, axis=1, keepdims=True), approx=FAST)
    tv.store(out, tv.fdiv(e, tv.sum(e, axis=1, keepdims=True), approx=FAST), [row, 0])


def _softmax_reference(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("device", EXECUTORS)
def test_a_softmax_with_approximate_math_stays_close(device, rng) -> None:
    rows, cols = 37, 256
    x = (rng.standard_normal((rows, cols)) * 8).astype(np.float32)
    out = np.full((rows, cols), np.nan, np.float32)
    at(device, softmax_rows[rows,])(x, out, C=cols, FAST=True)
    # exp's error at |x| <= 60 and the division's, on top of f32 sums: well under 2^-14 on
    # CUDA and the CPU (exact); sycl::native on the OpenCL CPU device is good to about 2^-11
    rtol = 2.0**-9 if device.startswith("sycl") else 2.0**-14
    reference_values = _softmax_reference(x.astype(np.float64))
    np.testing.assert_allclose(out, reference_values, rtol=rtol, atol=2.0**-30)


@pytest.mark.gpu
@pytest.mark.skipif("cuda" not in DEVICES, reason="needs a CUDA GPU")
@pytest.mark.parametrize("op", APPROX_OPS)
def test_on_the_gpu_approximate_math_is_faster_code_within_its_bound(op, rng) -> None:
    """On the device: the approximate kernel's results within the PTX ISA's bound over a large
    sample (2**20 arguments), and different from the exact kernel's somewhere (the instruction
    really is the approximate one), except for exp2, whose library function is the same
    instruction (the PTX test checks the instruction)."""
    n = 1 << 20
    x, y = approx_inputs(op, rng, n)
    fast, exact = np.full(n, np.nan, np.float32), np.full(n, np.nan, np.float32)
    for out, flag in ((fast, True), (exact, False)):
        at("cuda", approximate[n // 1024,])(x, y, out, OP=op, APPROX=flag, BLOCK=1024)
    xd = x.astype(np.float64)
    want = xd / y.astype(np.float64) if op == "div" else reference(op, xd)
    rel, absolute = approx_bound(op, "cuda", xd)
    error = np.abs(fast - want)
    assert ((error <= rel * np.abs(want)) | (error <= absolute)).all()
    if op != "exp2":  # CUDA's exact exp2f is itself ex2.approx.f32 (2 ulp): nothing to tell apart
        assert (fast != exact).any()
