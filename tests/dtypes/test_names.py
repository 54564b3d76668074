"""Names, constructors, attributes and the properties derived from the widths."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

import tilevm as tv
from tests.dtypes.helpers import all_small_floats, ml_types


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("i3", tv.int_type(3)),
        ("u5", tv.int_type(5, signed=False)),
        ("i64", tv.int_type(64)),
        ("f16", tv.float_type(5, 10)),
        ("bf16", tv.float_type(8, 7)),
        ("f32", tv.float_type(8, 23)),
        ("f64", tv.float_type(11, 52)),
        ("f6e3m2fn", tv.float_type(3, 2, "fn")),
        ("f3e1m1", tv.float_type(1, 1)),
        ("f8e4m3b11fnuz", tv.float_type(4, 3, "fnuz", bias=11)),
        ("f8e8m0fnu", tv.float_type(8, 0, "fnu")),
        ("float8_e4m3fn", tv.float_type(4, 3, "fn")),
        ("int4", tv.int_type(4)),
        ("uint2", tv.int_type(2, signed=False)),
        ("F16E5M10", tv.f16),
    ],
)
def test_names_parse_to_the_same_type(name: str, expected: tv.DataType) -> None:
    assert tv.dtype(name) == expected


def test_every_type_prints_as_a_name_that_parses_back() -> None:
    types = all_small_floats() + [tv.int_type(b, s) for b in range(1, 65) for s in (True, False)]
    types += [tv.f32, tv.f64, tv.float_type(4, 3, "fnuz", bias=11)]
    for dt in types:
        assert tv.dtype(str(dt)) == dt
        assert repr(dt) == f"dtype({str(dt)!r})"


def test_attributes_cover_common_and_any_valid_name() -> None:
    assert tv.i3 == tv.dtype("i3") and tv.u4.bits == 4 and tv.f8e4m3fn.variant == "fn"
    assert tv.f7e3m3fn == tv.float_type(3, 3, "fn")
    assert tv.dtypes.u13 == tv.int_type(13, signed=False)
    with pytest.raises(AttributeError):
        tv.not_a_dtype  # noqa: B018


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        ("f6e3m3", "dtype-name"),  # 1 + 3 + 3 = 7 bits, not 6
        ("i0", "dtype-width"),
        ("u65", "dtype-width"),
        ("q4", "dtype-name"),
        ("f17e8m8", "dtype-width"),
        ("f16e12m3", "dtype-width"),  # range beyond float64
        ("f8e0m7", "dtype-width"),
    ],
)
def test_bad_names_raise_a_clear_error(bad: str, code: str) -> None:
    with pytest.raises(tv.DtypeError) as info:
        tv.dtype(bad)
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, tv.TilevmError)
    assert err.code == code
    assert err.expected and err.found
    text = str(err)
    assert "expected:" in text and "found:" in text
    assert err.to_dict()["code"] == code


def test_constructor_arguments_are_checked() -> None:
    with pytest.raises(tv.DtypeError, match="convention"):
        tv.float_type(3, 2, "fx")
    with pytest.raises(tv.DtypeError):
        tv.int_type(3.5)
    with pytest.raises(tv.DtypeError):
        tv.float_type(-1, 2)
    with pytest.raises(tv.TilevmTypeError):
        tv.dtype(3.0)
    with pytest.raises(tv.DtypeError, match="floating-point"):
        tv.i8.eps  # noqa: B018


@pytest.mark.parametrize("np_type", ml_types(), ids=str)
def test_float_properties_match_ml_dtypes_finfo(np_type: np.dtype) -> None:
    dt = tv.dtype(np_type)
    if dt.is_integer:
        info = ml_dtypes.iinfo(np_type)
        assert (dt.min, dt.max, dt.bits) == (info.min, info.max, info.bits)
        return
    info = ml_dtypes.finfo(np_type)
    assert dt.max == float(info.max)
    assert dt.min == float(info.min)
    assert dt.eps == float(info.eps)
    assert dt.smallest_normal == float(info.smallest_normal)
    assert dt.smallest_subnormal == float(info.smallest_subnormal)
    assert dt.bits == info.bits


@pytest.mark.parametrize("dt", all_small_floats(), ids=str)
def test_derived_properties_agree_with_the_value_table(dt: tv.DataType) -> None:
    values = dt.decode(np.arange(1 << dt.bits)).astype(np.float64)
    finite = values[np.isfinite(values)]
    assert dt.max == finite.max() and dt.min == finite.min()
    positive = finite[finite > 0]
    if dt.has_zero:
        assert 0.0 in finite
    assert dt.smallest_subnormal == positive.min()
    assert dt.has_nan == bool(np.isnan(values).any())
    assert dt.has_inf == bool(np.isinf(values).any())
    assert dt.has_negative_zero == bool(((values == 0) & np.signbit(values)).any())
    if 1.0 in positive and (positive > 1.0).any():
        assert dt.eps == positive[positive > 1.0].min() - 1.0
    # decode is exact in value_dtype
    assert np.array_equal(values, values.astype(dt.value_dtype).astype(np.float64), equal_nan=True)


def test_integer_ranges_come_from_the_width() -> None:
    for bits in range(1, 65):
        assert tv.int_type(bits).min == -(2 ** (bits - 1))
        assert tv.int_type(bits).max == 2 ** (bits - 1) - 1
        assert tv.int_type(bits, signed=False).max == 2**bits - 1
        assert tv.int_type(bits).storage.itemsize * 8 >= bits


def test_storage_and_packed_sizes() -> None:
    assert tv.u3.storage == np.uint8 and tv.f16.storage == np.uint16 and tv.i33.storage == np.uint64
    assert tv.u3.nbytes(8) == 3 and tv.u3.nbytes(9) == 4 and tv.i1.nbytes(0) == 0
    assert math.isclose(tv.f8e4m3fn.max, 448.0)
