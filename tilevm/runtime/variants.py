"""Compiled variants of one specialization, one per set of values of the globals its kernel
read, each usable while its guards hold (``tilevm.frontend.scope``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tilevm.frontend.scope import Guard, Reads, guards_hold
from tilevm.ir.nodes import KernelIR

# Variants kept per specialization, newest first: a global switched back and forth does not
# compile each time.
MAX_VARIANTS = 4


@dataclass(frozen=True)
class Translation:
    """A specialization's VM IR, the names it read outside the kernel, and the guards that say
    whether it still is the kernel's program."""

    ir: KernelIR
    reads: Reads
    guards: tuple[Guard, ...]


def holding(variants: Iterable[Any]) -> Any:
    """The newest variant (anything with ``guards``) whose guards hold, or None."""
    for variant in variants:
        if guards_hold(variant.guards):
            return variant
    return None


def remember(store: dict[tuple, list], key: tuple, variant: Any) -> None:
    """Keep ``variant`` first among ``key``'s."""
    variants = store.setdefault(key, [])
    variants.insert(0, variant)
    del variants[MAX_VARIANTS:]


__all__ = ["MAX_VARIANTS", "Translation", "holding", "remember"]
