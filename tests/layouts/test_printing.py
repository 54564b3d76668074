"""Layouts print as expressions that rebuild them, and as grids people can read."""

from __future__ import annotations

import numpy as np

import tilevm.layouts as tl
from tests.layouts.generate import random_layout
from tilevm.layouts import column_local, local, spatial

NAMESPACE = {name: getattr(tl, name) for name in tl.__all__}


def test_expressions_rebuild_the_layout(rng: np.random.Generator) -> None:
    for _ in range(300):
        layout = random_layout(rng)
        text = repr(layout)
        assert eval(text, NAMESPACE) == layout, text  # noqa: S307 - our own printer's output


def test_equal_layouts_print_alike() -> None:
    assert repr(local(2, 1) * spatial(4, 8)) == "local(2, 1).spatial(4, 8)"
    assert repr(spatial(2, 1) * spatial(2, 8)) == "spatial(4, 8)"
    assert (
        repr(column_local(2, 2).spatial(8, 4).local(1, 2))
        == "column_local(2, 2).spatial(8, 4).local(1, 2)"
    )
    assert repr(tl.replicate(2, 2) * spatial(4, 8)) == "replicate(2, rank=2).spatial(4, 8)"
    odd = tl.register_layout([4, 4], [[2, 2], [2, 2]], [1, 2], [3, 0])
    assert repr(odd).startswith("register_layout(")


def test_table_shows_thread_and_slot_per_cell() -> None:
    assert local(1, 2).spatial(2, 2).table() == "\n".join(
        [
            "     0    1    2    3",
            "0 t0:0 t1:0 t0:1 t1:1",
            "1 t2:0 t3:0 t2:1 t3:1",
        ]
    )


def test_table_lists_replicas_and_handles_other_ranks() -> None:
    r = spatial(2).replicate(3)
    assert r.table() == "         0        1\n0 t0,1,2:0 t3,4,5:0"
    wide = spatial(1).replicate(8)
    assert "..(8)" in wide.table()
    cube = spatial(2, 2, 2)
    text = cube.table()
    assert "[0, :, :]" in text and "[1, :, :]" in text and "t7:0" in text


def test_shared_layout_prints_and_tables() -> None:
    s = tl.shared_layout([2, 4]).swizzled(1, 0, 2)
    assert repr(s) == "shared_layout([2, 4], strides=[4, 1]).swizzled(1, 0, 2)"
    assert s.table() == "0 1 2 3\n5 4 7 6"
