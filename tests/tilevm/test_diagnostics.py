"""Each diagnostic: the right error class and code, the file:line:col of the mistake with the
source line and a caret, what was expected and found, a hint where one helps, and JSON."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

import tilevm as tv
from tests.tilevm import bad_kernels as bad


def marked_line(kernel: tv.Kernel) -> int:
    lines, first = inspect.getsourcelines(kernel.fn)
    return next(first + i for i, text in enumerate(lines) if "# <- error" in text)


F32 = np.zeros(256, np.float32)

INTERP = {"device": "interp"}
CASES = [
    (bad.uses_lambda, (F32,), {}, tv.UnsupportedSyntaxError, "unsupported-syntax", SyntaxError),
    (bad.shape_mismatch, (F32,), {}, tv.ShapeError, "shape", ValueError),
    (
        bad.dtype_mismatch,
        (F32, np.zeros(64, np.float16)),
        {},
        tv.KernelTypeError,
        "type",
        TypeError,
    ),
    (bad.int_true_division, (np.zeros(64, np.int32),), {}, tv.KernelTypeError, "type", TypeError),
    (bad.undefined_name, (F32,), {}, tv.CompileError, "undefined-name", None),
    (bad.tile_condition, (F32,), {}, tv.CompileError, "condition", None),
    (bad.type_changes_in_loop, (F32, 3), {}, tv.KernelTypeError, "type", TypeError),
    (bad.bad_view, (np.zeros(128, np.uint8),), {}, tv.ShapeError, "shape", ValueError),
    (bad.store_wrong_dtype, (np.zeros(64, np.float16),), {}, tv.KernelTypeError, "type", TypeError),
    (bad.runtime_arange, (np.zeros(64, np.int32), 5), {}, tv.KernelTypeError, "type", TypeError),
    (bad.bad_block, (F32,), {"BLOCK": 0}, tv.KernelTypeError, "type", TypeError),
    (bad.returns_value, (F32,), {}, tv.UnsupportedSyntaxError, "unsupported-syntax", SyntaxError),
    (bad.static_assert, (F32,), {"BLOCK": 48}, tv.CompileError, "static-assert", None),
    (bad.wrong_builtin_args, (F32,), {}, tv.KernelTypeError, "type", TypeError),
    # checked while running: the interpreter is the executor that checks every access
    (bad.false_assumption, (F32, 20), INTERP, tv.TilevmError, "runtime", RuntimeError),
    # a compile-time offset past the shared tile: an error when it compiles, on every device
    # (the interpreter caught it at run time; the CPU read past its workspace and crashed)
    (bad.shared_out_of_bounds, (F32,), {}, tv.ShapeError, "shape", ValueError),
    (bad.slice_subscript, (F32,), {}, tv.UnsupportedSyntaxError, "unsupported-syntax", SyntaxError),
    (bad.runtime_python_call, (F32,), {}, tv.CompileError, "call", None),
    (bad.pipelined_range, (F32,), {}, tv.CompileError, "unsupported-option", None),
    (bad.copy_wrong_dtype, (F32,), {}, tv.KernelTypeError, "type", TypeError),
    (bad.copy_too_large, (F32,), {}, tv.ShapeError, "shape", ValueError),
    (bad.wait_runtime_count, (F32, 2), {}, tv.KernelTypeError, "type", TypeError),
    (bad.layout_rebound_in_loop, (F32, 3), {}, tv.CompileError, "loop-value", None),
    (bad.compile_time_float_division_by_zero, (F32,), {}, tv.KernelValueError,
     "division-by-zero", ValueError),  # a raw ZeroDivisionError before
    (bad.compile_time_string_arithmetic, (F32,), {}, tv.KernelTypeError, "type", TypeError),
    # each leaked a raw TypeError or an LLVM parse error
    (bad.where_of_a_tensor_argument, (F32,), {}, tv.KernelTypeError, "type", TypeError),
    (bad.math_of_none, (F32,), {}, tv.KernelTypeError, "type", TypeError),
    (bad.where_with_a_string, (F32,), {}, tv.KernelTypeError, "type", TypeError),
    (bad.compare_with_a_list, (F32,), {}, tv.KernelTypeError, "type", TypeError),
    # a raw TypeError from range(), and a MemoryError (the interpreter allocated 256 TiB)
    (bad.static_range_of_a_float, (F32,), INTERP, tv.CompileError, "static-range", None),
    (bad.shared_tile_too_large, (F32,), INTERP, tv.ShapeError, "shared-memory", ValueError),
]


@pytest.mark.parametrize(
    ("kernel", "args", "kwargs", "cls", "code", "builtin"),
    CASES,
    ids=lambda c: getattr(c, "__name__", ""),
)
def test_diagnostic_points_at_the_mistake(kernel, args, kwargs, cls, code, builtin) -> None:
    with pytest.raises(cls) as info:
        kernel[1,](*args, **kwargs)
    err = info.value
    assert err.code == code
    if builtin is not None:
        assert isinstance(err, builtin)
    line = marked_line(kernel)
    assert err.location is not None and err.location.line == line
    assert err.location.file.endswith("bad_kernels.py")
    text = str(err)
    rendered = text.splitlines()
    assert rendered[0] == f"{err.location.file}:{line}:{err.location.col + 1}"
    assert "# <- error" in rendered[1]
    assert rendered[2].strip() == "^" and rendered[2].index("^") == 4 + err.location.col
    assert f"error[{code}]" in text
    data = json.loads(json.dumps(err.to_dict()))
    assert data["location"]["line"] == line and data["code"] == code


def test_type_errors_say_what_was_expected_and_how_to_fix() -> None:
    with pytest.raises(tv.KernelTypeError) as info:
        bad.dtype_mismatch[1,](F32, np.zeros(64, np.float16))
    err = info.value
    assert err.found == "f32, f16" and "one dtype" in err.expected and ".to(" in err.hint
    with pytest.raises(tv.ShapeError) as info:
        bad.shape_mismatch[1,](F32)
    assert "[64] and [32]" in info.value.found and "broadcast" in info.value.message


def test_compile_errors_keep_internal_causes_chained() -> None:
    with pytest.raises(tv.CompileError) as info:
        bad.runtime_python_call[1,](F32)
    assert "sorted" in info.value.message


@tv.kernel
def _fixed_layout(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32]):
    v = tv.load(x, [0], [64], layout=tv.layouts.spatial(32) * tv.layouts.local(2))
    tv.store(out, v + 1.0, [0])


@pytest.mark.parametrize("device", ["cpu:intel", "cpu:amd"])  # warps of 16 and of 64 threads
def test_a_layout_over_other_than_the_blocks_threads_is_an_error(device: str) -> None:
    """spatial(32) in a block of 16 threads left half the tile unwritten, silently."""
    x, out = np.arange(64, dtype=np.float32), np.full(64, np.nan, np.float32)
    with pytest.raises(tv.ShapeError) as info:
        _fixed_layout[1,](x, out, device=device, warps=1)
    assert "threads differ from the block's" in str(info.value)
    assert info.value.location is not None and info.value.location.line > 0
    _fixed_layout[1,](x, out, device="cpu", warps=1)  # 32 threads: the layout fits
    np.testing.assert_array_equal(out, x + 1)


PADDING = {"other": 5.0}


@tv.kernel
def _padded_by_keywords(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32]):
    tv.store(out, tv.load(x, [0], [64], **PADDING), [0])


@tv.kernel
def _keyword_twice(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32]):
    tv.store(out, tv.load(x, [0], [64], other=1.0, **PADDING), [0])


def test_keyword_unpacking_in_a_kernel_call() -> None:
    """tv.load(..., **{"other": 5.0}) dropped the keywords: the padding was 0."""
    x = np.arange(40, dtype=np.float32)
    out = np.full(64, np.nan, np.float32)
    _padded_by_keywords[1,](x, out, warps=1, device="interp")
    np.testing.assert_array_equal(out, np.concatenate([x, np.full(24, 5.0, np.float32)]))
    with pytest.raises(tv.CompileError, match="'other' given twice") as info:
        _keyword_twice[1,](x, out, warps=1, device="interp")
    assert info.value.location is not None


@pytest.mark.parametrize("device", ["interp", "cpu"])
@pytest.mark.parametrize(
    ("kernel", "args", "code", "text"),
    [
        (bad.view_with_a_tuple_layout, "u8", "type", "must be a register layout"),
        (bad.print_a_tensor_argument, "f32", "type", "prints scalars and tiles"),
        (bad.endless_recursion, "f32", "call-depth", "nest deeper than 64"),
        (bad.range_step_zero, "f32", "range-step", "step is 0"),  # ran 0 times / faulted
        (bad.static_range_step_zero, "f32", "range-step", "step is 0"),  # a raw ValueError
    ],
    ids=["view-layout-tuple", "print-tensor", "recursion", "range-0", "static-range-0"],
)
def test_bad_kernels_that_raised_internal_errors(kernel, args, code, text, device) -> None:
    """These raised AttributeError, an LLVM parse error and RecursionError."""
    arrays = (
        [np.zeros(128, np.uint8), np.zeros(128, np.uint8)]
        if args == "u8"
        else [np.zeros(32, np.float32)]
    )
    arrays = arrays[: len(kernel.signature.parameters)]
    with pytest.raises(tv.TilevmError, match=text) as info:
        kernel[1,](*arrays, device=device)
    assert info.value.code == code and info.value.location is not None
    assert isinstance(info.value, (TypeError, ValueError, RecursionError))


TRACEBACK_SCRIPT = """\
import os, sys
import numpy as np
import tilevm as tv
from tilevm.stdlib import matmul as mm


