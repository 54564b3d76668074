"""The launch API: grids, warps, devices, argument kinds, specialization, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tilevm as tv


@tv.kernel
def scale(x: tv.Tensor, out: tv.Tensor, factor: tv.f32, BLOCK: tv.constexpr = 64):
    start = tv.block_id(0) * BLOCK
    v = tv.load(x, [start], [BLOCK]).to(tv.f32) * factor
    tv.store(out, v.to(out.dtype), [start])


@tv.kernel
def fill_ids(out: tv.Tensor[tv.i32]):
    tv.store(
        out,
        tv.full([1, 1], tv.block_id(0) * 100 + tv.block_id(1), tv.i32),
        [tv.block_id(0), tv.block_id(1)],
    )


def test_grid_forms_and_edge_blocks(rng: np.random.Generator) -> None:
    x = rng.standard_normal(200).astype(np.float32)
    for grid in (4, (4,), [4]):
        out = np.full(200, np.nan, np.float32)
        scale[grid](x, out, 2.5)
        np.testing.assert_array_equal(out, x * np.float32(2.5))
    ids = np.full((3, 5), -1, np.int32)
    fill_ids[3, 5](ids)
    np.testing.assert_array_equal(ids, np.arange(3)[:, None] * 100 + np.arange(5))


def test_empty_grid_runs_nothing() -> None:
    out = np.full(4, 7.0, np.float32)
    scale[0,](np.zeros(4, np.float32), out, 1.0)
    assert (out == 7.0).all()


def test_torch_cpu_tensors_are_read_and_written_in_place(rng: np.random.Generator) -> None:
    x = torch.from_numpy(rng.standard_normal(100).astype(np.float32)).to(torch.bfloat16)
    out = torch.full((100,), float("nan"), dtype=torch.bfloat16)
    scale[2,](x, out, 3.0)
    expected = (x.float() * 3.0).to(torch.bfloat16)
    assert torch.equal(out, expected)


def test_packed_sub_byte_arrays(rng: np.random.Generator) -> None:
    values = rng.integers(-4, 4, 150)
    x = tv.PackedArray.from_values(values, tv.i3)
    out = tv.PackedArray.empty((150,), tv.u5)
    scale[3,](x, out, 1.0)
    # through f32: float-to-integer conversion saturates, so negative values become 0
    np.testing.assert_array_equal(out.values(), np.clip(values, 0, 31))


def test_specialization_cache_keys(rng: np.random.Generator, monkeypatch) -> None:
    x = rng.standard_normal(64).astype(np.float32)
    out = np.zeros(64, np.float32)
    monkeypatch.setenv("TILEVM_CACHE", "0")  # a kernel found on disk is not translated
    scale._cache.clear()
    scale._binaries.clear()  # nor is one built earlier in this process
    scale._fast.clear()  # repeat launches skip specialization altogether
    scale[1,](x, out, 1.0)
    scale[1,](x, out, 2.0)  # scalars are not part of the key
    assert len(scale._cache) == 1
    scale[1,](x, out, 1.0, BLOCK=32)  # constexprs are
    scale[1,](x.astype(np.float16), out, 1.0)  # dtypes are
    scale[1,](x[::2], out[:32], 1.0)  # contiguity is
    scale[1,](x, out, 1.0, warps=2)  # block size is
    assert len(scale._cache) == 5


def test_ir_text_reads_like_the_source() -> None:
    text = scale.ir(np.zeros(8, np.float32), np.zeros(8, np.float16), 1.0)
    assert text.splitlines()[0].startswith(
        "kernel scale(%x: global f32[?], %out: global f16[?], %factor: f32)"
    )
    assert "%start: i32 = binary(%bid0, 64:i32, op='mul')" in text
    assert "# line" in text


def test_devices_and_missing_devices() -> None:
    assert "interp" in tv.devices()
    assert "cpu" in tv.devices()
    with pytest.raises(tv.DeviceError) as info:  # a device no machine has
        scale[1,](np.zeros(4, np.float32), np.zeros(4, np.float32), 1.0, device="tpu:0")
    assert "'interp'" in info.value.expected and "tv.devices()" in info.value.hint


@pytest.mark.parametrize(
    ("call", "cls", "match"),
    [
        (lambda: scale[1,](np.zeros(4, np.float32)), tv.LaunchTypeError, "wrong arguments"),
        (
            lambda: scale[1,](np.zeros(4, np.float32), 1.0, 1.0),
            tv.LaunchTypeError,
            "must be a tensor",
        ),
        (
            lambda: scale[1,](np.zeros(4, np.float32), np.zeros(4, np.float32), np.zeros(2)),
            tv.LaunchTypeError,
            "must be a scalar",
        ),
        (lambda: fill_ids[1,](np.zeros((1, 1), np.float32)), tv.LaunchTypeError, "has dtype f32"),
        (lambda: scale(np.zeros(4), np.zeros(4), 1.0), tv.LaunchError, "needs a grid"),
        (lambda: scale[1, 2, 3, 4](np.zeros(4), np.zeros(4), 1.0), tv.LaunchError, "bad grid"),
        (lambda: scale[-1,](np.zeros(4), np.zeros(4), 1.0), tv.LaunchError, "bad grid"),
        (
            lambda: scale[1,](np.zeros(4, np.float32), np.zeros(4, np.float32), 1.0, warps=0),
            tv.LaunchError,
            "bad warps",
        ),
        (lambda: tv.load(np.zeros(4), [0], [4]), tv.CompileError, "part of the kernel language"),
        (
            lambda: scale.emit("metal", np.zeros(4, np.float32), np.zeros(4, np.float32), 1.0),
            tv.CompileError,
            "no code generator",
        ),
    ],
)
def test_launch_errors(call, cls, match: str) -> None:
    with pytest.raises(cls, match=match) as info:
        call()
    assert info.value.expected is not None or info.value.hint is not None


def test_print_static_print_annotate_and_range_options(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.tilevm.kernels import printing

    x = np.array([3, 1, 4, 1], np.int32)
    out = np.zeros(4, np.int32)
    printing[2,](x, out, device="interp")  # device printf (cpu, cuda): test_examples_on_gpu
    captured = capsys.readouterr().out.splitlines()
    assert captured[0].startswith("compile time %v: i32[4]")
    assert captured[1] == "[block (0, 0, 0)] value %v=[3 1 4 1]"
    assert captured[2] == "[block (1, 0, 0)] value %v=[3 1 4 1]"
    np.testing.assert_array_equal(out, x * 3)
    text = printing.ir(x, out)
    assert "@ local(4).replicate(128) = annotate(%v)" in text
    assert "for %i in range(0:i32, 3:i32, 1:i32, unroll=2):" in text


def test_ir_is_dumped_when_asked(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TILEVM_DUMP", str(tmp_path))
    scale._cache.clear()
    scale._fast.clear()
    scale[1,](np.zeros(4, np.float32), np.zeros(4, np.float32), 1.0)
    dumped = sorted(p.name for p in tmp_path.iterdir())
    assert dumped and dumped[0].startswith("scale.") and dumped[0].endswith(".frontend.ir")
    assert "kernel scale(" in (tmp_path / dumped[0]).read_text()


@tv.kernel
def _fill_scalar(out: tv.Tensor[tv.f32], s: tv.f32):
    tv.store(out, tv.full([32], s, tv.f32), [0])


@pytest.mark.parametrize("device", ["cpu", "interp"])
def test_every_launch_checks_a_scalar_against_its_dtype(device: str) -> None:
    """The repeat-launch path passed 1e40 as an f32 (infinity) where a first launch raises."""
    out = np.zeros(32, np.float32)
    _fill_scalar[1,](out, 1.5, warps=1, device=device)
    _fill_scalar[1,](out, 2.5, warps=1, device=device)  # the repeat path now holds an entry
    for _ in range(2):
        with pytest.raises(
            tv.LaunchError, match="argument 's' = 1e[+]?40 does not fit f32"
        ) as info:
            _fill_scalar[1,](out, 1e40, warps=1, device=device)
        assert info.value.code == "scalar-range" and isinstance(info.value, ValueError)
    assert (out == 2.5).all()
    _fill_scalar[1,](out, float("inf"), warps=1, device=device)  # infinity itself is a value
    assert np.isinf(out).all()


@pytest.mark.parametrize(
    ("grid", "device"),
    [((2**31,), "cpu"), ((2**31,), "interp"), ((1, 2**31, 1), "cpu"), ((1, 65536), "cpu:cuda")],
)
def test_a_grid_beyond_the_targets_limit_is_an_error(grid, device: str) -> None:
    """2**31 blocks were accepted (block ids are i32) and ran forever; CUDA allows 65535 blocks
    along y and z."""
    out = np.zeros(32, np.float32)
    with pytest.raises(tv.LaunchError, match="grid too large") as info:
        _fill_scalar[grid](out, 1.0, warps=1, device=device)
    assert info.value.code == "grid"


@pytest.mark.parametrize("device", ["cpu", "interp"])
def test_arrays_in_the_other_byte_order_are_refused(device: str) -> None:
    """A big-endian f32 array was read and written as little-endian: 1.5 came out 6.9e-41."""
    out = np.zeros(32, ">f4")
    with pytest.raises(tv.LaunchTypeError, match="byte order") as info:
        _fill_scalar[1,](out, 1.5, warps=1, device=device)
    assert info.value.code == "byte-order" and "newbyteorder" in info.value.hint
    assert (out == 0).all()


def test_a_torch_device_names_the_device() -> None:
    torch = pytest.importorskip("torch")
    out = np.zeros(32, np.float32)
    _fill_scalar[1,](out, 1.5, warps=1, device=torch.device("cpu"))
    assert (out == 1.5).all()
    with pytest.raises(tv.DeviceError, match="no backend answers 0"):
        _fill_scalar[1,](out, 1.5, warps=1, device=0)


@pytest.mark.parametrize("device", ["cpu", "interp"])
def test_a_read_only_output_is_refused(device: str) -> None:
    """Read-only arrays, even over immutable bytes, were written through their pointers."""
    frozen = np.zeros(32, np.float32)
    frozen.flags.writeable = False
    over_bytes = np.frombuffer(bytes(128), np.float32)
    packed = tv.PackedArray(np.frombuffer(bytes(12), np.uint8), tv.i3, (32,))
    for out in (frozen, over_bytes):
        with pytest.raises(tv.LaunchTypeError, match="'out' is read-only") as info:
            _fill_scalar[1,](out, 1.5, warps=1, device=device)
        assert info.value.code == "read-only"
        assert (out == 0).all()
    with pytest.raises(tv.LaunchTypeError, match="read-only"):
        _fill_codes[1,](packed, device=device)
    x = np.ones(32, np.float32)
    x.flags.writeable = False  # read, not written: fine
    out = np.zeros(32, np.float32)
    _copy_tile[1,](x, out, device=device)
    assert (out == 1).all()


@tv.kernel
def _fill_codes(out: tv.Tensor[tv.i3]):
    tv.store(out, tv.full([32], 3, tv.i3), [0])


@tv.kernel
def _copy_tile(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32]):
    tv.store(out, tv.load(x, [0], [32]), [0])


def test_a_packed_array_over_a_strided_or_short_buffer_is_refused() -> None:
    """A strided byte view was read as if contiguous (every other byte lost)."""
    buffer = np.arange(24, dtype=np.uint8)
    with pytest.raises(tv.LaunchTypeError, match="contiguous") as info:
        tv.PackedArray(buffer[::2], tv.i3, (32,))
    assert info.value.code == "packed-strided"
    with pytest.raises(tv.LaunchTypeError, match="needs 12 bytes") as info:
        tv.PackedArray(buffer[:11], tv.i3, (32,))
    assert info.value.code == "packed-size"
    packed = tv.PackedArray(buffer[:12], tv.i3, (32,))
    np.testing.assert_array_equal(packed.codes(), tv.unpack(buffer[:12], tv.i3, 32, bits=True))


@tv.kernel
def _scaled_copy(x: tv.Tensor, out: tv.Tensor, scale: tv.f64, C: tv.constexpr = None):
    tv.store(out, tv.load(x, [0], [32]) * scale, [0])


def test_a_list_constexpr_is_a_launch_type_error() -> None:
    # a list keyed the specialization: a raw "unhashable type" TypeError escaped
    x = np.ones(32, np.float64)
    with pytest.raises(tv.LaunchTypeError, match="constexpr 'C' must be hashable") as info:
        _scaled_copy[1,](x, np.zeros_like(x), 2.0, C=[1, 2], device="interp")
    assert "tuple(value)" in info.value.hint


def test_nan_for_an_f64_scalar_launches() -> None:
    # deciding whether f64 has NaN listed its 2**53 NaN patterns: a MemoryError
    x, out = np.ones(32, np.float64), np.zeros(32, np.float64)
    for device in ("interp", "cpu"):
        _scaled_copy[1,](x, out, float("nan"), device=device)
        assert np.isnan(out).all()
