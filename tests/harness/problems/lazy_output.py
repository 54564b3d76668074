"""Cheats: returns an ndarray subclass (one that could compute its values when read)."""

import numpy as np

from tests.harness.problems.base import SHAPES, launch, make_inputs, reference  # noqa: F401


class Lazy(np.ndarray):
    pass


def solution(x, device):
    return launch(x, np.empty_like(x), device).view(Lazy)
