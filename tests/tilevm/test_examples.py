"""Every example runs on its default device (the CPU for numpy arrays), on the interpreter and
on the CPU emulating the CUDA and AMD lowerings, and matches its float64 / numpy reference."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

import tilevm as tv
from tests.conftest import SEED

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# None: the default device, which is the CPU for numpy arrays
EXECUTORS = pytest.mark.parametrize("device", [None, "interp", "cpu:cuda", "cpu:amd", "cpu:intel"])


@EXECUTORS
def test_vector_add(device: str | None) -> None:
    assert load("vector_add").run(n=5_000 + 17, device=device, seed=SEED) == 0.0


@EXECUTORS
def test_softmax(device: str | None) -> None:
    assert load("softmax").run(rows=9, cols=130, device=device, seed=SEED) < 1e-6


@EXECUTORS
def test_row_cumsum_and_running_max(device: str | None) -> None:
    # f32 sums in any order: within a few units of 2**-24 of the sum of magnitudes
    assert load("cumsum").run(rows=9, cols=600, device=device, seed=SEED) < 1e-6


@EXECUTORS
def test_tiled_matmul_with_shared_memory(device: str | None) -> None:
    assert load("matmul").run(m=45, n=38, k=70, device=device, seed=SEED) < 1e-6


@EXECUTORS
@pytest.mark.parametrize("wtype", [tv.i3, tv.f6e3m2fn], ids=str)
def test_quantized_matmul_views_packed_bytes(wtype: tv.DataType, device: str | None) -> None:
    error = load("quantized_matmul").run(wtype, m=18, n=64, k=192, device=device, seed=SEED)
    assert error < 1e-6
