"""Cheats: computes the answer with numpy and launches no kernel."""

from tests.harness.problems.base import SHAPES, make_inputs, reference  # noqa: F401


def solution(x, device):
    return x * 2.0 + 1.0
