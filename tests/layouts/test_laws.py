"""The layout algebra's defining properties, checked by enumerating every (thread, slot)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import tilevm.layouts as tl
from tests.layouts.generate import random_layout, random_mode_table
from tilevm.layouts import RegisterLayout, divide, local, register_layout, spatial

TRIALS = 300


def full_map(layout: RegisterLayout) -> np.ndarray:
    return layout.indices()


def composed_map(f: RegisterLayout, g: RegisterLayout) -> np.ndarray:
    """The definition of f * g, evaluated point by point from f's and g's own maps."""
    t = np.arange(f.num_threads * g.num_threads).reshape(-1, 1)
    i = np.arange(f.local_size * g.local_size).reshape(1, -1)
    fm, gm = full_map(f), full_map(g)
    tg, rg = g.num_threads, g.local_size
    return fm[t // tg, i // rg] * np.array(g.shape) + gm[t % tg, i % rg]


def test_composition_follows_its_definition(rng: np.random.Generator) -> None:
    for _ in range(TRIALS):
        rank = int(rng.integers(1, 4))
        f, g = random_layout(rng, rank), random_layout(rng, rank)
        h = f * g
        assert h.shape == tuple(a * b for a, b in zip(f.shape, g.shape))
        assert np.array_equal(full_map(h), composed_map(f, g))


def test_composition_is_associative(rng: np.random.Generator) -> None:
    for _ in range(TRIALS):
        rank = int(rng.integers(1, 4))
        f, g, h = (random_layout(rng, rank) for _ in range(3))
        left, right = (f * g) * h, f * (g * h)
        assert left == right
        assert np.array_equal(full_map(left), full_map(right))


def test_dividing_a_product_by_its_right_factor_gives_the_left(rng: np.random.Generator) -> None:
    for _ in range(TRIALS):
        rank = int(rng.integers(1, 4))
        f, g = random_layout(rng, rank), random_layout(rng, rank)
        assert (f * g) / g == f
        assert tl.divisible(f * g, g)


def test_every_successful_division_multiplies_back(rng: np.random.Generator) -> None:
    successes = 0
    for _ in range(TRIALS * 3):
        rank = int(rng.integers(1, 3))
        h, g = random_layout(rng, rank), random_layout(rng, rank)
        if tl.divisible(h, g):
            successes += 1
            assert divide(h, g) * g == h
        else:
            with pytest.raises(tl.LayoutDivisionError):
                divide(h, g)
    assert successes > 10  # the generator does produce divisible pairs


SPLITS = {
    (4, 4): ([[4], [2, 2]], [[4], [2, 2]]),
    (2, 6): ([[2]], [[6], [2, 3], [3, 2]]),
    (8,): ([[8], [2, 4], [4, 2], [2, 2, 2]],),
}


@pytest.mark.parametrize("shape", list(SPLITS), ids=str)
def test_normal_form_equality_is_map_equality_over_a_whole_family(shape: tuple[int, ...]) -> None:
    """Every layout of a tile built from every split of its dimensions into factors, every
    dealing of the factors to threads and slots, and an optional replication factor anywhere:
    layouts with the same map must be equal (and hash alike), layouts with different maps not."""
    by_map: dict[tuple[int, int, bytes], set[RegisterLayout]] = {}
    count = 0
    for splits in itertools.product(*SPLITS[shape]):
        modes = list(splits)
        n = sum(len(m) for m in modes)
        for perm in itertools.permutations(range(n)):
            for cut in range(n + 1):
                spatial_ids, local_ids = list(perm[:cut]), list(perm[cut:])
                for rep in [None, *range(len(spatial_ids) + 1)]:
                    entries = list(spatial_ids)
                    if rep is not None:
                        entries.insert(rep, -2)
                    layout = register_layout(shape, modes, entries, local_ids)
                    key = (layout.num_threads, layout.local_size, full_map(layout).tobytes())
                    by_map.setdefault(key, set()).add(layout)
                    count += 1
    assert count > 100
    for layouts in by_map.values():
        assert len(layouts) == 1  # same map -> same normal form (== and hash agree)
    assert len({next(iter(v)) for v in by_map.values()}) == len(by_map)  # different maps differ


def split_mode(layout: RegisterLayout, mode: int) -> RegisterLayout:
    """Rebuild ``layout`` with factor ``mode`` split into (size / 2, 2), consistently in its
    dimension and in its spatial/local list."""
    new_modes, renumber, next_id, low_id = [], {}, 0, -1
    for dim in layout.modes:
        row = []
        for size in dim:
            renumber[len(renumber)] = next_id
            if len(renumber) - 1 == mode:
                row += [size // 2, 2]
                low_id = next_id + 1
                next_id += 2
            else:
                row.append(size)
                next_id += 1
        new_modes.append(row)

    def remap(entries: tuple[int, ...]) -> list[int]:
        out = []
        for e in entries:
            out.append(e if e < 0 else renumber[e])
            if e == mode:
                out.append(low_id)
        return out

    return register_layout(
        layout.shape, new_modes, remap(layout.spatial_modes), remap(layout.local_modes)
    )


def test_refining_modes_never_changes_the_layout(rng: np.random.Generator) -> None:
    """Splitting a factor in two, consistently in its dimension and its list, keeps the map."""
    refined_any = False
    for _ in range(TRIALS):
        layout = random_mode_table(rng, int(rng.integers(1, 4)))
        sizes = layout.mode_sizes
        splittable = [m for m, s in enumerate(sizes) if s % 2 == 0 and s > 2]
        if not splittable:
            continue
        refined = split_mode(layout, int(rng.choice(splittable)))
        refined_any = True
        assert refined == layout
        assert np.array_equal(full_map(refined), full_map(layout))
    assert refined_any


def test_every_index_is_covered_replication_times(rng: np.random.Generator) -> None:
    for _ in range(TRIALS):
        layout = random_layout(rng)
        flat = np.ravel_multi_index(tuple(np.moveaxis(full_map(layout), -1, 0)), layout.shape)
        counts = np.bincount(flat.reshape(-1), minlength=layout.size)
        assert (counts == layout.replication).all()
        assert layout.num_threads * layout.local_size == layout.size * layout.replication


def test_owners_lists_exactly_the_holders(rng: np.random.Generator) -> None:
    for _ in range(50):
        layout = random_layout(rng)
        fm = full_map(layout)
        expected: dict[tuple[int, ...], list[tuple[int, int]]] = {}
        for t in range(layout.num_threads):
            for i in range(layout.local_size):
                expected.setdefault(tuple(int(x) for x in fm[t, i]), []).append((t, i))
        for index, holders in expected.items():
            assert layout.owners(index) == sorted(holders)
            t, i = holders[0]
            assert layout(t, i) == index


def test_primitives_follow_their_definitions() -> None:
    f = spatial(3, 4)
    assert [f(t, 0) for t in range(12)] == [(t // 4, t % 4) for t in range(12)]
    g = tl.column_spatial(3, 4)
    assert [g(t, 0) for t in range(12)] == [(t % 3, t // 3) for t in range(12)]
    h = local(3, 4)
    assert [h(0, i) for i in range(12)] == [(i // 4, i % 4) for i in range(12)]
    k = tl.column_local(3, 4)
    assert [k(0, i) for i in range(12)] == [(i % 3, i // 3) for i in range(12)]
    assert (f.num_threads, f.local_size, h.num_threads, h.local_size) == (12, 1, 1, 12)


def test_map_accepts_arrays() -> None:
    f = local(2, 1).spatial(4, 8)
    rows, cols = f(np.arange(32), np.ones(32, dtype=int))
    assert rows.tolist() == [4 + t // 8 for t in range(32)] and cols.tolist() == [
        t % 8 for t in range(32)
    ]
