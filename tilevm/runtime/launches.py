"""How many kernel launches this process has made: a tool's way to tell that a function ran
tilevm kernels at all (the check harness reports a solution that launched none).

One list cell, bumped by ``Launcher`` after each launch that ran a non-empty grid. A list item
is the cheapest counter a hot path can bump (about 20 ns); read it through ``launch_count()``.
"""

from __future__ import annotations

COUNT = [0]  # the launcher increments COUNT[0]; nothing else should write it


def launch_count() -> int:
    """The number of non-empty kernel launches made in this process so far (any device)."""
    return COUNT[0]


__all__ = ["COUNT", "launch_count"]
