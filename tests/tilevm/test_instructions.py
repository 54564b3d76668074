"""Every instruction's semantics on the interpreter, against numpy, on fresh random data, with
outputs poisoned before each launch and edge tiles (sizes that are not multiples of the tile)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tilevm as tv
from tests.devices import at
from tests.tilevm import kernels as k
from tilevm.runtime import registry

BLOCK = 128
N = 3 * BLOCK + 37  # three full tiles and a ragged edge


def random_values(
    rng: np.random.Generator, dt: tv.DataType, n: int, positive: bool = False
) -> np.ndarray:
    """Exact values of ``dt`` (never all zeros)."""
    if dt.is_float:
        raw = rng.standard_normal(n) * min(8.0, float(dt.max) / 4)
        if positive:
            raw = np.abs(raw) + float(dt.smallest_normal)
        return dt.round(raw).astype(np.float64)
    low, high = (1 if positive else max(dt.min, -1000)), min(dt.max, 1000)
    if low > high:  # i1 has no positive value: its only non-zero value is -1
        return np.full(n, dt.min)
    return rng.integers(low, high, n, endpoint=True)


def tensor(values: np.ndarray, dt: tv.DataType):
    """The argument a user would pass: a numpy/ml_dtypes array, or a packed array below 8 bits."""
    native = tv.dtypes.to_numpy(dt)
    if native is not None and dt.bits >= 8:
        return np.asarray(dt.round(values) if dt.is_float else values).astype(native)
    return tv.PackedArray.from_values(values, dt)


def poisoned(n: int, dt: tv.DataType):
    """An output full of a recognisable non-zero pattern (NaN for floats that have it)."""
    values = np.full(
        n, np.nan if dt.has_nan else dt.max, dtype=np.float64 if dt.is_float else np.int64
    )
    return tensor(values, dt)


def host(arg) -> np.ndarray:
    return (
        arg.values().astype(np.float64)
        if isinstance(arg, tv.PackedArray)
        else np.asarray(arg).astype(np.float64)
    )


def same(
    actual, expected, device: str, rtol: float = 0, scale: float | None = None,
    accumulates: bool = False,
) -> None:  # fmt: skip
    """Exact on the interpreter (the reference semantics); within ``rtol`` on a GPU where its
    arithmetic is allowed to differ (libm, summation order). Float sums and dots (``accumulates``)
    round each partial sum to f32 on every executor, the interpreter included, each in its own
    order (docs/language.md, "Accumulation"): within ``rtol`` of the exact result everywhere
    (test_accumulation.py pins an order and checks every executor bit for bit)."""
    if (device == "interp" and not accumulates) or rtol == 0:
        np.testing.assert_array_equal(actual, expected)
    else:
        atol = rtol * scale if scale is not None else 0
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def wrap(values: np.ndarray, dt: tv.DataType) -> np.ndarray:
    return dt.decode(dt.encode(values, overflow="wrap")).astype(np.float64)


FLOAT_TYPES = [tv.f32, tv.f16, tv.bf16, tv.f8e4m3fn, tv.f8e5m2, tv.f6e3m2fn, tv.f4e2m1fn, tv.f5e2m2]
INT_TYPES = [tv.i32, tv.i8, tv.u8, tv.i3, tv.u5, tv.i1, tv.u13]


def reference_binary(op: str, a: np.ndarray, b: np.ndarray, dt: tv.DataType) -> np.ndarray:
    if dt.is_float:
        compute = np.float32 if dt == tv.f32 else np.float64
        a, b = a.astype(compute), b.astype(compute)
        with np.errstate(all="ignore"):
            r = {
                "add": a + b,
                "sub": a - b,
                "mul": a * b,
                "div": a / b,
                "maximum": np.maximum(a, b),
                "minimum": np.minimum(a, b),
                "where": np.where(a < b, a, b),
            }[op]
        return dt.round(r).astype(np.float64)
    a, b = a.astype(np.int64), b.astype(np.int64)
    safe = np.where(b == 0, 1, b)
    r = {
        "add": a + b,
        "sub": a - b,
        "mul": a * b,
        "floordiv": np.where(b == 0, 0, a // safe),
        "mod": np.where(b == 0, a, a % safe),
        "maximum": np.maximum(a, b),
        "minimum": np.minimum(a, b),
        "and": a & b,
        "or": a | b,
        "xor": a ^ b,
        "where": np.where(a < b, a, b),
    }[op]
    return wrap(r, dt)


@pytest.mark.parametrize("dt", FLOAT_TYPES, ids=str)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "minimum", "where"])
def test_float_binary_ops_round_once_to_the_type(
    device: str, dt: tv.DataType, op: str, rng: np.random.Generator
) -> None:
    a, b = random_values(rng, dt, N), random_values(rng, dt, N, positive=op == "div")
    out = poisoned(N, dt)
    at(device, k.binary_op[tv.cdiv(N, BLOCK),])(
        tensor(a, dt), tensor(b, dt), out, OP=op, BLOCK=BLOCK
    )
    np.testing.assert_array_equal(host(out), reference_binary(op, a, b, dt))


@pytest.mark.parametrize("dt", INT_TYPES, ids=str)
@pytest.mark.parametrize(
    "op",
    ["add", "sub", "mul", "floordiv", "mod", "maximum", "minimum", "and", "or", "xor", "where"],
)
def test_integer_binary_ops_wrap_and_floor(
    device: str, dt: tv.DataType, op: str, rng: np.random.Generator
) -> None:
    a, b = random_values(rng, dt, N), random_values(rng, dt, N, positive=op in ("floordiv", "mod"))
    if op in ("floordiv", "mod") and dt.is_signed:
        b = np.where(rng.random(N) < 0.5, -b, b).clip(dt.min, dt.max)
    out = poisoned(N, dt)
    at(device, k.binary_op[tv.cdiv(N, BLOCK),])(
        tensor(a, dt), tensor(b, dt), out, OP=op, BLOCK=BLOCK
    )
    np.testing.assert_array_equal(host(out), reference_binary(op, a, b, dt))


@pytest.mark.parametrize("dt", [tv.f32, tv.f6e3m2fn, tv.i32, tv.i3], ids=str)
@pytest.mark.parametrize("op", ["lt", "le", "eq", "ne", "gt", "ge"])
def test_comparisons(device: str, dt: tv.DataType, op: str, rng: np.random.Generator) -> None:
    a = random_values(rng, dt, N)
    b = np.where(rng.random(N) < 0.3, a, random_values(rng, dt, N))
    out = np.full(N, -7, np.int32)
    at(device, k.compare_op[tv.cdiv(N, BLOCK),])(
        tensor(a, dt), tensor(b, dt), out, OP=op, BLOCK=BLOCK
    )
    expected = {"lt": a < b, "le": a <= b, "eq": a == b, "ne": a != b, "gt": a > b, "ge": a >= b}[
        op
    ]
    np.testing.assert_array_equal(out, expected.astype(np.int32))


UNARY_OPS = ["exp", "exp2", "log", "sqrt", "rsqrt", "abs", "neg", "tanh", "floor", "ceil", "tan",
             "atan", "erf", "sigmoid", "log1p", "expm1"]  # fmt: skip


@pytest.mark.parametrize("dt", [tv.f32, tv.f16, tv.bf16, tv.f8e4m3fn], ids=str)
@pytest.mark.parametrize("op", UNARY_OPS)
def test_unary_math_is_correctly_rounded(
    device: str, dt: tv.DataType, op: str, rng: np.random.Generator
) -> None:
    positive = op in ("log", "sqrt", "rsqrt", "log1p")
    a = random_values(rng, dt, N, positive=positive)
    if op in ("exp", "exp2", "expm1"):
        a = dt.round(a / 4).astype(np.float64)
    out = poisoned(N, dt)
    at(device, k.unary_op[tv.cdiv(N, BLOCK),])(tensor(a, dt), out, OP=op, BLOCK=BLOCK)
    with np.errstate(all="ignore"):
        exact = {
            "exp": np.exp(a),
            "exp2": np.exp2(a),
            "log": np.log(a),
            "sqrt": np.sqrt(a),
            "rsqrt": 1 / np.sqrt(a),
            "abs": np.abs(a),
            "neg": -a,
            "tanh": np.tanh(a),
            "floor": np.floor(a),
            "ceil": np.ceil(a),
            "tan": np.tan(a),
            "atan": np.arctan(a),
            "erf": np.array([math.erf(v) for v in a]),
            "sigmoid": 1 / (1 + np.exp(-a)),
            "log1p": np.log1p(a),
            "expm1": np.expm1(a),
        }[op]
    expected = dt.round(exact).astype(np.float64)
    approximate = op not in ("abs", "neg", "floor", "ceil")
    # the GPU's libm is within 2 ulp of float32 before the final rounding (tan: 4)
    same(host(out), expected, device, rtol=(8 if op == "tan" else 4) * dt.eps if approximate else 0)


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (tv.f32, tv.i8),
        (tv.f32, tv.u5),
        (tv.f32, tv.f6e3m2fn),
        (tv.f32, tv.f16),
        (tv.f16, tv.f32),
        (tv.i3, tv.f32),
        (tv.i32, tv.i4),
        (tv.u8, tv.i3),
        (tv.f6e3m2fn, tv.f4e2m1fn),
        (tv.bf16, tv.f8e5m2),
    ],
    ids=str,
)
def test_casts(device: str, src: tv.DataType, dst: tv.DataType, rng: np.random.Generator) -> None:
    a = random_values(rng, src, N)
    if src.is_float:
        a = src.round(a * 20).astype(np.float64)
    out = poisoned(N, dst)
    at(device, k.cast_op[tv.cdiv(N, BLOCK),])(tensor(a, src), out, BLOCK=BLOCK)
    if src.is_float and dst.is_integer:  # truncate toward zero, saturate
        expected = np.clip(np.trunc(a), dst.min, dst.max)
    elif dst.is_integer:  # integer narrowing wraps
        expected = wrap(a, dst)
    else:
        expected = dst.round(a)
    np.testing.assert_array_equal(host(out), np.asarray(expected, dtype=np.float64))


@pytest.mark.parametrize("dt", [tv.f32, tv.f16, tv.i32, tv.i8], ids=str)
@pytest.mark.parametrize("op", ["sum", "max", "min"])
@pytest.mark.parametrize("axis", [0, 1])
def test_reductions_along_an_axis(
    device: str, dt: tv.DataType, op: str, axis: int, rng: np.random.Generator
) -> None:
    rows, cols = 16, 32
    x = random_values(rng, dt, rows * cols).reshape(rows, cols)
    if dt.is_integer:
        x = np.clip(x, -4, 4)
    out_shape = (1, cols) if axis == 0 else (rows, 1)
    out = np.asarray(poisoned(int(np.prod(out_shape)), dt)).reshape(out_shape)
    at(device, k.reduce_op[1,])(tensor(x, dt), out, OP=op, AXIS=axis, R=rows, C=cols)
    exact = {"sum": x.sum, "max": x.max, "min": x.min}[op](axis=axis, keepdims=True)
    float_sum = op == "sum" and dt.is_float  # the GPU adds in float32, in its own order
    magnitude = float(np.abs(x).sum(axis=axis).max())
    same(
        host(out),
        dt.round(exact).astype(np.float64),
        device,
        rtol=2 * dt.eps if float_sum else 0,
        scale=magnitude,
        accumulates=float_sum,
    )


def test_full_reduction_gives_a_scalar(device: str, rng: np.random.Generator) -> None:
    x = rng.standard_normal((8, 64)).astype(np.float32)
    out = np.full(1, np.nan, np.float32)
    at(device, k.reduce_all[1,])(x, out, R=8, C=64)
    # f32 tree sum of 512 terms: error up to ~log2(512) * 2**-24 * sum|x|, whatever the sum
    same(out[:1], np.float32(x.astype(np.float64).sum()), device, 1e-6, np.abs(x).sum(),
         accumulates=True)  # fmt: skip


@pytest.mark.parametrize(
    ("m", "n", "kk", "atoms"),
    [(16, 8, 32, False), (64, 32, 64, True)],
    ids=["simt", "matrix-atoms"],
)
@pytest.mark.parametrize(
    ("in_dt", "acc_dt"), [(tv.f16, tv.f32), (tv.bf16, tv.f32), (tv.i8, tv.i32)], ids=str
)
def test_dot_adds_the_products_to_the_accumulator(
    device: str, in_dt, acc_dt, m: int, n: int, kk: int, atoms: bool, rng: np.random.Generator
) -> None:
    """A 16x8 tile is too small for 4 warps of mma atoms (SIMT); 64x32 runs on mma.sync on CUDA,
    its operands loaded straight from global memory in fragment layouts."""
    a = random_values(rng, in_dt, m * kk).reshape(m, kk)
    b = random_values(rng, in_dt, kk * n).reshape(kk, n)
    if in_dt.is_integer:
        a, b = np.clip(a, -100, 100), np.clip(b, -100, 100)
    c = random_values(rng, acc_dt, m * n).reshape(m, n)
    c_arg = tensor(c.reshape(-1), acc_dt).reshape(m, n)
    ab = (tensor(a.reshape(-1), in_dt).reshape(m, kk), tensor(b.reshape(-1), in_dt).reshape(kk, n))
    source = k.dot_op.emit("cuda:sm_80", *ab, c_arg, M=m, N=n, K=kk)
    assert ("tv_mma_m16n8k" in source[source.index('extern "C"') :]) == atoms
    at(device, k.dot_op[1,])(*ab, c_arg, M=m, N=n, K=kk)
    exact = a @ b + c
    rtol = 1e-6 if in_dt.is_float else 0  # float32 fma chains
    same(host(c_arg), acc_dt.round(exact), device, rtol=rtol, scale=np.abs(exact).max(),
         accumulates=in_dt.is_float)  # fmt: skip


@pytest.mark.parametrize("op", ["copy", "transpose"])
def test_2d_tiles_mask_both_edges_and_follow_strides(
    device: str, op: str, rng: np.random.Generator
) -> None:
    base = rng.standard_normal((70, 90)).astype(np.float32)
    x = base[::2, 1::3] if op == "copy" else base  # a strided view: 35 x 30
    out = np.full((x.shape[1], x.shape[0]) if op == "transpose" else x.shape, np.nan, np.float32)
    grid = (tv.cdiv(x.shape[0], 16), tv.cdiv(x.shape[1], 32))
    at(device, k.tile_2d[grid])(x, out, BM=16, BN=32, OP=op)
    np.testing.assert_array_equal(out, x.T if op == "transpose" else x)


def test_arange_expand_dims_reshape_broadcast(device: str, rng: np.random.Generator) -> None:
    n = 8
    x = rng.integers(-50, 50, n * n).astype(np.int32)
    out = np.full(n * n, -1, np.int32)
    at(device, k.shapes[1,])(x, out, N=n)
    np.testing.assert_array_equal(out, np.arange(n * n) + x)


@pytest.mark.parametrize("wtype", [tv.i3, tv.u5, tv.f6e3m2fn, tv.f4e2m1fn, tv.i1, tv.u7], ids=str)
def test_view_reinterprets_each_threads_bits_and_round_trips(
    device: str, wtype: tv.DataType, rng: np.random.Generator
) -> None:
    threads = 4 * registry.backend_for(device).warp_size(device)  # the default 4 warps
    nbytes = wtype.bits  # per thread: bits bytes = 8 elements, a whole number for every width
    raw = rng.integers(0, 256, threads * nbytes, dtype=np.uint8)
    out = np.zeros_like(raw)
    values = tv.PackedArray.empty((threads * 8,), wtype)
    at(device, k.view_roundtrip[1,])(raw, out, values, WTYPE=wtype, BYTES=nbytes)
    np.testing.assert_array_equal(out, raw)
    # the view reads the packed format: element i at bits [i*b, (i+1)*b) of the bytes
    np.testing.assert_array_equal(values.codes(), tv.unpack(raw, wtype, threads * 8, bits=True))


@pytest.mark.parametrize("swizzle", [False, True])
@pytest.mark.parametrize("dt", [tv.f16, tv.i3], ids=str)
def test_shared_memory_sub_tiles(
    device: str, swizzle: bool, dt: tv.DataType, rng: np.random.Generator
) -> None:
    n = 16
    x = random_values(rng, dt, n * n).reshape(n, n)
    x_arg = (
        tensor(x.reshape(-1), dt).reshape(n, n)
        if dt.bits >= 8
        else tv.PackedArray.from_values(x, dt)
    )
    out = tv.PackedArray.empty((n, n), dt) if dt.bits < 8 else np.full((n, n), np.nan, np.float16)
    at(device, k.shared_roundtrip[1,])(x_arg, out, N=n, SWIZZLE=swizzle)
    expected = np.concatenate([x[n // 2 :], x[n // 2 :]])
    np.testing.assert_array_equal(host(out), expected)


def test_block_ids_grid_sizes_dims_and_strides(device: str) -> None:
    x = np.zeros((6, 10), np.float32)[:, ::2]
    out = np.full((2 * 3 * 4, 4), -1, np.int32)
    at(device, k.grid_info[2, 3, 4])(out, x)
    np.testing.assert_array_equal(out, np.tile([6, 5, 10, 2], (24, 1)))


@pytest.mark.parametrize("n", [1, 3, 6])
def test_tuples_carried_through_a_loop(device: str, n: int, rng) -> None:
    x = rng.integers(-100, 100, 4 * (n + 2)).astype(np.int32)
    out = np.full(4, -1, np.int32)
    at(device, k.rotate_tuples[1,])(x, out, n)
    expected = sum(x[4 * i : 4 * i + 4] * (i + 1) for i in range(n))
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("n", [1, 7, 10, 26])
def test_loops_branches_while_static_range_and_funcs(device: str, n: int) -> None:
    out = np.full(4, -1, np.int32)
    at(device, k.control_flow[1,])(out, n, UNROLL=4)
    total = sum(i if i % 3 == 0 else -1 for i in range(n))
    count = next(c for c in range(n + 1) if c * c >= n)
    expected = min(0 + 1 + 2 + 3 + total, 1000) + count * 10000
    np.testing.assert_array_equal(out, [expected] * 4)
