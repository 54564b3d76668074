"""Cheats: launches a kernel that writes nothing into the given (poisoned) output."""

from tests.harness.problems.base import SHAPES, make_inputs, nothing, reference  # noqa: F401


def outputs(x):
    return [(x.shape, "float32")]


def solution(x, out, device):
    nothing[1,](x, out, device=device)
