"""The quantized weight format: rounding rules, packing, the layouts behind it, dict round
trips and the errors of bad input (host only; the kernels are tested in test_quant_linear)."""

from __future__ import annotations

import numpy as np
import pytest

import tilevm as tv
from tilevm.stdlib.quant import QuantizedWeight, dequantize, quantize
from tilevm.stdlib.quant.format import dequantized_values, pack_codes, unpack_codes
from tilevm.stdlib.quant.layouts import LANES, Unit, field_sources, sigma

WIDTHS = range(1, 9)


@pytest.mark.parametrize("bits", WIDTHS)
def test_packing_round_trips_at_odd_shapes(bits, rng) -> None:
    dt = tv.int_type(bits, signed=False)
    for n, k in ((1, 1), (17, 300), (40, 513)):
        codes = rng.integers(0, 1 << bits, (n, k))
        packed = pack_codes(codes, dt)
        unit = Unit(bits)
        assert packed.shape == (-(-n // 16), -(-k // unit.kc), unit.words)
        np.testing.assert_array_equal(unpack_codes(packed, dt, n, k), codes)


def test_torch_packs_the_same_words(rng) -> None:
    torch = pytest.importorskip("torch")
    for bits in (3, 4, 8):
        dt = tv.int_type(bits, signed=False)
        codes = rng.integers(0, 1 << bits, (33, 520))
        np.testing.assert_array_equal(
            pack_codes(torch.from_numpy(codes), dt).numpy(), pack_codes(codes, dt)
        )


@pytest.mark.parametrize("bits", WIDTHS)
def test_layouts_pair_neighbouring_columns_in_one_word(bits) -> None:
    """Fields ``f`` and ``f + pair_weight`` of a lane are the two columns one tensor-core
    register holds (``k_frag`` and ``k_frag + 1``, the same row), in the same 32-bit word or
    window, and every field of a unit is some lane's."""
    unit = Unit(bits)
    rows, cols = field_sources(bits)
    frag = np.argsort(sigma(bits))  # column -> fragment position
    w = unit.pair_weight
    for f in range(unit.fields):
        if (f // w) % 2 == 0:
            assert (rows[:, f] == rows[:, f + w]).all()
            assert (frag[cols[:, f + w]] == frag[cols[:, f]] + 1).all()
    assert len(set(zip(rows.ravel(), cols.ravel()))) == 16 * unit.kc == LANES * unit.fields


@pytest.mark.parametrize("bits", WIDTHS)
def test_sigma_keeps_aligned_blocks_of_32_columns_together(bits) -> None:
    s = sigma(bits)
    np.testing.assert_array_equal(np.sort(s), np.arange(Unit(bits).kc))
    np.testing.assert_array_equal(s // 32, np.arange(len(s)) // 32)


def _weights(rng, n=48, k=256):
    return rng.standard_normal((n, k)).astype(np.float32) * rng.uniform(0.5, 2.0, (n, 1))


@pytest.mark.parametrize("name", ["i2", "i3", "i4", "i8", "u4", "u7"])
@pytest.mark.parametrize("group", [32, 128, -1])
def test_symmetric_integers_round_to_nearest(name, group, rng) -> None:
    w = _weights(rng)
    qw = quantize(w, name, group)
    dt = tv.dtype(name)
    d = dequantized_values(qw)
    g = w.shape[1] if group == -1 else group
    s = qw.scales.astype(np.float64).T.repeat(g, axis=1)
    assert (np.abs(d - w) <= s / 2 * (1 + 1e-6) + 1e-12).all() or dt.bits <= 1
    q = np.rint(d / np.where(s > 0, s, 1))
    assert q.min() >= -(2 ** (dt.bits - 1)) and q.max() <= 2 ** (dt.bits - 1) - 1


@pytest.mark.parametrize("name", ["u1", "u2", "u3", "u4", "u8"])
def test_zero_points_cover_each_group(name, rng) -> None:
    w = _weights(rng) + 0.7  # not centred on zero: an asymmetric range
    qw = quantize(w, name, 64, zero_point=True)
    assert qw.zeros is not None and qw.zeros.shape == (4, 48)
    z = qw.zeros.astype(np.float64)
    assert (z == np.rint(z)).all() and z.min() >= 0 and z.max() <= 2 ** tv.dtype(name).bits - 1
    d = dequantized_values(qw)
    s = qw.scales.astype(np.float64).T.repeat(64, axis=1)
    # the integer zero point shifts the grid by up to half a step: the group's ends may clip
    assert (np.abs(d - w) <= s * 1.0001 + 1e-9).all()
    assert np.mean(np.abs(d - w) <= s * 0.5001) > 0.95


@pytest.mark.parametrize("name", ["f4e2m1fn", "f6e3m2fn", "f8e4m3fn", "f8e5m2", "f3e1m1"])
def test_floats_take_the_nearest_value_of_the_type(name, rng) -> None:
    w = _weights(rng)
    qw = quantize(w, name, 32)
    dt = tv.dtype(name)
    s = qw.scales.astype(np.float64).T.repeat(32, axis=1)
    ratio = dequantized_values(qw) / np.where(s > 0, s, 1)
    np.testing.assert_array_equal(ratio, dt.round(w.astype(np.float64) / s, overflow="saturate"))


def test_all_zero_groups_dequantize_to_zero(rng) -> None:
    w = _weights(rng)
    w[:, :32] = 0
    for name, zp in (("u4", True), ("i4", False), ("f4e2m1fn", False)):
        d = dequantized_values(quantize(w, name, 32, zero_point=zp))
        assert (d[:, :32] == 0).all() and np.isfinite(d).all()


def test_dict_round_trip_and_errors(rng) -> None:
    w = _weights(rng)
    qw = quantize(w, "u3", 64, zero_point=True, scale_dtype="f32")
    again = QuantizedWeight.from_dict(qw.to_dict("layer."), "layer.")
    assert (again.dtype, again.group_size, again.shape) == (qw.dtype, 64, qw.shape)
    np.testing.assert_array_equal(dequantized_values(again), dequantized_values(qw))
    entries = qw.to_dict()
    del entries["scales"]
    with pytest.raises(tv.LaunchError, match="not a quantized weight"):
        QuantizedWeight.from_dict(entries)
    entries = qw.to_dict()
    entries["qweight"] = entries["qweight"][:1]
    with pytest.raises(tv.LaunchError, match="wrong shape"):
        QuantizedWeight.from_dict(entries)


def test_torch_weights_stay_on_their_device(rng) -> None:
    torch = pytest.importorskip("torch")
    w = torch.from_numpy(_weights(rng)).to(torch.bfloat16)
    qw = quantize(w, "i4", 128)
    assert isinstance(qw.packed, torch.Tensor) and qw.scales.dtype == torch.bfloat16
    d = dequantize(qw)
    assert isinstance(d, torch.Tensor) and d.shape == (48, 256)
    np.testing.assert_array_equal(d.numpy(), dequantized_values(quantize(w.float().numpy(),
                                  "i4", 128, scale_dtype="bf16")).astype(np.float32))  # fmt: skip


def test_from_codes_packs_given_codes(rng) -> None:
    codes = rng.integers(0, 8, (20, 128))
    scales = rng.uniform(0.5, 1, (20, 2)).astype(np.float16)
    qw = QuantizedWeight.from_codes(codes, "u3", scales, group_size=64)
    expected = (codes - 4) * scales.astype(np.float64).repeat(64, axis=1)
    np.testing.assert_array_equal(dequantized_values(qw), expected)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"dtype": "u9"}, tv.LaunchTypeError, "not supported"),
        ({"dtype": "f16"}, tv.LaunchTypeError, "not supported"),
        ({"dtype": "f8e8m0fnu"}, tv.LaunchTypeError, "not supported"),
        ({"dtype": "nonsense"}, tv.LaunchTypeError, "unknown weight dtype"),
        ({"dtype": "i4", "zero_point": True}, tv.LaunchTypeError, "zero points"),
        ({"dtype": "u4", "group_size": 48}, tv.LaunchError, "group size"),
        ({"dtype": "u4", "scale_dtype": "f64"}, tv.LaunchTypeError, "scale dtype"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, error, message, rng) -> None:
    with pytest.raises(error, match=message):
        quantize(_weights(rng), **kwargs)


def test_k_must_be_a_multiple_of_the_group(rng) -> None:
    with pytest.raises(tv.LaunchError, match="not a multiple of the group"):
        quantize(_weights(rng, k=96), "u4", 64)
    with pytest.raises(tv.LaunchError, match="2-D"):
        quantize(np.zeros(8, np.float32), "u4")
