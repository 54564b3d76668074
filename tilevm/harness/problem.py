"""A problem module: the contract between a kernel author and the check and bench harness.

A problem is a Python file with (docs/harness.md has the full contract and an example):

* ``SHAPES``: the shapes to check, each passed to ``make_inputs`` (odd ones included);
  ``DEVICE_SHAPES`` (optional): ``{device or device kind: shapes}`` for devices that need
  fewer or smaller shapes (the interpreter is slow); ``DEVICES`` (optional): the only devices
  the problem runs on;
* ``make_inputs(shape, device, rng)``: a tuple of inputs: numpy arrays (moved to the GPU as
  torch tensors on a GPU device), torch tensors, or Python scalars;
* ``solution(*inputs, device=...)``: launches tilevm kernels on ``device`` and returns the
  output (or a tuple of outputs); or, when the module defines ``outputs``, writes into the
  given outputs, ``solution(*inputs, *outputs, device=...)``, and returns None;
* ``outputs(*inputs)`` (optional): ``[(shape, dtype), ...]``: the harness allocates them,
  poisoned, on the inputs' device;
* ``reference(*inputs)``: the expected outputs, computed (in float64 or as the author states)
  on private copies of the inputs, after the solution; its dtypes are the contract unless
  ``OUTPUT_DTYPES`` (optional, one per output) declares others;
* ``TOLERANCE`` (optional): ``{"atol": ..., "rtol": ...}``, or a list with one per output.
"""

from __future__ import annotations

import importlib.util
import itertools
import pathlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from tilevm.dtypes import TilevmValueError, interop

_names = itertools.count()


class ProblemError(TilevmValueError):
    """A problem module does not follow the harness's contract."""

    code = "problem-module"


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float


@dataclass
class Problem:
    path: str
    module: ModuleType
    shapes: list[Any]
    device_shapes: dict[str, list[Any]]
    devices: list[str] | None
    make_inputs: Callable[..., Any]
    solution: Callable[..., Any]
    reference: Callable[..., Any]
    outputs: Callable[..., Any] | None
    output_dtypes: list[Any] | None
    tolerance: list[Tolerance] | Tolerance | None = None
    solution_module: ModuleType | None = field(default=None, repr=False)

    def shapes_for(self, device: str) -> list[Any]:
        """The shapes to run on ``device``: its own entry, its kind's ("cpu" for "cpu:amd"),
        else ``SHAPES``."""
        for key in (device, device.split(":")[0]):
            if key in self.device_shapes:
                return list(self.device_shapes[key])
        return list(self.shapes)

    def runs_on(self, device: str) -> bool:
        if self.devices is None:
            return True
        return any(device == d or device.split(":")[0] == d for d in self.devices)

    def tolerance_for(self, index: int) -> Tolerance | None:
        if isinstance(self.tolerance, list):
            return self.tolerance[index] if index < len(self.tolerance) else None
        return self.tolerance


def load_module(path: str) -> ModuleType:
    """Import a Python file under a fresh module name (a file's folder joins ``sys.path`` so it
    may import its neighbours)."""
    file = pathlib.Path(path)
    if not file.is_file():
        raise ProblemError(
            f"no problem file {path!r}",
            expected="the path of a Python file",
            found=path,
            hint="python -m tilevm check path/to/problem.py",
        )
    name = f"tilevm_problem_{next(_names)}_{file.stem}"
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    folder = str(file.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load(path: str, solution_path: str | None = None) -> Problem:
    """Read a problem module (and the solution from another file, when given)."""
    module = load_module(path)
    solution_module = load_module(solution_path) if solution_path else None
    home = solution_module or module
    return Problem(
        path=path,
        module=module,
        shapes=_shape_list(module, "SHAPES", _required(module, "SHAPES")),
        device_shapes=_device_shapes(module),
        devices=_devices(module),
        make_inputs=_function(module, "make_inputs"),
        solution=_function(home, "solution"),
        reference=_function(module, "reference"),
        outputs=_function(module, "outputs") if hasattr(module, "outputs") else None,
        output_dtypes=_output_dtypes(module),
        tolerance=_tolerance(getattr(module, "TOLERANCE", None)),
        solution_module=home,
    )


def _required(module: ModuleType, name: str) -> Any:
    if not hasattr(module, name):
        raise ProblemError(
            f"the problem module defines no {name}",
            expected=f"a module-level {name}",
            found=f"names {sorted(n for n in vars(module) if not n.startswith('_'))}",
            hint="docs/harness.md lists what a problem module defines",
        )
    return getattr(module, name)


def _function(module: ModuleType, name: str) -> Callable[..., Any]:
    value = _required(module, name)
    if not callable(value):
        raise ProblemError(
            f"{name} is not a function",
            expected=f"def {name}(...)",
            found=type(value).__name__,
        )
    return value


def _shape_list(module: ModuleType, name: str, value: Any) -> list[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise ProblemError(
            f"{name} must be a non-empty list of shapes",
            expected="e.g. [(33, 300), (1, 1), (128, 1000)]",
            found=repr(value)[:80],
        )
    return list(value)


def _device_shapes(module: ModuleType) -> dict[str, list[Any]]:
    value = getattr(module, "DEVICE_SHAPES", {})
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ProblemError(
            "DEVICE_SHAPES must map device names to lists of shapes",
            expected='e.g. {"interp": [(5, 37)]}',
            found=repr(value)[:80],
        )
    return {k: _shape_list(module, f"DEVICE_SHAPES[{k!r}]", v) for k, v in value.items()}


def _devices(module: ModuleType) -> list[str] | None:
    value = getattr(module, "DEVICES", None)
    if value is None:
        return None
    if isinstance(value, str) or not all(isinstance(d, str) for d in value):
        raise ProblemError(
            "DEVICES must be a list of device names",
            expected='e.g. ["cpu", "cuda"]',
            found=repr(value)[:80],
        )
    return list(value)


def _output_dtypes(module: ModuleType) -> list[Any] | None:
    value = getattr(module, "OUTPUT_DTYPES", None)
    if value is None:
        return None
    try:
        return [interop.as_dtype(d) for d in value]
    except (TypeError, TilevmValueError) as exc:
        raise ProblemError(
            "OUTPUT_DTYPES must list one dtype per output",
            expected='e.g. ["float16"] or [tv.f16]',
            found=repr(value)[:80],
        ) from exc


def _tolerance(value: Any) -> list[Tolerance] | Tolerance | None:
    if value is None:
        return None
    if isinstance(value, list):
        return [_one_tolerance(v) for v in value]
    return _one_tolerance(value)


def _one_tolerance(value: Any) -> Tolerance:
    ok = isinstance(value, dict) and set(value) <= {"atol", "rtol"} and value
    numbers = ok and all(
        isinstance(v, (int, float)) and np.isfinite(v) and v >= 0 for v in value.values()
    )
    if not numbers:
        raise ProblemError(
            "a TOLERANCE entry must give atol and/or rtol",
            expected='{"atol": 1e-5, "rtol": 1e-5} (non-negative numbers)',
            found=repr(value)[:80],
        )
    return Tolerance(float(value.get("atol", 0.0)), float(value.get("rtol", 0.0)))


__all__ = ["Problem", "ProblemError", "Tolerance", "load", "load_module"]
