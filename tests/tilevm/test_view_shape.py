"""``tv.view(x, dtype=..., shape=...)``: the layout derived from the dtype and shape whenever each
thread's bits divide into whole elements (docs/language.md, Layouts and view), on every
executor, against numpy bit-level references (bits read little-endian, element ``j`` of a run
at bits ``[j*b, (j+1)*b)``); and an error with a hint where the layout cannot be derived."""

from __future__ import annotations

import numpy as np
import pytest

import tilevm as tv
from tests.devices import DEVICES, at, need_compiler
from tilevm.layouts import local, spatial
from tilevm.runtime import registry

EXECUTORS = [*DEVICES, "cpu:intel"]


@pytest.fixture(params=EXECUTORS)
def executor(request: pytest.FixtureRequest) -> str:
    return request.param


def _threads(device: str, warps: int) -> int:
    return warps * registry.backend_for(device).warp_size(device)


def _fields(data: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    """Each row of ``data`` (any integer dtype, little-endian) cut into ``bits``-bit fields, low
    bits first, as integers (two's complement where ``signed``)."""
    raw = np.ascontiguousarray(data).view(np.uint8).reshape(data.shape[0], -1)
    stream = np.unpackbits(raw, axis=1, bitorder="little")
    fields = stream.reshape(data.shape[0], -1, bits).astype(np.int64)
    values = (fields << np.arange(bits)).sum(axis=2)
    if signed:
        values = np.where(values >= 1 << (bits - 1), values - (1 << bits), values)
    return values


@tv.kernel
def view_runs(x: tv.Tensor, out: tv.Tensor[tv.i32], R: tv.constexpr, RUN: tv.constexpr,
              DT: tv.constexpr, VIA: tv.constexpr):  # fmt: skip
    """Each thread holds a run of RUN elements of a row; viewed as DT (through VIA first, if
    given) with shape=, the layout derived."""
    per_row = tv.num_threads() // R
    cols = per_row * RUN
    t = tv.load(x, [0, 0], [R, cols], layout=spatial(R, per_row) * local(1, RUN))
    if VIA is not None:
        t = tv.view(t, dtype=VIA, shape=[R, cols * x.dtype.bits // VIA.bits])
    v = tv.view(t, dtype=DT, shape=[R, cols * x.dtype.bits // DT.bits])
    tv.store(out, v.to(tv.i32), [0, 0])


CASES = [  # source dtype, run per thread, target dtype, through
    (np.uint8, 4, tv.i32, None),  # four bytes -> one i32
    (np.uint8, 2, tv.u4, None),  # each byte -> two nibbles
    (np.uint8, 6, tv.i3, None),  # 48 bits -> 16 i3
    (np.uint8, 3, tv.u6, None),  # 24 bits -> 4 u6
    (np.int32, 1, tv.u8, None),  # one i32 -> four bytes
    (np.int32, 3, tv.i12, None),  # 96 bits -> 8 i12
    (np.uint8, 6, tv.i3, tv.u4),  # bytes -> 12 nibbles -> 16 i3 (runs of 3 nibbles)
    (np.int16, 2, tv.u32, None),  # two i16 -> one u32 (read back as i32: wraps)
]


@pytest.mark.parametrize(("src", "run", "dt", "via"), CASES, ids=lambda v: str(v))
def test_views_with_a_shape_derive_the_layout(executor: str, src, run: int, dt, via, rng):
    r = 2 if executor == "cpu:intel" or executor.startswith("sycl") else 4
    cols = _threads(executor, 1) // r * run
    info = np.iinfo(src)
    x = rng.integers(info.min, info.max, (r, cols), endpoint=True).astype(src)
    out_cols = cols * x.dtype.itemsize * 8 // dt.bits
    out = np.full((r, out_cols), -(2**31), np.int32)
    at(executor, view_runs[1,])(x, out, R=r, RUN=run, DT=dt, VIA=via, warps=1)
    expected = _fields(x, dt.bits, dt.kind == "int")
    np.testing.assert_array_equal(out, expected.astype(np.int64).astype(np.int32))


@tv.kernel
def view_rows_apart(x: tv.Tensor[tv.u8], out: tv.Tensor[tv.i32], R: tv.constexpr,
                    C: tv.constexpr):  # fmt: skip
    """Each byte's two nibbles go to rows 2r and 2r + 1 (the view grows dimension 0)."""
    v = tv.view(tv.load(x, [0, 0], [R, C]), dtype=tv.u4, shape=[2 * R, C])
    tv.store(out, v.to(tv.i32), [0, 0])


@pytest.mark.parametrize(("r", "c"), [(5, 12), (16, 32), (3, 1)])
def test_a_view_may_grow_another_dimension(executor: str, r: int, c: int, rng) -> None:
    x = rng.integers(0, 256, (r, c)).astype(np.uint8)
    out = np.full((2 * r, c), -1, np.int32)
    at(executor, view_rows_apart[1,])(x, out, R=r, C=c, warps=1)
    expected = np.empty((2 * r, c), np.int64)
    expected[0::2], expected[1::2] = x & 0xF, x >> 4  # the low nibble first
    np.testing.assert_array_equal(out, expected)


@tv.kernel
def view_default(x: tv.Tensor[tv.u8], out: tv.Tensor[tv.i32], R: tv.constexpr, C: tv.constexpr):
    """No layout anywhere: the default layout's runs, narrowed along the last dimension."""
    v = tv.view(tv.load(x, [0, 0], [R, C]), dtype=tv.i2, shape=[R, 4 * C])
    tv.store(out, v.to(tv.i32), [0, 0])


@pytest.mark.parametrize(("r", "c"), [(7, 20), (32, 64)])
def test_a_view_of_the_default_layout(executor: str, r: int, c: int, rng) -> None:
    x = rng.integers(0, 256, (r, c)).astype(np.uint8)
    out = np.full((r, 4 * c), 99, np.int32)
    at(executor, view_default[1,])(x, out, R=r, C=c, warps=2)
    np.testing.assert_array_equal(out, _fields(x, 2, signed=True))


# ----- errors ----------------------------------------------------------------------------------


@tv.kernel
def bad_view(x: tv.Tensor[tv.u8], out: tv.Tensor[tv.i32], CASE: tv.constexpr):
    t = tv.load(x, [0, 0], [4, 32], layout=spatial(4, 32) * local(1, 1))  # one byte a thread
    if CASE == "widen-single-bytes":
        v = tv.view(t, dtype=tv.i32, shape=[4, 8])
    elif CASE == "bits-do-not-divide":
        v = tv.view(t, dtype=tv.i3)
    elif CASE == "two-dims-change":
        v = tv.view(t, dtype=tv.u4, shape=[8, 64])
    elif CASE == "wrong-ratio":
        v = tv.view(t, dtype=tv.u4, shape=[4, 96])
    elif CASE == "rank-changes":
        v = tv.view(t, dtype=tv.u4, shape=[4, 32, 2])
    elif CASE == "layout-and-shape-disagree":
        v = tv.view(t, dtype=tv.u4, layout=spatial(4, 32) * local(1, 2), shape=[8, 32])
    else:
        v = tv.view(t, dtype=tv.u4, shape=[4, 64.0])
    tv.store(out, v.to(tv.i32), [0, 0])


@pytest.mark.parametrize(
    ("case", "error", "needles"),
    [
        ("widen-single-bytes", ValueError, ("cannot derive the layout of a u8 -> i32 view",
                                            "runs of 4", "local(1, 4)")),
        ("bits-do-not-divide", ValueError, ("not a whole number of 3-bit elements",)),
        ("two-dims-change", ValueError, ("changes one dimension", "tv.reshape")),
        ("wrong-ratio", ValueError, ("cannot give shape [4, 96]", "shape [4, 64]")),
        ("rank-changes", ValueError, ("changes one dimension",)),
        ("layout-and-shape-disagree", ValueError, ("layout and shape disagree",)),
        ("shape-not-ints", TypeError, ("tv.view shape must be compile-time positive ints",)),
    ],
)  # fmt: skip
def test_views_that_cannot_be_derived_are_errors_with_a_hint(case, error, needles) -> None:
    x = np.zeros((4, 32), np.uint8)
    out = np.zeros((4, 64), np.int32)
    with pytest.raises(error) as info:
        bad_view[1,](x, out, CASE=case, warps=4, device="interp")
    err = info.value
    assert isinstance(err, tv.TilevmError) and err.hint
    assert err.location is not None and err.location.file.endswith("test_view_shape.py")
    for needle in needles:
        assert needle in str(err), str(err)


@pytest.mark.parametrize("target", ["cuda:sm_90a", "hip:gfx942", "sycl:xe"])
@pytest.mark.parametrize(("src", "run", "dt", "via"), CASES[2:4] + CASES[6:7], ids=str)
def test_derived_views_render_and_compile_for_gpus(target: str, src, run: int, dt, via) -> None:
    if not target.startswith("sycl"):
        need_compiler(target)
    r, warp = 4, 16 if target.startswith("sycl") else 64 if target.startswith("hip") else 32
    cols = warp // r * run
    x, out = np.zeros((r, cols), src), np.zeros((r, cols * np.dtype(src).itemsize * 8 // dt.bits))
    kw = {"R": r, "RUN": run, "DT": dt, "VIA": via, "warps": 1}
    assert "view" in view_runs.ir(x, out.astype(np.int32), **kw)
    view_runs.emit(target, x, out.astype(np.int32), **kw)
    if not target.startswith("sycl"):
        assert view_runs.compile(target, x, out.astype(np.int32), **kw).binary
