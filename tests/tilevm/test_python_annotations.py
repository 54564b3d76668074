"""Scalar parameters annotated ``int``, ``float`` and ``bool`` (docs/language.md, Parameters):
i32 (i64 for a launch whose value does not fit i32), f32 and u1, on every executor, on the
first launch and on repeat launches, with every value checked against its dtype."""

from __future__ import annotations

import numpy as np
import pytest

import tilevm as tv
from tests.devices import DEVICES, at, need_compiler

EXECUTORS = [*DEVICES, "cpu:intel"]


@pytest.fixture(params=EXECUTORS)
def executor(request: pytest.FixtureRequest) -> str:
    return request.param


@tv.kernel
def python_scalars(ints: tv.Tensor[tv.i64], floats: tv.Tensor[tv.f64], n: int, x: float,
                   flag: bool, BLOCK: tv.constexpr):  # fmt: skip
    """``n * 2`` in n's own dtype (i32 wraps past 2**31, i64 does not); ``x`` as stored (an f32
    widened); ``flag`` as a condition and as a value."""
    idx = tv.arange(0, BLOCK).to(tv.i64)
    doubled = tv.full([BLOCK], n * 2, tv.i64)
    if flag:
        tv.store(ints, doubled + idx, [0])
    else:
        tv.store(ints, doubled - idx, [0])
    picked = tv.where(flag, tv.full([BLOCK], x, tv.f64), -1.0)
    tv.store(floats, picked + tv.full([BLOCK], flag, tv.f64), [0])


def _expected(n: int, x: float, flag: bool, block: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(block, dtype=np.int64)
    doubled = np.int64(np.int32(np.int64(n * 2) & 0xFFFFFFFF)) if -(2**31) <= n < 2**31 else n * 2
    ints = doubled + idx if flag else doubled - idx
    floats = np.full(block, float(np.float32(x)) if flag else -1.0) + float(flag)
    return ints, floats


def test_int_float_and_bool_parameters_on_every_executor(executor: str, rng) -> None:
    """The same kernel launched again and again: the first launch of each kind takes the full
    path, the others the repeat path; an int past i32 specializes to i64 and back."""
    block = 16
    small = int(rng.integers(2**29, 2**31))  # n * 2 wraps in i32
    wide = int(rng.integers(2**31, 2**40))
    negative_wide = -int(rng.integers(2**31 + 1, 2**40))
    x = float(rng.uniform(-10, 10))  # not an f32: rounded once
    launches = [(small, x, True), (small + 1, x / 3, False), (wide, x, True), (small, 1e-3, True),
                (negative_wide, x, False), (wide + 7, -x, True), (3, 0.1, False)]  # fmt: skip
    for n, value, flag in launches:
        ints, floats = np.full(block, -7, np.int64), np.full(block, np.nan)
        at(executor, python_scalars[1,])(ints, floats, n, value, flag, BLOCK=block, warps=1)
        want_ints, want_floats = _expected(n, value, flag, block)
        np.testing.assert_array_equal(ints, want_ints, err_msg=f"n={n}")
        np.testing.assert_array_equal(floats, want_floats, err_msg=f"x={value}")


def test_the_annotations_give_i32_i64_f32_and_u1() -> None:
    ints, floats = np.zeros(4, np.int64), np.zeros(4)
    text = python_scalars.ir(ints, floats, 5, 1.5, True, BLOCK=4)
    assert "n: i32" in text and "x: f32" in text and "flag: u1" in text, text
    wide = python_scalars.ir(ints, floats, 2**31, 1.5, False, BLOCK=4)
    assert "n: i64" in wide, wide
    assert "n: i32" in python_scalars.ir(ints, floats, -(2**31), 1.5, False, BLOCK=4)


@tv.kernel
def _fill(out: tv.Tensor[tv.i64], n: int, x: float, flag: bool):
    whole = tv.full([8], x, tv.f32).to(tv.i64)  # truncated toward zero
    tv.store(out, tv.full([8], n, tv.i64) + whole + tv.full([8], flag, tv.i64), [0])


@pytest.mark.parametrize("device", ["cpu", "interp", "cpu:intel"])
@pytest.mark.parametrize(
    ("args", "error", "code", "needle"),
    [
        ((2**63, 1.0, True), tv.LaunchError, "scalar-range", "argument 'n' = 9223372036854775808 "
         "does not fit i64"),
        ((-(2**63) - 1, 1.0, True), tv.LaunchError, "scalar-range", "does not fit i64"),
        ((1, 1e40, True), tv.LaunchError, "scalar-range", "argument 'x' = 1e+40 does not fit f32"),
        ((2.5, 1.0, True), tv.LaunchTypeError, "scalar-type", "argument 'n' must be an int"),
        ((2.0, 1.0, True), tv.LaunchTypeError, "scalar-type", "argument 'n' must be an int"),
        ((1, "1", True), tv.LaunchTypeError, "scalar-type", "argument 'x' must be a float"),
        ((1, 1.0, 1), tv.LaunchTypeError, "scalar-type", "argument 'flag' must be a bool"),
        ((1, 1.0, np.zeros(2)), tv.LaunchTypeError, "scalar-type", "must be a bool"),
    ],
)  # fmt: skip
def test_values_that_do_not_fit_are_refused_on_every_launch(
    device: str, args, error: type, code: str, needle: str
) -> None:
    """A first launch and a repeat launch of the same kinds of values (the repeat path holds an
    entry for them) both refuse the value: nothing is truncated."""
    out = np.full(8, -1, np.int64)
    n, x, flag = 7, 2.0, True
    _fill[1,](out, n, x, flag, warps=1, device=device)
    _fill[1,](out, 2**40, x, flag, warps=1, device=device)  # an i64 entry too
    np.testing.assert_array_equal(out, 2**40 + 3)
    for _ in range(2):
        with pytest.raises(error) as info:
            _fill[1,](out, *args, warps=1, device=device)
        assert info.value.code == code and needle in str(info.value), str(info.value)
        assert isinstance(info.value, tv.TilevmError)
        assert info.value.expected is not None and info.value.hint is not None
    np.testing.assert_array_equal(out, 2**40 + 3)  # nothing written
    _fill[1,](out, -5, -2.5, False, warps=1, device=device)
    np.testing.assert_array_equal(out, -7)


@pytest.mark.parametrize("target", ["cuda:sm_90a", "hip:gfx942"])
@pytest.mark.parametrize("n", [5, 2**40], ids=["i32", "i64"])
def test_python_scalars_compile_for_gpus(target: str, n: int) -> None:
    if not target.startswith("sycl"):
        need_compiler(target)
    ints, floats = np.zeros(16, np.int64), np.zeros(16)
    built = python_scalars.compile(target, ints, floats, n, 0.5, True, BLOCK=16)
    assert built.binary
    source = python_scalars.emit(target, ints, floats, n, 0.5, True, BLOCK=16)
    assert ("int64_t n" if n > 2**31 else "int32_t n") in source, source[:2000]
