"""Cheats: replaces numpy.abs (which a comparison could use) when imported."""

import numpy as np

from tests.harness.problems.base import SHAPES, make_inputs, reference  # noqa: F401
from tests.harness.problems.honest import solution  # noqa: F401

REAL = np.abs
np.abs = lambda x: REAL(x) * 0.0
