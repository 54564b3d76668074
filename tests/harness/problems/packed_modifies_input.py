"""Cheats: writes into its packed weights (a byte of them) besides computing the answer."""

from tests.harness.problems.packed import (  # noqa: F401
    SHAPES,
    TOLERANCE,
    make_inputs,
    outputs,
    reference,
)
from tests.harness.problems.packed import solution as honest


def solution(w, x, y, device):
    honest(w, x, y, device)
    w.data[0] ^= 0xFF  # a change the reference, run on private copies, never sees
