"""Cheats (GPU): runs its kernel on a side stream after a long GPU sleep, so the events on the
current stream time nothing and the output lands after the end event."""

import torch

from tests.harness.problems.base import SHAPES, launch, make_inputs, reference  # noqa: F401


def outputs(x):
    return [(x.shape, "float32")]


def solution(x, out, device):
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        torch.cuda._sleep(50_000_000)  # about 25 ms
        launch(x, out, device)
