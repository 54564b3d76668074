"""Cheats: replaces time.perf_counter with a clock that barely moves."""

import time

import numpy as np

from tests.harness.problems.base import SHAPES, launch, make_inputs, reference  # noqa: F401

REAL = time.perf_counter


def solution(x, device):
    out = launch(x, np.empty_like(x), device)
    time.perf_counter = lambda: REAL() * 1e-6
    return out
