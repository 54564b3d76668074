"""tv.static_range: long unrolled loops compile in linear time, and an unroll past the budget
(100 000 VM instructions) is an error at the static_range line."""

from __future__ import annotations

import inspect
import time

import numpy as np
import pytest

import tilevm as tv
from tests.devices import DEVICES, run
from tilevm.frontend import translate

N = 128


@tv.kernel
def decay(x: tv.Tensor, out: tv.Tensor, STEPS: tv.constexpr):
    acc = tv.load(x, [0], [N])
    for i in tv.static_range(STEPS):
        acc = acc * (1 - 2**-10) + (i % 3) * 2**-10
    tv.store(out, acc, [0])


def decay_reference(x: np.ndarray, steps: int) -> np.ndarray:
    acc = x.astype(np.float64)
    for i in range(steps):
        acc = acc * (1 - 2**-10) + (i % 3) * 2**-10
    return acc


@tv.kernel
def row_sums(x: tv.Tensor, out: tv.Tensor, STEPS: tv.constexpr):
    acc = tv.zeros([N], tv.f32)
    for i in tv.static_range(STEPS):
        acc = acc * 0.75 + tv.load(x, [i * N], [N])
    tv.store(out, acc, [0])


@tv.kernel
def scaled(x: tv.Tensor, out: tv.Tensor, STEPS: tv.constexpr):
    acc = tv.load(x, [0], [N])
    for _ in tv.static_range(STEPS):  # <- loop
        acc = acc * 0.5 + 1.0
    tv.store(out, acc, [0])


@tv.kernel
def nested(x: tv.Tensor, out: tv.Tensor, OUTER: tv.constexpr, INNER: tv.constexpr):
    acc = tv.load(x, [0], [N])
    for _ in tv.static_range(OUTER):  # <- outer
        for _ in tv.static_range(INNER):  # <- inner
            acc = acc + 1.0
    tv.store(out, acc, [0])


@tv.kernel
def compile_time_only(out: tv.Tensor, STEPS: tv.constexpr):
    total = 0
    for i in tv.static_range(STEPS):  # <- python
        total = total + i
    tv.store(out, tv.full([N], total % 7, tv.f32), [0])


def marked_line(kernel: tv.Kernel, mark: str) -> int:
    lines, first = inspect.getsourcelines(kernel.fn)
    return next(first + i for i, text in enumerate(lines) if f"# <- {mark}" in text)


def test_a_1024_step_static_range_compiles_in_seconds_on_the_cpu(rng, tmp_path, monkeypatch):
    """1024 steps of a short body took 24 s, most of it LLVM's loop passes over thousands of
    small loops, each over a tile's slots; the slot loops are straight-line code now."""
    monkeypatch.setenv("TILEVM_CACHE_DIR", str(tmp_path))  # compile for real
    steps = 1024
    x = rng.random(N, dtype=np.float32) * 8 - 4
    out = np.full(N, np.nan, np.float32)
    start = time.process_time()  # this process's CPU time: other tests running beside it
    decay[1,](x, out, STEPS=steps, device="cpu")  # (a loaded CI machine) do not count
    assert time.process_time() - start < 10
    np.testing.assert_allclose(out, decay_reference(x, steps), rtol=1e-4, atol=1e-5)
    on_interp = np.full(N, np.nan, np.float32)
    decay[1,](x, on_interp, STEPS=steps, device="interp")
    np.testing.assert_array_equal(out, on_interp)


@pytest.mark.parametrize("target", ["cuda:sm_90a", "hip:gfx942"])
def test_a_1024_step_static_range_renders_in_seconds(target: str):
    x, out = np.zeros(N, np.float32), np.zeros(N, np.float32)
    start = time.process_time()
    decay.emit(target, x, out, STEPS=1024)
    assert time.process_time() - start < 8


def test_an_unroll_past_the_budget_is_an_error_at_the_static_range_line():
    x, out = np.zeros(N, np.float32), np.zeros(N, np.float32)
    start = time.perf_counter()
    with pytest.raises(tv.KernelValueError) as info:
        scaled.ir(x, out, STEPS=10**6)
    assert time.perf_counter() - start < 20  # stops at the budget, not after a million steps
    err = info.value
    assert err.code == "unroll-budget" and isinstance(err, ValueError)
    assert err.location is not None and err.location.line == marked_line(scaled, "loop")
    assert "100000" in err.expected and "tv.range" in err.hint
    assert "static_range(0, 1000000, 1)" in err.message


def test_the_budget_counts_every_instruction_of_the_unrolled_loop(monkeypatch):
    """Two instructions a step: 50 steps fit a budget of 100, 51 do not."""
    monkeypatch.setattr(translate, "UNROLL_LIMIT", 100)
    x, out = np.zeros(N, np.float32), np.zeros(N, np.float32)
    scaled.ir(x, out, STEPS=50)
    with pytest.raises(tv.KernelValueError) as info:
        scaled.ir(x, out, STEPS=51)
    assert info.value.code == "unroll-budget"
    assert "102 instructions after 51 of 51 iterations" in info.value.found


def test_nested_unrolls_count_towards_the_outer_loop(monkeypatch):
    """Each inner loop fits; together they do not: the outer loop's line is named. An inner
    loop past the budget on its own is named itself."""
    monkeypatch.setattr(translate, "UNROLL_LIMIT", 100)
    x, out = np.zeros(N, np.float32), np.zeros(N, np.float32)
    nested.ir(x, out, OUTER=10, INNER=10)
    with pytest.raises(tv.KernelValueError) as info:
        nested.ir(x, out, OUTER=11, INNER=10)
    assert info.value.location.line == marked_line(nested, "outer")
    with pytest.raises(tv.KernelValueError) as info:
        nested.ir(x, out, OUTER=1, INNER=101)
    assert info.value.location.line == marked_line(nested, "inner")


def test_compile_time_iterations_count_too(monkeypatch):
    """A loop of Python arithmetic only still costs time per step: at least one unit each."""
    monkeypatch.setattr(translate, "UNROLL_LIMIT", 100)
    out = np.zeros(N, np.float32)
    compile_time_only.ir(out, STEPS=99)
    with pytest.raises(tv.KernelValueError) as info:
        compile_time_only.ir(out, STEPS=101)
    assert info.value.location.line == marked_line(compile_time_only, "python")


@pytest.mark.parametrize("device", DEVICES)
def test_unrolled_values_are_right(device: str, rng):
    """A load in every step (a bounds-checked vector load each)."""
    steps = 37
    x = rng.random(steps * N, dtype=np.float32)
    out = np.full(N, np.nan, np.float32)
    run(row_sums[1,], x, out, STEPS=steps, device=device)
    expected = np.zeros(N)
    for row in x.reshape(steps, N).astype(np.float64):
        expected = expected * 0.75 + row
    np.testing.assert_allclose(out, expected, rtol=1e-5)
