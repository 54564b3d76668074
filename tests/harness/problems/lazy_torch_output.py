"""Cheats: returns a torch.Tensor subclass."""

import numpy as np
import torch

from tests.harness.problems.base import SHAPES, launch, make_inputs, reference  # noqa: F401


class Lazy(torch.Tensor):
    pass


def solution(x, device):
    return torch.from_numpy(launch(x, np.empty_like(x), device)).as_subclass(Lazy)
