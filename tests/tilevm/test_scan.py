"""Scans (``tv.cumsum``, ``tv.associative_scan``) on every executor, against numpy in float64 on
fresh random data with poisoned outputs: dtypes, axes, directions, warps, odd lengths, masked
edges, and layouts that put the scanned axis in slots, lanes and warps in every order (with
replication). Integer scans and max/min are exact everywhere; float sums on the interpreter
equal a left-to-right float32 running sum (float64 for f64) rounded once to the dtype, and
elsewhere are within the accumulation's rounding of the float64 sums."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import tilevm as tv
from tests.devices import DEVICES, at
from tilevm.layouts import register_layout

# cpu:intel (warps of 16 lanes) too: the scan's lane stages depend on the warp size
EVERY = [*DEVICES, "cpu:intel"]
FAST = [d for d in EVERY if not d.startswith("sycl")]  # SYCL compiles each kernel in ~2 s


@pytest.fixture(params=EVERY)
def device(request: pytest.FixtureRequest) -> str:
    """Every executor here (as the shared fixture), and the CPU emulating Intel's sub-groups."""
    return request.param


@tv.func
def larger(a, b):
    return tv.maximum(a, b)


@tv.func
def times(a, b):
    return a * b


@tv.func
def first(a, b):  # associative, not commutative: shows the order of the arguments
    return a


@tv.func
def smaller_by_where(a, b):
    return tv.where(b < a, b, a)


COMBINES = {"max": larger, "prod": times, "first": first, "min": smaller_by_where}


@tv.kernel
def scan2d(
    x: tv.Tensor,
    out: tv.Tensor,
    R: tv.constexpr,
    C: tv.constexpr,
    AXIS: tv.constexpr,
    OP: tv.constexpr = "sum",
    REVERSE: tv.constexpr = False,
    OTHER: tv.constexpr = 0,
    LAYOUT_SEED: tv.constexpr = None,
):
    t = tv.load(x, [0, 0], [R, C], other=OTHER)
    if LAYOUT_SEED is not None:
        t = tv.annotate(t, random_layout(LAYOUT_SEED, tv.num_threads()))
    if OP == "sum":
        y = tv.cumsum(t, axis=AXIS, reverse=REVERSE)
    else:
        y = tv.associative_scan(t, AXIS, COMBINES[OP], reverse=REVERSE)
    tv.store(out, y, [0, 0])


@tv.kernel
def scan1d(x: tv.Tensor, out: tv.Tensor, N: tv.constexpr, OP: tv.constexpr = "sum"):
    t = tv.load(x, [0], [N])
    y = tv.cumsum(t) if OP == "sum" else tv.associative_scan(t, -1, COMBINES[OP])
    tv.store(out, y, [0])


@tv.kernel
def masked_rows(x: tv.Tensor, out: tv.Tensor, BM: tv.constexpr, BN: tv.constexpr, OP: tv.constexpr):
    m0 = tv.block_id(0) * BM
    if OP == "sum":
        tile = tv.load(x, [m0, 0], [BM, BN])  # 0 outside: adds nothing
        y = tv.cumsum(tile, axis=1, reverse=True)
    else:
        tile = tv.load(x, [m0, 0], [BM, BN], other=float("-inf"))  # never the max
        y = tv.associative_scan(tile, 1, larger, reverse=True)
    tv.store(out, y, [m0, 0])


# ----- references -----------------------------------------------------------------------------


def _random(rng: np.random.Generator, dt: tv.DataType, shape, op: str) -> np.ndarray:
    """Exact values of ``dt`` (never all zeros); products stay near 1 so they neither vanish
    nor overflow."""
    if dt.is_integer:
        if op == "prod":
            return rng.choice([-1, 1, 1, 2, -2, 3], shape).astype(np.int64)
        lo, hi = max(int(dt.min), -1000), min(int(dt.max), 1000)
        return rng.integers(lo, hi, shape, endpoint=True)
    if op == "prod":
        return dt.round(1 + rng.uniform(-0.05, 0.05, shape)).astype(np.float64)
    return dt.round(rng.standard_normal(shape) * 4).astype(np.float64)