@tv.kernel
def bad(x: tv.Tensor, out: tv.Tensor, N: tv.constexpr):
    v = tv.load(x, [0], [N])
    tv.store(out, v + tv.nonexistent(v), [0])


x = np.ones(32, np.float32)
how = sys.argv[1]
if how == "launch":
    bad[1,](x, x.copy(), N=32, device="cpu")
elif how == "emit":
    bad.emit("cuda:sm_90a", x, x, N=32)
else:  # a stdlib entry point: operands of the wrong dtype
    mm.matmul(np.ones((4, 4), np.int8), np.ones((4, 4), np.int8), device="cpu")
"""


@pytest.mark.parametrize("how", ["launch", "emit", "stdlib"])
def test_errors_show_the_users_frame_not_the_compilers(how: str, tmp_path) -> None:
    # a compile error printed 7-12 frames of tilevm's own code before its message
    import os
    import re
    import subprocess
    import sys

    script = tmp_path / "user_script.py"
    script.write_text(TRACEBACK_SCRIPT)

    def run(**env: str) -> str:
        result = subprocess.run(
            [sys.executable, str(script), how], capture_output=True, text=True,
            env={**os.environ, **env}, timeout=120,
        )  # fmt: skip
        assert result.returncode == 1, result.stderr
        return result.stderr

    text = run(TILEVM_FULL_TRACEBACK="0")
    frames = re.findall(r'^  File "([^"]+)"', text, re.M)
    assert frames[0] == str(script), text
    assert len(frames) <= 2, text  # the user's line, and the entry point that re-raised
    assert "tilevm" in text.splitlines()[-1] or "error[" in text, text
    if how != "stdlib":
        assert "user_script.py:10:" in text and "^" in text  # the kernel's line and caret
    full = re.findall(r'^  File "', run(TILEVM_FULL_TRACEBACK="1"), re.M)
    assert len(full) > len(frames)  # compiler developers can keep every frame


@tv.kernel
def _fold_by_zero(x: tv.Tensor[tv.i32], out: tv.Tensor[tv.i32], N: tv.constexpr):
    v = tv.load(x, [0], [32])
    tv.store(out, v * (N // 0) + (N % 0) + v // 0 + v % 0, [0])


@pytest.mark.parametrize("device", ["interp", "cpu"])
def test_integer_division_by_zero_folds_as_it_runs(device: str, rng) -> None:
    # `N // 0` at compile time leaked a raw ZeroDivisionError; the language gives 0 (and `x % 0`
    # gives x) at compile time as at run time
    x = rng.integers(-50, 50, 32).astype(np.int32)
    out = np.full(32, -7, np.int32)
    _fold_by_zero[1,](x, out, N=9, device=device)
    np.testing.assert_array_equal(out, 9 + x)


@tv.kernel
def _folded_math(out: tv.Tensor[tv.f32], BIG: tv.constexpr):
    values = [tv.exp(BIG), tv.log(-1.0), tv.log(0.0), tv.sqrt(-4.0), tv.rsqrt(0.0), tv.exp(1.0)]
    for i in tv.static_range(len(values)):
        tv.store(out, tv.full([1], values[i], tv.f32), [i])


@pytest.mark.parametrize("device", ["interp", "cpu"])
def test_compile_time_math_gives_ieee_results(device: str) -> None:
    # exp of a large constexpr raised a raw OverflowError, log(-1) a raw ValueError
    out = np.zeros(6, np.float32)
    _folded_math[1,](out, BIG=128_000_000, device=device)
    np.testing.assert_array_equal(out[[0, 2, 4]], [np.inf, -np.inf, np.inf])
    assert np.isnan(out[[1, 3]]).all() and out[5] == np.float32(np.e)


@tv.kernel
def _alias(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32]):
    a = tv.load(x, [0], [32])
    b = a  # the same value under a second name
    tv.store(out, a + b * 2.0, [0])


@pytest.mark.parametrize("device", ["interp", "cpu"])
def test_a_second_name_for_a_value(device: str, rng) -> None:
    # `b = a` right after `a = tv.load(...)` renamed the load's result to b: an internal
    # VerifyError ("%a is used before it is defined")
    x = rng.random(32).astype(np.float32)
    out = np.full(32, np.nan, np.float32)
    _alias[1,](x, out, device=device)
    np.testing.assert_allclose(out, 3 * x, rtol=1e-6)


@tv.kernel
def _times_huge(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32]):
    tv.store(out, tv.load(x, [0], [32]) * 1e300, [0])


def test_the_interpreter_overflows_to_inf_without_warnings(rng) -> None:
    import warnings

    x = rng.random(32).astype(np.float32) + 0.5
    out = np.full(32, np.nan, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "overflow encountered in cast" reached users
        _times_huge[1,](x, out, device="interp")
    np.testing.assert_array_equal(out, np.full(32, np.inf, np.float32))
