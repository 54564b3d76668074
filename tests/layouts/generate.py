"""Random register layouts for the law tests: products of primitives, and arbitrary mode tables
(which reach layouts no product of primitives can)."""

from __future__ import annotations

import numpy as np

from tilevm.layouts import (
    RegisterLayout,
    column_local,
    column_spatial,
    local,
    register_layout,
    replicate,
    spatial,
)

PRIMITIVES = (local, spatial, column_local, column_spatial)


def random_primitive_product(
    rng: np.random.Generator, rank: int, factors: int = 3
) -> RegisterLayout:
    layout = local(*([1] * rank))
    for _ in range(factors):
        if rng.random() < 0.15:
            layout = layout * replicate(int(rng.choice([2, 3])), rank)
            continue
        make = PRIMITIVES[int(rng.integers(len(PRIMITIVES)))]
        layout = layout * make(*(int(n) for n in rng.choice([1, 1, 2, 3, 4], rank)))
    return layout


def random_mode_table(rng: np.random.Generator, rank: int) -> RegisterLayout:
    """Split each dimension into 1-3 random factors and deal all modes, plus maybe a replication
    factor, into the spatial and local lists in random order."""
    modes = [
        [int(n) for n in rng.choice([1, 2, 2, 3, 4], int(rng.integers(1, 4)))] for _ in range(rank)
    ]
    count = sum(len(m) for m in modes)
    ids = [int(i) for i in rng.permutation(count)]
    cut = int(rng.integers(0, count + 1))
    spatial_ids, local_ids = ids[:cut], ids[cut:]
    if rng.random() < 0.3:
        spatial_ids.insert(int(rng.integers(0, len(spatial_ids) + 1)), -int(rng.choice([2, 3])))
    shape = [int(np.prod(m)) for m in modes]
    return register_layout(shape, modes, spatial_ids, local_ids)


def random_layout(
    rng: np.random.Generator, rank: int | None = None, limit: int = 512
) -> RegisterLayout:
    """A random layout with at most ``limit`` (thread, slot) pairs, so products of three stay
    small enough to enumerate."""
    rank = int(rng.integers(1, 4)) if rank is None else rank
    while True:
        if rng.random() < 0.5:
            layout = random_primitive_product(rng, rank, int(rng.integers(1, 4)))
        else:
            layout = random_mode_table(rng, rank)
        if layout.num_threads * layout.local_size <= limit:
            return layout