def _as_arg(values: np.ndarray, dt: tv.DataType) -> np.ndarray:
    return values.astype(tv.dtypes.to_numpy(dt))


def _poison(shape, dt: tv.DataType) -> np.ndarray:
    fill = np.nan if dt.is_float else dt.max  # every float dtype here has a NaN
    return np.full(shape, fill).astype(tv.dtypes.to_numpy(dt))


def _wrap(values, dt: tv.DataType) -> np.ndarray:
    """Python ints wrapped to ``dt``'s width (integer scans wrap, like integer sums)."""
    span = 1 << dt.bits
    flat = [int(v) % span for v in np.ravel(values)]
    if dt.kind == "int":
        flat = [v - span if v >= span // 2 else v for v in flat]
    return np.array(flat, dtype=object).reshape(np.shape(values))


def reference(x: np.ndarray, dt: tv.DataType, op: str, axis: int, reverse: bool) -> np.ndarray:
    """The scan in float64 (exact Python ints for integers), rounded once to ``dt``."""
    v = np.flip(x, axis) if reverse else x
    if dt.is_integer:
        v = v.astype(object)
    ufunc = {"sum": np.add, "max": np.maximum, "min": np.minimum, "prod": np.multiply}
    if op == "first":  # out[i] = first(x[0], ..., x[i]); reversed: first(x[i], ..., x[n-1])
        out = v if reverse else np.repeat(np.take(v, [0], axis), v.shape[axis], axis)
    else:
        out = ufunc[op].accumulate(v if dt.is_integer else v.astype(np.float64), axis=axis)
    out = np.flip(out, axis) if reverse else out
    if dt.is_integer:
        return _wrap(out, dt).astype(np.float64)
    return dt.round(out).astype(np.float64)


def tolerance(x: np.ndarray, dt: tv.DataType, op: str, axis: int, reverse: bool, device: str):
    """``atol`` per element. Max, min, first and integer scans are exact; on the interpreter
    so are sums against its sequential float32 model (``sequential_sum``). Elsewhere a sum adds in float32 (float64 for f64)
    along a path of at most ~64 additions (a thread's slots, log2 of the lanes, the warps),
    each off by half an ulp of the running sum of magnitudes, then rounds once to ``dt``
    (one ulp of the result). A product of factors near 1 is off by a few ulps per factor
    in ``dt`` (each combine rounds to the dtype) whatever the grouping."""
    if dt.is_integer or op in ("max", "min", "first") or (op == "sum" and device == "interp"):
        return 0.0
    ct_eps = 2.0**-52 if dt.bits == 64 else 2.0**-23
    v = np.abs(np.flip(x, axis) if reverse else x)
    if op == "sum":
        running = np.cumsum(v, axis=axis)
        running = np.flip(running, axis) if reverse else running
        return 64 * ct_eps * running + float(dt.eps) * running
    n = x.shape[axis]
    return 4 * n * float(dt.eps) * np.max(np.abs(reference(x, dt, "prod", axis, reverse)))


def sequential_sum(x: np.ndarray, dt: tv.DataType, axis: int, reverse: bool) -> np.ndarray:
    """The interpreter's cumsum of floats: running sums kept in the accumulator dtype (f32, or
    f64 for f64) and rounded to it after each addition, left to right, then once to ``dt``."""
    acc = np.float64 if dt.bits == 64 else np.float32
    v = np.flip(x, axis) if reverse else x
    out = np.cumsum(v.astype(acc), axis=axis, dtype=acc)
    out = np.flip(out, axis) if reverse else out
    return dt.round(out.astype(np.float64)).astype(np.float64)


def check(out: np.ndarray, x, dt, op, axis, reverse, device) -> None:
    if op == "sum" and device == "interp" and dt.is_float:
        expected = sequential_sum(x, dt, axis, reverse)
    else:
        expected = reference(x, dt, op, axis, reverse)
    atol = np.broadcast_to(tolerance(x, dt, op, axis, reverse, device), expected.shape)
    actual = out.astype(np.float64)
    if not atol.any():
        np.testing.assert_array_equal(actual, expected)
        return
    bad = ~(np.abs(actual - expected) <= atol)  # NaN (an element not written) fails too
    assert not bad.any(), f"{bad.sum()} elements off, e.g. {actual[bad][:4]} vs {expected[bad][:4]}"


# ----- cumsum ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dt", "shape", "axis", "warps"),
    [
        (tv.f32, (16, 64), 0, 4),
        (tv.f32, (16, 64), 1, 4),
        (tv.f16, (8, 128), 1, 2),
        (tv.bf16, (32, 32), 0, 1),
        (tv.f64, (24, 16), 0, 4),
        (tv.i32, (4, 256), 1, 4),
        (tv.i8, (64, 8), 0, 2),
        (tv.u16, (3, 48), 1, 1),
        (tv.i64, (16, 24), -2, 4),
        (tv.f32, (6, 96), 1, 3),  # 96 threads: warps that are not a power of two
    ],
    ids=str,
)
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_cumsum_follows_the_sum_rule_for_its_dtype(
    device: str, dt, shape, axis: int, warps: int, reverse: bool, rng
) -> None:
    x = _random(rng, dt, shape, "sum")
    out = _poison(shape, dt)
    at(device, scan2d[1,])(
        _as_arg(x, dt), out, R=shape[0], C=shape[1], AXIS=axis, REVERSE=reverse, warps=warps
    )
    check(out, x, dt, "sum", axis % 2, reverse, device)


