"""Cheats: launches a kernel for show, then returns the reference's result."""

import numpy as np

from tests.harness.problems.base import SHAPES, launch, make_inputs, reference  # noqa: F401


def solution(x, device):
    launch(x, np.empty_like(x), device)
    return reference(x)
