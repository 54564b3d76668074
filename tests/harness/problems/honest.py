"""An honest solution that returns its output."""

import numpy as np

from tests.harness.problems.base import SHAPES, launch, make_inputs, reference  # noqa: F401


def solution(x, device):
    return launch(x, np.empty_like(x), device)
