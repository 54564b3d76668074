"""numpy, ml_dtypes and torch types map to tilevm twins and back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tilevm as tv
from tests.dtypes.helpers import ml_types


@pytest.mark.parametrize("np_type", ml_types(), ids=str)
def test_every_ml_dtypes_type_maps_both_ways(np_type: np.dtype) -> None:
    dt = tv.dtype(np_type)
    assert tv.dtypes.to_numpy(dt) == np_type
    assert tv.dtype(np_type.type) == dt
    assert tv.dtype(np_type.name) == dt


@pytest.mark.parametrize(
    "name", ["int8", "uint16", "int32", "uint64", "float16", "float32", "float64"]
)
def test_numpy_builtin_types_map_both_ways(name: str) -> None:
    dt = tv.dtype(np.dtype(name))
    assert tv.dtypes.to_numpy(dt) == np.dtype(name)
    assert dt.bits == np.dtype(name).itemsize * 8


def test_types_without_a_numpy_twin() -> None:
    assert tv.dtypes.to_numpy(tv.i3) is None and tv.dtypes.to_numpy(tv.f6e3m2) is None
    assert tv.dtype(np.bool_) == tv.u1
    with pytest.raises(tv.DtypeError, match="no tilevm twin"):
        tv.dtype(np.dtype("complex64"))


def torch_scalar_types() -> list[torch.dtype]:
    found = {getattr(torch, n) for n in dir(torch) if isinstance(getattr(torch, n), torch.dtype)}
    return sorted(found, key=str)


@pytest.mark.parametrize("torch_type", torch_scalar_types(), ids=str)
def test_torch_types_map_where_torch_has_one(torch_type: torch.dtype) -> None:
    name = str(torch_type).removeprefix("torch.")
    if (
        torch_type.is_complex
        or name in ("float4_e2m1fn_x2", "bool")
        or name.startswith(("q", "bits"))
    ):
        if name == "bool":
            assert tv.dtype(torch_type) == tv.u1
        else:
            with pytest.raises(tv.DtypeError):
                tv.dtype(torch_type)
        return
    dt = tv.dtype(torch_type)
    assert tv.dtypes.to_torch(dt) == torch_type
    if torch_type.is_floating_point:
        info = torch.finfo(torch_type)
        # eps is compared with ml_dtypes elsewhere: torch reports half of it for the fnuz types
        assert (dt.max, dt.min, dt.smallest_normal) == (info.max, info.min, info.smallest_normal)
    elif dt.bits >= 8:
        info = torch.iinfo(torch_type)
        assert (dt.min, dt.max) == (info.min, info.max)


def test_torch_tensor_bits_agree_with_encode(rng: np.random.Generator) -> None:
    x = rng.standard_normal(1000).astype(np.float32) * 100
    for torch_type in (torch.float8_e4m3fn, torch.float8_e5m2, torch.bfloat16, torch.float16):
        dt = tv.dtype(torch_type)
        theirs = (
            torch.from_numpy(x)
            .to(torch_type)
            .view(torch.uint8 if dt.bits == 8 else torch.int16)
            .numpy()
        )
        assert np.array_equal(theirs.view(dt.storage), dt.encode(x))
