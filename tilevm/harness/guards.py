"""What a solution must leave alone: the clocks the harness times with, the functions it
compares with, and the launch counter.

``Watch`` takes its references to them when the harness starts, before any problem module is
imported; the harness times and compares through those references (so a patched
``time.perf_counter`` changes nothing it measures), and ``changed()`` names every one that
was replaced since, so a solution that patches a timer fails instead of passing unnoticed.
"""

from __future__ import annotations

import importlib
import time
from typing import Any

from tilevm.runtime import launches

# (module, dotted attribute) pairs: the clocks of the standard library, numpy's functions the
# comparison uses, torch's CUDA timing and synchronization, and the launch counter.
_WATCHED = [
    ("time", "perf_counter"),
    ("time", "perf_counter_ns"),
    ("time", "monotonic"),
    ("time", "monotonic_ns"),
    ("time", "time"),
    ("numpy", "abs"),
    ("numpy", "isnan"),
    ("numpy", "isfinite"),
    ("numpy", "asarray"),
    ("numpy", "argmax"),
    ("numpy", "array_equal"),
    ("numpy", "where"),
    ("tilevm.runtime.launches", "launch_count"),
    ("tilevm.runtime.launches", "COUNT"),
    ("torch.cuda", "Event"),
    ("torch.cuda", "Event.record"),
    ("torch.cuda", "Event.elapsed_time"),
    ("torch.cuda", "Event.synchronize"),
    ("torch.cuda", "Event.query"),
    ("torch.cuda", "synchronize"),
    ("torch.cuda", "current_stream"),
    ("torch.cuda", "Stream.synchronize"),
    ("torch.Tensor", "cpu"),
    ("torch.Tensor", "numpy"),
    ("torch.Tensor", "clone"),
]


def _lookup(module_name: str, dotted: str) -> Any:
    """The object at ``module.dotted``, or None where it does not exist (torch absent)."""
    head, _, rest = module_name.partition(".")
    try:
        value: Any = importlib.import_module(head)
        for part in [*rest.split("."), *dotted.split(".")] if rest else dotted.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError):
        return None
    return value


class Watch:
    """References to the watched objects, taken at construction."""

    def __init__(self) -> None:
        self.taken = {f"{m}.{a}": (m, a, _lookup(m, a)) for m, a in _WATCHED}
        self.perf_counter = time.perf_counter
        self.launch_count = launches.launch_count

    def changed(self) -> list[str]:
        """The watched names that no longer hold the object they held at construction."""
        return [
            name
            for name, (module, attr, value) in self.taken.items()
            if value is not None and _lookup(module, attr) is not value
        ]

    def launches(self) -> int:
        return self.launch_count()

    def now(self) -> float:
        return self.perf_counter()


__all__ = ["Watch"]
