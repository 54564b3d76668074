"""Shared test fixtures: fresh random data every run (the seed is printed so a failure can be
replayed with TILEVM_TEST_SEED)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.devices import DEVICES

SEED = int(os.environ.get("TILEVM_TEST_SEED", np.random.SeedSequence().entropy % (1 << 32)))


def pytest_report_header(config: pytest.Config) -> str:
    return f"tilevm random seed: TILEVM_TEST_SEED={SEED}"


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    return np.random.default_rng([SEED, abs(hash(request.node.nodeid)) % (1 << 32)])


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    """Every executor here: the interpreter, the CPU (also emulating CUDA and AMD), SYCL on the
    OpenCL CPU device, and CUDA where a GPU is present."""
    return request.param