@pytest.mark.parametrize("n", [1, 7, 100, 1000, 4096])
@pytest.mark.parametrize("op", ["sum", "max"])
def test_one_dimensional_scans_of_any_length(device: str, n: int, op: str, rng) -> None:
    """A tile of the next power of two; the elements past ``n`` read 0 (they follow every
    element, so a forward scan of the first ``n`` does not see them)."""
    tile = max(1, 1 << (n - 1).bit_length())
    x = _random(rng, tv.f32, (n,), op)
    out = _poison((n,), tv.f32)
    at(device, scan1d[1,])(_as_arg(x, tv.f32), out, N=tile, OP=op, warps=4)
    check(out, x, tv.f32, op, 0, False, device)


@pytest.mark.parametrize("dt", [tv.i3, tv.u5, tv.f6e3m2fn], ids=str)
@pytest.mark.parametrize("op", ["sum", "max"])
def test_scans_of_bit_packed_tiles(device: str, dt: tv.DataType, op: str, rng) -> None:
    """Any width: integer sums wrap to 3 or 5 bits; f6e3m2fn running sums are multiples of
    2**-4 below 2**13, exact in float32 too, so every executor rounds the same value once."""
    n = 256
    values = _random(rng, dt, (n,), op) if dt.is_integer else dt.round(rng.standard_normal(n))
    out = tv.PackedArray.from_values(np.zeros(n), dt)
    at(device, scan1d[1,])(tv.PackedArray.from_values(values, dt), out, N=n, OP=op, warps=2)
    np.testing.assert_array_equal(out.values().astype(np.float64),
                                  reference(values, dt, op, 0, False))  # fmt: skip


# ----- associative_scan -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dt", "op"),
    [
        (tv.f32, "max"),
        (tv.f16, "max"),
        (tv.i32, "min"),
        (tv.f32, "prod"),
        (tv.i32, "prod"),
        (tv.u8, "prod"),
        (tv.f64, "first"),
    ],
    ids=str,
)
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_associative_scans_with_user_combines(
    device: str, dt, op: str, axis: int, reverse: bool, rng
) -> None:
    shape = (16, 96)
    x = _random(rng, dt, shape, op)
    out = _poison(shape, dt)
    at(device, scan2d[1,])(
        _as_arg(x, dt), out, R=16, C=96, AXIS=axis, OP=op, REVERSE=reverse, warps=4
    )
    check(out, x, dt, op, axis, reverse, device)


