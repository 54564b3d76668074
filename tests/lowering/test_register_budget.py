"""The register budget: a tile far beyond what a thread's registers hold (more than 4x the
target's register file per thread) is refused before any vendor compiler sees it, by every
executor, at the line that makes the tile; tiles up to the budget compile and run."""

from __future__ import annotations

import inspect
import time

import numpy as np
import pytest

import tilevm as tv
from tests.devices import DEVICES, run

# (compile target or device, warp size, registers per thread in bits) as docs/lowering.md
# states them; every CPU device and the interpreter take a CUDA GPU's budget unless they
# emulate another target.
BUDGETS = [
    ("interp", 32, 255 * 32),
    ("cpu", 32, 255 * 32),
    ("cpu:cuda", 32, 255 * 32),
    ("cpu:amd", 64, 512 * 32),
    ("cpu:intel", 16, 256 * 64 * 8 // 16),
    ("cuda:sm_80", 32, 255 * 32),
    ("cuda:sm_90a", 32, 255 * 32),
    ("hip:gfx942", 64, 512 * 32),
    ("hip:gfx90a", 64, 512 * 32),
    ("hip:gfx1100", 32, 256 * 32),
    ("sycl:xe", 16, 256 * 64 * 8 // 16),
    ("sycl:pvc", 16, 256 * 64 * 8 // 16),
]
FACTOR = 4
# the same for every device tests run on (warp size, register bits)
ON_DEVICE = {"interp": (32, 255 * 32), "cpu": (32, 255 * 32), "cpu:cuda": (32, 255 * 32),
             "cpu:amd": (64, 512 * 32), "sycl:opencl:cpu": (16, 255 * 32),
             "cuda": (32, 255 * 32)}  # fmt: skip


@tv.kernel(warps=1)
def copy(x: tv.Tensor, out: tv.Tensor, BLOCK: tv.constexpr):
    tile = tv.load(x, [0], [BLOCK])  # <- tile
    tv.store(out, tile, [0])


@tv.kernel(warps=1)
def two_tiles(x: tv.Tensor, out: tv.Tensor, A: tv.constexpr, B: tv.constexpr):
    a = tv.load(x, [0], [A])
    b = tv.load(x, [A], [B])  # <- b
    tv.store(out, a * 2.0 + tv.sum(b, 0), [0])


def marked_line(kernel: tv.Kernel, mark: str) -> int:
    lines, first = inspect.getsourcelines(kernel.fn)
    return next(first + i for i, text in enumerate(lines) if f"# <- {mark}" in text)


def _elements_at_budget(warp: int, bits: int, itemsize: int) -> int:
    """A 1-D tile of one warp holding exactly the budget in every thread."""
    return FACTOR * bits // (8 * itemsize) * warp


def _lower_or_launch(target: str, x: np.ndarray, out: np.ndarray, n: int) -> None:
    if target == "interp":
        copy[1,](x, out, BLOCK=n, device="interp")
    else:
        copy.lower(target, x, out, BLOCK=n)


@pytest.mark.parametrize(("target", "warp", "bits"), BUDGETS, ids=[b[0] for b in BUDGETS])
def test_a_tile_over_the_budget_is_refused_at_its_line(target: str, warp: int, bits: int):
    n = _elements_at_budget(warp, bits, 4) + 4 * warp  # four more f32 in every thread
    x, out = np.zeros(n, np.float32), np.zeros(n, np.float32)
    with pytest.raises(tv.ShapeError) as info:
        _lower_or_launch(target, x, out, n)
    err = info.value
    assert err.code == "register-budget" and isinstance(err, ValueError)
    assert err.location is not None and err.location.line == marked_line(copy, "tile")
    assert str(FACTOR * bits) in err.expected and str(bits) in err.message
    assert "warps" in err.hint and "tv.range" in err.hint
    assert err.to_dict()["code"] == "register-budget"


@pytest.mark.parametrize(("target", "warp", "bits"), BUDGETS, ids=[b[0] for b in BUDGETS])
def test_a_tile_at_the_budget_is_accepted(target: str, warp: int, bits: int):
    n = _elements_at_budget(warp, bits, 4)
    x, out = np.zeros(n, np.float32), np.zeros(n, np.float32)
    _lower_or_launch(target, x, out, n)


def test_tiles_live_at_once_are_not_added_up(rng):
    """Two tiles at the budget live at once (a is read after b is loaded): accepted, with the
    right values (a compiler may stream one into the next); a tile over it is refused at the
    line that makes it."""
    n = _elements_at_budget(32, 255 * 32, 4)
    x = rng.random(3 * n, dtype=np.float32)
    out = np.full(n, np.nan, np.float32)
    two_tiles[1,](x, out, A=n, B=n, device="cpu")
    expected = x[:n].astype(np.float64) * 2 + x[n : 2 * n].astype(np.float64).sum()
    np.testing.assert_allclose(out, expected, rtol=1e-5)
    with pytest.raises(tv.ShapeError) as info:
        two_tiles.lower("cpu", x, out, A=n, B=n + 4 * 32)
    assert info.value.code == "register-budget"
    assert info.value.location.line == marked_line(two_tiles, "b")
    assert "b: f32" in info.value.message


@pytest.mark.parametrize("device", DEVICES)
def test_every_executor_refuses_an_oversized_tile_quickly(device: str):
    """4M f32 in four warps (32768 a thread): refused in well under a second instead of a
    compile that took minutes."""
    n = 1 << 22
    x, out = np.zeros(n, np.float32), np.zeros(n, np.float32)
    start = time.perf_counter()
    with pytest.raises(tv.ShapeError) as info:
        run(copy[1,], x, out, BLOCK=n, device=device, warps=4)
    assert time.perf_counter() - start < 5
    assert info.value.code == "register-budget"
    assert info.value.location.line == marked_line(copy, "tile")


@pytest.mark.parametrize("device", DEVICES)
def test_a_tile_at_the_budget_runs(device: str, rng):
    """The largest f32 tile of one warp each executor allows: the right values."""
    n = _elements_at_budget(*ON_DEVICE[device], 4)
    x = rng.standard_normal(n).astype(np.float32)
    out = np.full(n, np.nan, np.float32)
    run(copy[1,], x, out, BLOCK=n, device=device)
    np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize(
    ("dtype", "bits"), [(np.float16, 16), (np.float64, 64), (np.int8, 8), (np.uint32, 32)]
)
def test_the_budget_counts_element_bits(dtype, bits: int):
    """The same bits per thread whatever the element width."""
    n = FACTOR * 255 * 32 // bits * 32
    x, out = np.zeros(n + 32 * 32 // bits, dtype), np.zeros(n + 32 * 32 // bits, dtype)
    copy.lower("cpu", x, out, BLOCK=n)
    with pytest.raises(tv.ShapeError):
        copy.lower("cpu", x, out, BLOCK=n + 32 * 32 // bits)
