"""``is`` / ``is not`` between compile-time values (``if LAYOUT is None:``), and a clear error
on run-time values."""

from __future__ import annotations

import numpy as np
import pytest

import tilevm as tv


@tv.kernel
def pick(x: tv.Tensor[tv.f32], y: tv.Tensor[tv.f32], SCALE: tv.constexpr = None):
    a = tv.load(x, [0], [64])
    if SCALE is not None:
        a = a * SCALE
    tv.store(y, a, [0])


@tv.kernel
def runtime_is(x: tv.Tensor[tv.f32], y: tv.Tensor[tv.f32]):
    a = tv.load(x, [0], [64])
    if x.shape[0] is None:
        a = a * 2.0
    tv.store(y, a, [0])


def test_is_none_folds_at_compile_time(rng) -> None:
    x = rng.standard_normal(64).astype(np.float32)
    y = np.full_like(x, np.nan)
    pick[1,](x, y, device="interp")
    np.testing.assert_array_equal(y, x)
    pick[1,](x, y, SCALE=3.0, device="interp")
    np.testing.assert_array_equal(y, x * np.float32(3.0))


def test_is_on_a_runtime_value_is_rejected(rng) -> None:
    x = rng.standard_normal(64).astype(np.float32)
    with pytest.raises(tv.UnsupportedSyntaxError, match="'is' on a run-time value"):
        runtime_is[1,](x, np.empty_like(x), device="interp")
