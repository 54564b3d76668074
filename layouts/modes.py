"""Modes: the factored form every register layout is stored in, and its normal form.

A layout of shape ``S`` over ``T`` threads with ``R`` slots per thread is described by

* ``modes``: each dimension ``d`` split into factors (modes), most significant first, whose
  product is ``S[d]``; modes are numbered across dimensions in that order;
* ``spatial``: mode ids whose digits make up the thread index, most significant first; an entry
  ``-k`` is a replication factor: ``k`` thread digits that do not move the index;
* ``local``: mode ids whose digits make up the slot index, most significant first.

For example ``local(2, 1).spatial(4, 8)`` (shape 8x8, 32 threads, 2 slots)::

    dim 0 = [2, 4]  (modes 0, 1)      spatial = [1, 2]   thread = 8 * digit(1) + digit(2)
    dim 1 = [8]     (mode 2)          local   = [0]      slot   = digit(0)

The normal form drops size-1 modes and merges two modes that are adjacent (in that order) both in
their dimension and in the spatial or local list, and adjacent replication entries. What is left
is determined by the map ``(thread, slot) -> index`` alone, so equal maps have equal normal forms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

Canonical = tuple[tuple[int, ...], tuple[tuple[int, ...], ...], tuple[int, ...], tuple[int, ...]]


class CutError(Exception):
    """A sequence of factors cannot be split so that its tail has the requested product."""


@dataclass
class ModeTable:
    """A mutable working copy of a layout's modes, for the algebra to split and regroup."""

    shape: list[int]
    size: list[int]  # size of each mode id
    dims: list[list[int]]  # per dimension: mode ids, most significant first
    spatial: list[int]
    local: list[int]
    parent: dict[int, int] = field(default_factory=dict)  # mode made by split -> split mode

    @classmethod
    def build(
        cls,
        shape: Sequence[int],
        modes: Sequence[Sequence[int]],
        spatial: Sequence[int],
        local: Sequence[int],
    ) -> ModeTable:
        size: list[int] = []
        dims: list[list[int]] = []
        for dim_modes in modes:
            dims.append(list(range(len(size), len(size) + len(dim_modes))))
            size.extend(dim_modes)
        return cls(list(shape), size, dims, list(spatial), list(local))

    def entry_size(self, entry: int) -> int:
        return -entry if entry < 0 else self.size[entry]

    def dim_of(self, mode: int) -> int:
        return next(d for d, ids in enumerate(self.dims) if mode in ids)

    def split(self, mode: int, low: int) -> int:
        """Split ``mode`` into (high, low) factors: the new low mode goes right after it in its
        dimension and in its spatial/local list. The map is unchanged. Returns the new id."""
        new = len(self.size)
        self.parent[new] = mode
        self.size.append(low)
        self.size[mode] //= low
        for seq in (self.dims[self.dim_of(mode)], self.spatial, self.local):
            if mode in seq:
                seq.insert(seq.index(mode) + 1, new)
        return new

    def cut_tail(self, seq: list[int], target: int) -> int:
        """Split entries of ``seq`` (a list held by this table) so that its last entries multiply
        to exactly ``target``; return how many entries that tail has."""
        acc, count = 1, 0
        while acc < target:
            if count == len(seq):
                raise CutError(f"product {acc} of all factors is below {target}")
            pos = len(seq) - 1 - count
            entry = seq[pos]
            size = self.entry_size(entry)
            if acc * size <= target:
                acc *= size
            else:
                low = target // acc
                if target % acc or size % low:
                    raise CutError(f"a factor of {size} cannot be split at {target // acc}")
                if entry < 0:
                    seq[pos : pos + 1] = [-(size // low), -low]
                else:
                    self.split(entry, low)
                acc = target
            count += 1
        if acc != target:
            raise CutError(f"factors multiply to {acc}, not {target}")
        return count

    def canonical(self) -> Canonical:
        return canonicalize(self.shape, self.size, self.dims, self.spatial, self.local)


def canonicalize(
    shape: Sequence[int],
    size: Sequence[int],
    dims: Sequence[Sequence[int]],
    spatial: Sequence[int],
    local: Sequence[int],
) -> Canonical:
    """Normal form: no unit modes, maximal merges, modes renumbered in dimension order."""
    size = list(size)
    dims = [[m for m in ids if size[m] != 1] for ids in dims]
    spatial = [e for e in spatial if (e < 0 and e != -1) or (e >= 0 and size[e] != 1)]
    local = [e for e in local if size[e] != 1]
    changed = True
    while changed:
        changed = False
        for seq in (spatial, local):
            for i in range(len(seq) - 1):
                a, b = seq[i], seq[i + 1]
                if a < 0 and b < 0:
                    seq[i : i + 2] = [a * -b]
                elif a >= 0 and b >= 0 and _adjacent_in_dim(dims, a, b):
                    size[a] *= size[b]
                    seq.pop(i + 1)
                    next(ids for ids in dims if b in ids).remove(b)
                else:
                    continue
                changed = True
                break
    order = [m for ids in dims for m in ids]
    renumber = {old: new for new, old in enumerate(order)}
    return (
        tuple(shape),
        tuple(tuple(size[m] for m in ids) for ids in dims),
        tuple(e if e < 0 else renumber[e] for e in spatial),
        tuple(renumber[e] for e in local),
    )


def _adjacent_in_dim(dims: Sequence[Sequence[int]], a: int, b: int) -> bool:
    for ids in dims:
        if a in ids:
            i = list(ids).index(a)
            return i + 1 < len(ids) and ids[i + 1] == b
    return False