@pytest.mark.parametrize("op", ["sum", "max"])
def test_masked_edge_rows_scan_what_was_loaded(device: str, op: str, rng) -> None:
    """Rows and columns past the tensor read ``other`` (0 for sums, -inf for max): a reverse
    scan starts from the padding, which changes nothing; the padding is never stored."""
    rows, cols = 21, 77
    x = _random(rng, tv.f32, (rows, cols), op)
    out = _poison((rows, cols), tv.f32)
    at(device, masked_rows[tv.cdiv(rows, 8),])(
        _as_arg(x, tv.f32), out, BM=8, BN=128, OP=op, warps=2
    )
    check(out, x, tv.f32, op, 1, True, device)


# ----- layouts --------------------------------------------------------------------------------


def random_layout(seed: int, threads: int, rank: int = 2):
    """A random mode table (its shape depends on ``seed`` only) whose power-of-two modes may
    go to threads, in any order, the rest of the block replicating, and the other modes to
    slots: scanned digits sit in slots, lanes and warps in every arrangement."""
    r = np.random.default_rng(seed)
    modes = [[int(n) for n in r.choice([2, 2, 4, 3, 5, 8], int(r.integers(1, 4)))]
             for _ in range(rank)]  # fmt: skip
    sizes = [s for m in modes for s in m]
    spatial, local, used = [], [], 1
    for e in (int(i) for i in r.permutation(len(sizes))):
        s = sizes[e]
        if s & (s - 1) == 0 and threads % (used * s) == 0 and r.random() < 0.6:
            spatial.append(e)
            used *= s
        else:
            local.append(e)
    if threads > used:
        spatial.insert(int(r.integers(0, len(spatial) + 1)), -(threads // used))
    return register_layout([int(np.prod(m)) for m in modes], modes, spatial, local)


SEEDS = [2, 8, 15, 17, 18, 22, 26, 30, 36, 50, 64, 74]


@pytest.mark.parametrize("device", FAST)
@pytest.mark.parametrize("seed", SEEDS)
def test_scans_along_any_layout(device: str, seed: int, rng) -> None:
    """Random layouts, replicated ones included, with power-of-two and other mode sizes: an
    exact integer sum, a max and the non-commutative ``first``, both directions."""
    shape = random_layout(seed, 128).shape  # the shape depends on the seed only
    warps = 2 if device.endswith("amd") else 4  # 128 threads (64 on cpu:intel)
    for op, axis, reverse in [("sum", 0, False), ("max", 1, True), ("first", seed % 2, True),
                              ("sum", 1, True), ("first", 1 - seed % 2, False)]:  # fmt: skip
        x = _random(rng, tv.i32, shape, op)
        out = _poison(shape, tv.i32)
        at(device, scan2d[1,])(
            _as_arg(x, tv.i32), out, R=shape[0], C=shape[1], AXIS=axis, OP=op,
            REVERSE=reverse, LAYOUT_SEED=seed, warps=warps,
        )  # fmt: skip
        check(out, x, tv.i32, op, axis, reverse, device)


# ----- errors ---------------------------------------------------------------------------------


@tv.kernel
def bad_axis(x: tv.Tensor[tv.f32]):
    t = tv.load(x, [0, 0], [4, 32])
    tv.store(x, tv.cumsum(t, axis=2), [0, 0])  # <- error


@tv.kernel
def axis_not_an_int(x: tv.Tensor[tv.f32]):
    t = tv.load(x, [0, 0], [4, 32])
    tv.store(x, tv.associative_scan(t, (0, 1), larger), [0, 0])  # <- error


def plain_python_max(a, b):
    return max(a, b)


@tv.kernel
def combine_not_a_func(x: tv.Tensor[tv.f32]):
    t = tv.load(x, [0], [64])
    tv.store(x, tv.associative_scan(t, 0, plain_python_max), [0])  # <- error


@tv.func
def three(a, b, c):
    return a + b + c


@tv.kernel
def combine_wrong_arity(x: tv.Tensor[tv.f32]):
    t = tv.load(x, [0], [64])
    tv.store(x, tv.associative_scan(t, 0, three), [0])  # <- error


@tv.func
def widening(a, b):
    return (a + b).to(tv.f32)


@tv.kernel
def combine_changes_dtype(x: tv.Tensor[tv.f16]):
    t = tv.load(x, [0], [64])
    tv.store(x, tv.associative_scan(t, 0, widening), [0])  # <- error


@tv.func
def returns_nothing(a, b):
    a + b  # noqa: B018


@tv.kernel
def combine_without_result(x: tv.Tensor[tv.f32]):
    t = tv.load(x, [0], [64])
    tv.store(x, tv.associative_scan(t, 0, returns_nothing), [0])  # <- error


@tv.func
def makes_a_tile(a, b):
    return tv.sum(tv.full([4], a, tv.f32)) + b  # <- error


@tv.kernel
def combine_with_a_tile(x: tv.Tensor[tv.f32]):
    t = tv.load(x, [0], [64])
    tv.store(x, tv.associative_scan(t, 0, makes_a_tile), [0])


@tv.func
def branches(a, b):
    r = a
    if b > a:  # <- error
        r = b
    return r


@tv.kernel
def combine_with_a_branch(x: tv.Tensor[tv.f32]):
    t = tv.load(x, [0], [64])
    tv.store(x, tv.associative_scan(t, 0, branches), [0])


@tv.kernel
def scan_of_a_scalar(x: tv.Tensor[tv.f32]):
    s = x.shape[0].to(tv.f32)
    tv.store(x, tv.cumsum(s), [0])  # <- error


@tv.kernel
def runtime_reverse(x: tv.Tensor[tv.f32], flag: tv.i32):
    t = tv.load(x, [0], [64])
    tv.store(x, tv.cumsum(t, 0, flag), [0])  # <- error


# (kernel, the function holding the marked line, class, code, builtin)
ERRORS = [
    (bad_axis, None, tv.ShapeError, "scan-axis", ValueError),
    (axis_not_an_int, None, tv.ShapeError, "scan-axis", ValueError),
    (combine_not_a_func, None, tv.CompileError, "scan-combine", None),
    (combine_wrong_arity, None, tv.CompileError, "scan-combine", None),
    (combine_changes_dtype, None, tv.KernelTypeError, "scan-dtype", TypeError),
    (combine_without_result, None, tv.CompileError, "scan-combine", None),
    (combine_with_a_tile, makes_a_tile, tv.CompileError, "scan-combine", None),
    (combine_with_a_branch, branches, tv.CompileError, "scan-combine", None),
    (scan_of_a_scalar, None, tv.KernelTypeError, "type", TypeError),
    (runtime_reverse, None, tv.KernelTypeError, "type", TypeError),
]


def _marked_line(fn) -> int:
    lines, start = inspect.getsourcelines(fn)
    return next(start + i for i, text in enumerate(lines) if "# <- error" in text)


@pytest.mark.parametrize(("kernel", "where", "cls", "code", "builtin"), ERRORS,
                         ids=[e[0].__name__ for e in ERRORS])  # fmt: skip
def test_scan_mistakes_are_errors_at_their_line(kernel, where, cls, code, builtin) -> None:
    dtype = np.float16 if kernel is combine_changes_dtype else np.float32
    x = np.zeros((64,) if kernel not in (bad_axis, axis_not_an_int) else (4, 32), dtype)
    args = (x, 1) if kernel is runtime_reverse else (x,)
    with pytest.raises(cls) as info:
        kernel[1,](*args, device="interp")
    err = info.value
    assert isinstance(err, tv.TilevmError) and err.code == code
    if builtin is not None:
        assert isinstance(err, builtin)
    assert err.location is not None and err.location.file.endswith("test_scan.py")
    assert err.location.line == _marked_line((where or kernel).fn)
    assert err.expected and err.found
    assert f"error[{code}]" in str(err)


def test_combine_errors_say_how_to_write_one() -> None:
    with pytest.raises(tv.CompileError) as info:
        combine_not_a_func[1,](np.zeros(64, np.float32), device="interp")
    assert "@tv.func" in info.value.hint and "plain_python_max" in info.value.found
    with pytest.raises(tv.CompileError) as info:
        combine_wrong_arity[1,](np.zeros(64, np.float32), device="interp")
    assert "(a, b, c)" in info.value.found
    with pytest.raises(tv.KernelTypeError) as info:
        combine_changes_dtype[1,](np.zeros(64, np.float16), device="interp")
    assert "f16" in info.value.expected and ".to(tv.f16)" in info.value.hint


def test_the_ir_shows_the_combine_under_its_scan() -> None:
    x = np.zeros((16, 96), np.float32)
    text = scan2d.ir(x, x, R=16, C=96, AXIS=1, OP="max")
    lines = text.splitlines()
    at_scan = next(i for i, ln in enumerate(lines) if "= scan(" in ln)
    assert "op='combine'" in lines[at_scan] and "reverse=False" in lines[at_scan]
    assert "binary(%a, %b, op='maximum')" in lines[at_scan + 1]


# ----- on a CUDA GPU --------------------------------------------------------------------------


@tv.kernel
def rows_of_a_matrix(x: tv.Tensor, out: tv.Tensor, BM: tv.constexpr, BN: tv.constexpr,
                     OP: tv.constexpr):  # fmt: skip
    m0 = tv.block_id(0) * BM
    tile = tv.load(x, [m0, 0], [BM, BN], other=0 if OP == "sum" else 1)
    y = tv.cumsum(tile, axis=1) if OP == "sum" else tv.associative_scan(tile, 1, COMBINES[OP])
    tv.store(out, y, [m0, 0])


@pytest.mark.gpu
@pytest.mark.skipif("cuda" not in DEVICES, reason="needs a CUDA GPU")
@pytest.mark.parametrize(("dtype", "op"), [("float32", "sum"), ("float16", "sum"),
                                           ("int32", "sum"), ("float32", "max"),
                                           ("bfloat16", "max"), ("int64", "prod")])  # fmt: skip
@pytest.mark.parametrize(("rows", "cols", "bm", "bn", "warps"),
                         [(4096, 1000, 4, 1024, 4), (333, 4097, 1, 8192, 8),
                          (2048, 96, 32, 128, 4), (64, 64, 64, 64, 1)])  # fmt: skip
def test_row_scans_of_torch_cuda_tensors_match_torch(dtype, op, rows, cols, bm, bn, warps, rng):
    """Many blocks, torch CUDA tensors, against torch's own scans (float64 for float sums)."""
    import torch

    tdt = getattr(torch, dtype)
    if op == "prod":  # signs only: no product overflows (torch's would be undefined)
        host = rng.choice([-1, 1], (rows, cols))
    elif tdt.is_floating_point:
        host = rng.standard_normal((rows, cols))
    else:
        host = rng.integers(-1000, 1000, (rows, cols))
    x = torch.tensor(host, device="cuda").to(tdt)
    out = torch.full_like(x, float("nan") if tdt.is_floating_point else -7)
    rows_of_a_matrix[tv.cdiv(rows, bm),](x, out, BM=bm, BN=bn, OP=op, warps=warps)
    torch.cuda.synchronize()
    if op == "max":
        expected = torch.cummax(x, dim=1).values
        assert torch.equal(out, expected)
    elif op == "prod":
        assert torch.equal(out, torch.cumprod(x, dim=1))
    elif not tdt.is_floating_point:
        assert torch.equal(out, torch.cumsum(x, dim=1, dtype=torch.int64).to(tdt))
    else:
        wide = x.double()
        expected = torch.cumsum(wide, dim=1)
        # float32 accumulation along <= ~64 additions per path, then one rounding to the dtype
        bound = 64 * 2.0**-23 * torch.cumsum(wide.abs(), dim=1) + expected.abs() * (
            2.0**-10 if tdt == torch.float16 else 2.0**-23
        )
        assert bool(((out.double() - expected).abs() <= bound).all())
