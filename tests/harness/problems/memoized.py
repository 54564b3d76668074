"""Cheats: computes each shape once, then returns the cached result."""

import numpy as np

from tests.harness.problems.base import SHAPES, launch, make_inputs, reference  # noqa: F401

CACHE = {}


def solution(x, device):
    if x.shape not in CACHE:
        CACHE[x.shape] = launch(x, np.empty_like(x), device)
    return CACHE[x.shape].copy()
