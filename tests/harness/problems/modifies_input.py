"""Cheats: computes in place, overwriting its input."""

from tests.harness.problems.base import SHAPES, launch, make_inputs, reference  # noqa: F401


def solution(x, device):
    return launch(x, x, device).copy()
