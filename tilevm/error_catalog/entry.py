"""One entry of the error catalogue."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    code: str
    title: str  # one line
    meaning: str
    fix: str
    # A complete program that raises ``code`` when run (numpy as np and tilevm as tv imported,
    # in a file of its own, since kernels are compiled from their source).
    example: str | None = None
    why_no_example: str | None = None  # when no program can raise it on a machine like CI's


__all__ = ["Entry"]
