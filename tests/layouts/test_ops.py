"""reduce, permute, reshape, flatten, concat: each checked point by point against its meaning."""

from __future__ import annotations

import numpy as np
import pytest

import tilevm.layouts as tl
from tests.layouts.generate import random_layout
from tilevm.layouts import concat, flatten, local, permute, reduce, reshape, spatial

TRIALS = 200


def held_by_thread(layout: tl.RegisterLayout) -> list[set[tuple[int, ...]]]:
    m = layout.indices()
    return [
        {tuple(int(x) for x in m[t, i]) for i in range(layout.local_size)}
        for t in range(layout.num_threads)
    ]


def project(index: tuple[int, ...], dims: list[int], keepdims: bool) -> tuple[int, ...]:
    """The coordinates of ``index`` that survive reducing over ``dims``."""
    if keepdims:
        return tuple(0 if d in dims else i for d, i in enumerate(index))
    return tuple(i for d, i in enumerate(index) if d not in dims)


def test_reduce_keeps_threads_and_drops_the_reduced_coordinates(rng: np.random.Generator) -> None:
    for _ in range(TRIALS):
        layout = random_layout(rng, int(rng.integers(2, 4)))
        dims = sorted(
            int(d)
            for d in rng.choice(layout.rank, int(rng.integers(1, layout.rank)), replace=False)
        )
        for keepdims in (False, True):
            reduced = reduce(layout, dims, keepdims=keepdims)
            assert reduced.num_threads == layout.num_threads
            expected = [
                {project(ix, dims, keepdims) for ix in held} for held in held_by_thread(layout)
            ]
            assert held_by_thread(reduced) == expected
            # no slot holds the same element twice
            assert reduced.local_size == len(expected[0])


def test_reduce_of_a_row_layout_replicates_across_the_row() -> None:
    f = local(2, 1).spatial(4, 8)
    r = reduce(f, [1])
    assert r == local(2).spatial(4).replicate(8)
    assert r.owners([5]) == [(t, 1) for t in range(8, 16)]
    assert reduce(spatial(4, 8), [0], keepdims=True).shape == (1, 8)


def test_permute_moves_coordinates(rng: np.random.Generator) -> None:
    for _ in range(TRIALS):
        layout = random_layout(rng, int(rng.integers(1, 4)))
        order = [int(d) for d in rng.permutation(layout.rank)]
        moved = permute(layout, order)
        assert moved.shape == tuple(layout.shape[d] for d in order)
        assert np.array_equal(moved.indices(), layout.indices()[..., order])
        assert permute(moved, list(np.argsort(order))) == layout


def test_transpose_of_the_mma_a_fragment() -> None:
    a = tl.atoms.MMA_M16N8K16_F16.a
    t = tl.transpose(a)
    for lane in range(32):
        for i in range(8):
            r, c = a(lane, i)
            assert t(lane, i) == (c, r)


def test_reshape_keeps_the_row_major_flat_index(rng: np.random.Generator) -> None:
    done = 0
    for _ in range(TRIALS):
        layout = random_layout(rng, int(rng.integers(1, 4)))
        size = layout.size
        divisors = [d for d in range(1, size + 1) if size % d == 0]
        a = int(rng.choice(divisors))
        new_shape = [a, size // a]
        flat_before = np.ravel_multi_index(
            tuple(np.moveaxis(layout.indices(), -1, 0)), layout.shape
        )
        try:
            reshaped = reshape(layout, new_shape)
        except tl.LayoutError:
            continue  # a factor straddles the new boundary: checked below that such cases raise
        done += 1
        flat_after = np.ravel_multi_index(tuple(np.moveaxis(reshaped.indices(), -1, 0)), new_shape)
        assert np.array_equal(flat_before, flat_after)
        assert reshape(reshaped, layout.shape) == layout
        assert flatten(layout) == flatten(reshaped)
    assert done > TRIALS // 2


def test_reshape_errors_name_the_problem() -> None:
    with pytest.raises(tl.LayoutError, match="keep the number of elements"):
        reshape(spatial(4, 8), [5, 6])
    with pytest.raises(tl.LayoutError, match="cannot reshape") as info:
        reshape(tl.register_layout([6], [[2, 3]], [1], [0]), [3, 2])
    assert info.value.hint


def test_concat_places_the_layouts_side_by_side(rng: np.random.Generator) -> None:
    for _ in range(TRIALS):
        a, b = (
            random_layout(rng, int(rng.integers(1, 3)), 64),
            random_layout(rng, int(rng.integers(1, 3)), 64),
        )
        c = concat(a, b)
        assert c.shape == a.shape + b.shape
        t = np.arange(c.num_threads).reshape(-1, 1)
        i = np.arange(c.local_size).reshape(1, -1)
        expected = np.concatenate(
            [
                a.indices()[t // b.num_threads, i // b.local_size],
                b.indices()[t % b.num_threads, i % b.local_size],
            ],
            axis=-1,
        )
        assert np.array_equal(c.indices(), expected)


def test_bad_arguments_raise_layout_errors() -> None:
    with pytest.raises(tl.LayoutError, match="same rank") as info:
        spatial(4, 8) * spatial(4)
    assert isinstance(info.value, ValueError) and info.value.hint
    with pytest.raises(tl.LayoutError, match="bad shape"):
        spatial(0, 4)
    with pytest.raises(tl.LayoutError, match="bad shape"):
        local()
    with pytest.raises(tl.LayoutError, match="permutation"):
        permute(spatial(4, 8), [0, 0])
    with pytest.raises(tl.LayoutError, match="bad dimensions"):
        reduce(spatial(4, 8), [2])
    with pytest.raises(tl.LayoutError, match="exactly once"):
        tl.register_layout([4], [[4]], [0], [0])
    with pytest.raises(tl.LayoutError, match="multiply"):
        tl.register_layout([4], [[3]], [0], [])
    with pytest.raises(tl.LayoutError, match="out of range"):
        spatial(4)(4, 0)
    with pytest.raises(tl.LayoutError, match="outside"):
        spatial(4).owners([4])
    with pytest.raises(tl.LayoutError, match="positive"):
        tl.replicate(0)


@pytest.mark.parametrize(
    ("h", "g", "why"),
    [
        (spatial(4, 8), tl.column_spatial(2, 2), "innermost"),
        (spatial(4, 8), spatial(8, 4), "not a multiple"),
        (spatial(4, 8), spatial(3, 1), "not a multiple"),
        (local(2, 1).spatial(4, 8), local(2, 1), "not"),
        (spatial(32), local(2), "threads"),
    ],
)
def test_division_failures_say_why(h: tl.RegisterLayout, g: tl.RegisterLayout, why: str) -> None:
    with pytest.raises(tl.LayoutDivisionError) as info:
        h / g
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, tl.LayoutError)
    assert why in err.found and err.expected and err.hint
    assert repr(h) in err.message and repr(g) in err.message
    assert not tl.divisible(h, g)
