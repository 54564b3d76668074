"""Module globals, closure cells and module attributes a kernel reads are part of its
specialization: changing one between launches takes effect at the next launch (on the repeat
path too), and a value that cannot be compared is refused where the kernel reads it."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

import tilevm as tv
from tests.devices import run
from tilevm.backends.cuda import driver

DEVICES = ["interp", "cpu"] + (["cuda"] if driver.available() else [])
SCALE = 2.0
OFFSETS = [1.0, 2.0]
WEIGHTS = np.arange(4, dtype=np.float32)
settings = types.ModuleType("settings")  # a module the kernels read an attribute of
settings.SHIFT = 5.0
THIS = sys.modules[__name__]


@tv.func
def _scaled(x):
    return x * SCALE


@tv.func
def _negated(x):
    return -x


HELPER = _scaled


@tv.kernel
def _global_scale(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32]):
    start = tv.block_id(0) * 128
    tv.store(out, tv.load(x, [start], [128]) * SCALE, [start])


@tv.kernel
def _through_helpers(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32]):
    start = tv.block_id(0) * 128
    tv.store(out, HELPER(tv.load(x, [start], [128])) + settings.SHIFT + OFFSETS[1], [start])


@tv.kernel
def _reads_an_array(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32]):
    start = tv.block_id(0) * 128
    tv.store(out, tv.load(x, [start], [128]) * WEIGHTS[1], [start])


def _closure_kernel():
    factor = 3.0

    @tv.kernel
    def closure_scale(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32]):
        start = tv.block_id(0) * 128
        tv.store(out, tv.load(x, [start], [128]) * factor, [start])

    def set_factor(value: float) -> None:
        nonlocal factor
        factor = value

    return closure_scale, set_factor


def _run(kernel, x: np.ndarray, device: str) -> np.ndarray:
    out = np.full_like(x, np.nan)
    run(kernel[x.size // 128,], x, out, device=device)
    return out


@pytest.mark.parametrize("device", DEVICES)
def test_a_changed_module_global_takes_effect(device, rng, monkeypatch) -> None:
    x = rng.standard_normal(256).astype(np.float32)
    for scale in (2.0, 2.0, -0.5, 2.0, 7.25):  # repeat launches, a change, and back again
        monkeypatch.setattr(THIS, "SCALE", scale)
        np.testing.assert_array_equal(_run(_global_scale, x, device), x * np.float32(scale))


@pytest.mark.parametrize("device", DEVICES)
def test_a_changed_closure_cell_takes_effect(device, rng) -> None:
    kernel, set_factor = _closure_kernel()
    x = rng.standard_normal(256).astype(np.float32)
    np.testing.assert_array_equal(_run(kernel, x, device), x * np.float32(3.0))
    set_factor(-1.5)
    np.testing.assert_array_equal(_run(kernel, x, device), x * np.float32(-1.5))


@pytest.mark.parametrize("device", DEVICES)
def test_helpers_module_attributes_and_lists_are_followed(device, rng, monkeypatch) -> None:
    x = rng.standard_normal(256).astype(np.float32)

    def expect(helper, scale: float, shift: float, offset: float) -> None:
        found = _run(_through_helpers, x, device)
        np.testing.assert_allclose(found, helper(x, scale) + np.float32(shift) + offset, rtol=1e-6)

    expect(lambda v, s: v * np.float32(s), 2.0, 5.0, 2.0)
    monkeypatch.setattr(THIS, "SCALE", 4.0)  # a global the @tv.func reads
    expect(lambda v, s: v * np.float32(s), 4.0, 5.0, 2.0)
    monkeypatch.setattr(settings, "SHIFT", -3.0)  # an attribute of a module
    expect(lambda v, s: v * np.float32(s), 4.0, -3.0, 2.0)
    monkeypatch.setattr(THIS, "HELPER", _negated)  # another helper under the same name
    expect(lambda v, s: -v, 4.0, -3.0, 2.0)
    OFFSETS[1] = 10.0  # a list changed in place
    try:
        expect(lambda v, s: -v, 4.0, -3.0, 10.0)
    finally:
        OFFSETS[1] = 2.0
    expect(lambda v, s: -v, 4.0, -3.0, 2.0)


@pytest.mark.parametrize("device", DEVICES)
def test_an_array_global_is_refused_where_it_is_read(device) -> None:
    x = np.ones(128, np.float32)
    with pytest.raises(tv.KernelValueError) as info:
        _run(_reads_an_array, x, device)
    err = info.value
    assert err.code == "global-value" and "WEIGHTS" in str(err) and "ndarray" in err.found
    assert err.location is not None and "WEIGHTS[1]" in err.location.source_line
    assert "constexpr" in err.hint
    with pytest.raises(tv.KernelValueError):  # on every launch, not only the first
        _run(_reads_an_array, x, device)
