"""Every error of the math functions and of names that do not exist: the class (also the
builtin), the code, the line and the column of the mistake, and a hint that says what to write."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

import tilevm as tv

F32 = np.zeros(64, np.float32)
I32 = np.zeros(64, np.int32)


def marked(kernel: tv.Kernel) -> tuple[int, str]:
    lines, first = inspect.getsourcelines(kernel.fn)
    index = next(i for i, text in enumerate(lines) if "# <- error" in text)
    return first + index, lines[index]


@tv.kernel
def erf_of_ints(x: tv.Tensor):
    tv.store(x, tv.erf(tv.load(x, [0], [64])), [0])  # <- error


@tv.kernel
def pow_of_ints(x: tv.Tensor):
    tv.store(x, tv.pow(tv.load(x, [0], [64]), 2), [0])  # <- error


@tv.kernel
def fdiv_of_ints(x: tv.Tensor):
    a = tv.load(x, [0], [64])
    tv.store(x, tv.fdiv(a, a), [0])  # <- error


@tv.kernel
def approx_at_run_time(x: tv.Tensor[tv.f32], flag: tv.i32):
    tv.store(x, tv.exp(tv.load(x, [0], [64]), approx=flag), [0])  # <- error


@tv.kernel
def approx_not_a_bool(x: tv.Tensor[tv.f32]):
    tv.store(x, tv.rsqrt(tv.load(x, [0], [64]), approx="fast"), [0])  # <- error


@tv.kernel
def approx_where_there_is_none(x: tv.Tensor[tv.f32]):
    tv.store(x, tv.log(tv.load(x, [0], [64]), approx=True), [0])  # <- error


@tv.kernel
def pow_of_a_string(x: tv.Tensor[tv.f32]):
    tv.store(x, tv.full([64], tv.pow("2", 3.0), tv.f32), [0])  # <- error


@pytest.mark.parametrize(
    ("kernel", "args", "words"),
    [
        (erf_of_ints, (I32,), ["erf needs a float operand", ".to(tv.f32)"]),
        (pow_of_ints, (I32,), ["tv.pow needs float operands", "x ** n"]),
        (fdiv_of_ints, (I32,), ["tv.fdiv needs float operands", "//"]),
        (approx_at_run_time, (F32, 1), ["compile-time bool", "approx=True"]),
        (approx_not_a_bool, (F32,), ["compile-time bool", "'fast'"]),
        (approx_where_there_is_none, (F32,), ["bad arguments to tv.log", "approx"]),
        (pow_of_a_string, (F32,), ["tv.pow of '2'", "numbers"]),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_math_errors_point_at_the_call(kernel, args, words) -> None:
    with pytest.raises(tv.KernelTypeError) as info:
        kernel[1,](*args, device="interp")
    err = info.value
    assert isinstance(err, TypeError) and err.code == "type"
    line, _ = marked(kernel)
    assert err.location is not None and err.location.line == line
    text = str(err)
    for word in words:
        assert word in text, f"{word!r} not in {text}"


@tv.kernel
def misspelled(x: tv.Tensor[tv.f32]):
    tv.store(x, tv.sigmod(tv.load(x, [0], [64])), [0])  # <- error


@tv.kernel
def relu(x: tv.Tensor[tv.f32]):
    tv.store(x, tv.relu(tv.load(x, [0], [64])), [0])  # <- error


@tv.kernel
def softmax(x: tv.Tensor[tv.f32]):
    tv.store(x, tv.softmax(tv.load(x, [0], [64])), [0])  # <- error


@tv.kernel
def triton_spelling(x: tv.Tensor[tv.f32]):
    tv.store(x, tv.load(x, [tv.program_id(0) * 64], [64]), [0])  # <- error


@tv.kernel
def module_attribute(x: tv.Tensor[tv.f32]):
    v = tv.load(x, [0], [64], layout=tv.layouts.spatail(32) * tv.layouts.local(2))  # <- error
    tv.store(x, v, [0])


@tv.kernel
def tile_attribute(x: tv.Tensor[tv.f32]):
    v = tv.load(x, [0], [64])
    tv.store(x, tv.full(v.shap, 1.0, tv.f32), [0])  # <- error


@tv.kernel
def nothing_close(x: tv.Tensor[tv.f32]):
    tv.store(x, tv.qqqzzzxx(tv.load(x, [0], [64])), [0])  # <- error


@pytest.mark.parametrize(
    ("kernel", "name", "hint"),
    [
        (misspelled, "sigmod", "did you mean tv.sigmoid?"),
        (relu, "relu", "tilevm has no relu: write tv.maximum(x, 0.0)"),
        (softmax, "softmax", "tv.exp(x - tv.max(x, axis=1, keepdims=True))"),
        (triton_spelling, "program_id", "write tv.block_id(axis)"),
        (module_attribute, "spatail", "did you mean tv.layouts.spatial?"),
        (tile_attribute, "shap", "did you mean v.shape?"),
        (nothing_close, "qqqzzzxx", "docs/language.md"),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_a_name_that_does_not_exist_is_an_error_at_the_name(kernel, name, hint) -> None:
    with pytest.raises(tv.KernelAttributeError) as info:
        kernel[1,](F32, device="interp")
    err = info.value
    assert isinstance(err, AttributeError) and isinstance(err, tv.CompileError)
    assert err.code == "attribute" and name in err.message and hint in err.hint
    line, text = marked(kernel)
    assert err.location.line == line
    assert text[err.location.col :].startswith(name)  # the caret under the name
    rendered = str(err).splitlines()
    assert rendered[2].index("^") == 4 + err.location.col
    data = json.loads(json.dumps(err.to_dict()))
    assert data["code"] == "attribute" and data["hint"] == err.hint


def test_every_public_math_name_is_a_kernel_language_name() -> None:
    for name in ("erf", "sigmoid", "log1p", "expm1", "tan", "atan", "pow", "fdiv"):
        assert name in tv.__all__ and repr(getattr(tv, name)) == f"tv.{name}"
    with pytest.raises(tv.CompileError, match="part of the kernel language"):
        tv.erf(1.0)
