"""Kernels with one mistake each; the line with the mistake is marked ``# <- error``."""

from __future__ import annotations

import tilevm as tv


@tv.kernel
def uses_lambda(x: tv.Tensor[tv.f32]):
    f = lambda v: v  # <- error  # noqa: E731, F841


@tv.kernel
def shape_mismatch(x: tv.Tensor[tv.f32]):
    a = tv.load(x, [0], [64])
    b = tv.load(x, [0], [32])
    tv.store(x, a + b, [0])  # <- error


@tv.kernel
def dtype_mismatch(x: tv.Tensor[tv.f32], y: tv.Tensor[tv.f16]):
    a = tv.load(x, [0], [64])
    b = tv.load(y, [0], [64])
    tv.store(x, a * b, [0])  # <- error


@tv.kernel
def int_true_division(x: tv.Tensor[tv.i32]):
    a = tv.load(x, [0], [64])
    tv.store(x, a / 2, [0])  # <- error


@tv.kernel
def undefined_name(x: tv.Tensor[tv.f32]):
    tv.store(x, missing_tile, [0])  # <- error  # noqa: F821


@tv.kernel
def tile_condition(x: tv.Tensor[tv.f32]):
    a = tv.load(x, [0], [64])
    if a > 0:  # <- error
        tv.store(x, a, [0])


@tv.kernel
def type_changes_in_loop(x: tv.Tensor[tv.f32], n: tv.i32):
    acc = tv.zeros([64], tv.f32)
    for _i in range(n):
        acc = acc.to(tv.f16)  # <- error
    tv.store(x, acc, [0])


@tv.kernel
def bad_view(x: tv.Tensor[tv.u8]):
    a = tv.load(x, [0], [128], layout=tv.layouts.spatial(128))
    v = tv.view(a, dtype=tv.i3, layout=tv.layouts.spatial(128))  # <- error
    tv.store(x, v.to(tv.u8), [0])


@tv.kernel
def store_wrong_dtype(x: tv.Tensor[tv.f16]):
    a = tv.zeros([64], tv.f32)
    tv.store(x, a, [0])  # <- error


@tv.kernel
def runtime_arange(x: tv.Tensor[tv.i32], n: tv.i32):
    r = tv.arange(0, n)  # <- error
    tv.store(x, r, [0])


@tv.kernel
def bad_block(x: tv.Tensor[tv.f32], BLOCK: tv.constexpr):
    tv.store(x, tv.zeros([BLOCK], tv.f32), [0])  # <- error


@tv.kernel
def returns_value(x: tv.Tensor[tv.f32]):
    return x  # <- error


@tv.kernel
def static_assert(x: tv.Tensor[tv.f32], BLOCK: tv.constexpr):
    assert BLOCK % 32 == 0, "BLOCK must be a multiple of 32"  # <- error
    tv.store(x, tv.zeros([BLOCK], tv.f32), [0])


@tv.kernel
def wrong_builtin_args(x: tv.Tensor[tv.f32]):
    a = tv.load(x, [0])  # <- error
    tv.store(x, a, [0])


@tv.kernel
def false_assumption(x: tv.Tensor[tv.f32], n: tv.i32):
    tv.assume(n % 16 == 0)  # <- error
    tv.store(x, tv.zeros([16], tv.f32), [0])


@tv.kernel
def shared_out_of_bounds(x: tv.Tensor[tv.f32]):
    s = tv.shared([16], tv.f32)
    tv.store_shared(s, tv.zeros([16], tv.f32))
    v = tv.load_shared(s, [8], [16])  # <- error
    tv.store(x, v, [0])


@tv.kernel
def slice_subscript(x: tv.Tensor[tv.f32]):
    a = tv.load(x, [0], [64])
    tv.store(x, a[0:4], [0])  # <- error


@tv.kernel
def runtime_python_call(x: tv.Tensor[tv.f32]):
    a = tv.load(x, [0], [64])
    tv.store(x, sorted(a), [0])  # <- error


