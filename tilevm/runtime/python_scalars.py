"""Scalar parameters annotated with Python's own types: ``n: int``, ``x: float``, ``flag: bool``.

``int`` is i32, or i64 for a launch whose value does not fit i32 (that launch's specialization:
the kernel is compiled once for each width, as for 64-bit indexing); ``float`` is f32 (the
precision of the GPU's fast arithmetic; annotate ``tv.f64`` for double); ``bool`` is u1, the
dtype comparisons give. Values are taken as Python's typing takes them: a bool is an int, an
int a float; a float is no int, and only True and False are bools.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tilevm.dtypes import DataType
from tilevm.errors import LaunchTypeError
from tilevm.frontend.builder import python_dtype

PYTHON_SCALARS = (int, float, bool)

_TAKES: dict[type, tuple[type, ...]] = {
    int: (int, np.integer, bool, np.bool_),
    float: (int, float, np.integer, np.floating, bool, np.bool_),
    bool: (bool, np.bool_),
}


def python_scalar_dtype(name: str, annotation: type, value: Any) -> DataType:
    """The dtype of parameter ``name: annotation`` for one launch's ``value``; a value that
    does not fit it (an int past i64) is refused where the launch converts it."""
    if not isinstance(value, _TAKES[annotation]):
        hint = {
            int: "pass an int (int(value) if the float holds one)",
            float: "pass a number",
            bool: "pass True or False (bool(value))",
        }[annotation]
        raise LaunchTypeError(
            f"argument '{name}' must be {'an' if annotation is int else 'a'} "
            f"{annotation.__name__}",
            expected=f"a Python {annotation.__name__} (the parameter is '{name}: "
            f"{annotation.__name__}')",
            found=f"{type(value).__name__} {value!r}"[:80],
            hint=hint,
            code="scalar-type",
        )
    return python_dtype(annotation(value))  # as an unannotated parameter of that value