@tv.kernel
def pipelined_range(x: tv.Tensor[tv.f32]):
    for i in tv.range(0, 4, 1, stages=3):  # <- error
        tv.store(x, tv.zeros([64], tv.f32), [i * 64])


@tv.kernel
def copy_wrong_dtype(x: tv.Tensor[tv.f32]):
    s = tv.shared([2, 64], tv.f16)
    tv.copy_async(s, x, [0], [0, 0])  # <- error


@tv.kernel
def copy_too_large(x: tv.Tensor[tv.f32]):
    s = tv.shared([2, 64], tv.f32)
    tv.copy_async(s, x, [0], [0, 0], [128])  # <- error


@tv.kernel
def wait_runtime_count(x: tv.Tensor[tv.f32], n: tv.i32):
    tv.wait_async(n)  # <- error


@tv.kernel
def layout_rebound_in_loop(x: tv.Tensor[tv.f32], n: tv.i32):
    dt = tv.f32
    for _i in range(n):
        dt = tv.f16  # <- error
    tv.store(x, tv.zeros([64], dt), [0])


@tv.kernel
def view_with_a_tuple_layout(x: tv.Tensor[tv.u8], out: tv.Tensor[tv.u8]):
    b = tv.load(x, [0], [128])
    tv.view(b, dtype=tv.i4, layout=(1, 2))
    tv.store(out, b, [0])


@tv.kernel
def print_a_tensor_argument(x: tv.Tensor[tv.f32]):
    tv.print(x)


@tv.func
def _forever(a):
    return _forever(a)


@tv.kernel
def endless_recursion(x: tv.Tensor[tv.f32]):
    tv.store(x, _forever(tv.load(x, [0], [32])), [0])


@tv.kernel
def range_step_zero(x: tv.Tensor[tv.f32]):
    total = 0.0
    for _i in range(0, 8, 0):
        total += 1.0
    tv.store(x, tv.full([32], total, tv.f32), [0])


@tv.kernel
def static_range_step_zero(x: tv.Tensor[tv.f32]):
    total = 0.0
    for _i in tv.static_range(0, 8, 0):
        total += 1.0
    tv.store(x, tv.full([32], total, tv.f32), [0])


@tv.kernel
def compile_time_float_division_by_zero(x: tv.Tensor[tv.f32]):
    scale = 1.0 / 0  # <- error
    tv.store(x, tv.full([32], scale, tv.f32), [0])


@tv.kernel
def compile_time_string_arithmetic(x: tv.Tensor[tv.f32], N: tv.constexpr = 32):
    size = N + "2"  # <- error
    tv.store(x, tv.full([size], 1.0, tv.f32), [0])


@tv.kernel
def where_of_a_tensor_argument(x: tv.Tensor[tv.f32]):
    v = tv.load(x, [0], [32])
    tv.store(x, tv.where(v > 0, x, 0.0), [0])  # <- error


@tv.kernel
def math_of_none(x: tv.Tensor[tv.f32]):
    tv.store(x, tv.load(x, [0], [32]) + tv.exp(None), [0])  # <- error


@tv.kernel
def where_with_a_string(x: tv.Tensor[tv.f32]):
    v = tv.load(x, [0], [32])
    tv.store(x, tv.where(v > 0, v, "s"), [0])  # <- error


@tv.kernel
def compare_with_a_list(x: tv.Tensor[tv.f32]):
    v = tv.load(x, [0], [32])
    tv.store(x, tv.where(v < [], v, 0.0), [0])  # <- error


@tv.kernel
def static_range_of_a_float(x: tv.Tensor[tv.f32]):
    total = 0.0
    for _i in tv.static_range(1e3):  # <- error
        total += 1.0
    tv.store(x, tv.full([32], total, tv.f32), [0])


@tv.kernel
def shared_tile_too_large(x: tv.Tensor[tv.f32]):
    s = tv.shared([2**40, 16], tv.f16)  # <- error
    tv.store_shared(s, tv.zeros([2**40, 16], tv.f16))
