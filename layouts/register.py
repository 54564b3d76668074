"""Register layouts: how a tile is spread over a block's threads and each thread's slots.

A ``RegisterLayout`` is the map ``f(thread, slot) -> index`` of a tile of shape ``S`` held by ``T``
threads with ``R`` slots (registers) each. It is stored in normal form (see ``modes.py``), so ``==``
compares maps. The algebra:

* composition ``f * g``: ``h(t, i) = f(t // T_g, i // R_g) * S_g + g(t % T_g, i % R_g)``
  (element-wise over dimensions): ``g`` tiles inside each element of ``f``;
* division ``h / g``: the ``f`` with ``f * g == h``, or ``LayoutDivisionError``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from tilevm.layouts.errors import LayoutDivisionError, LayoutError
from tilevm.layouts.modes import Canonical, CutError, ModeTable
from tilevm.layouts.printing import expression, grid


class RegisterLayout:
    """A register layout in normal form. Build one with ``local``, ``spatial``, ... and ``*``."""

    __slots__ = ("_key", "_hash", "_counts")

    def __init__(
        self,
        shape: Sequence[int],
        modes: Sequence[Sequence[int]],
        spatial: Sequence[int],
        local: Sequence[int],
    ) -> None:
        _validate(shape, modes, spatial, local)
        self._set(ModeTable.build(shape, modes, spatial, local).canonical())

    @classmethod
    def _from_table(cls, table: ModeTable) -> RegisterLayout:
        layout = cls.__new__(cls)
        layout._set(table.canonical())
        return layout

    def _set(self, key: Canonical) -> None:
        self._key = key
        self._hash = hash(key)
        sizes = [s for dim in key[1] for s in dim]
        threads = int(np.prod([-e if e < 0 else sizes[e] for e in key[2]], dtype=np.int64))
        slots = int(np.prod([sizes[e] for e in key[3]], dtype=np.int64))
        replicas = int(np.prod([-e for e in key[2] if e < 0], dtype=np.int64))
        self._counts = (threads, slots, replicas)

    def _table(self) -> ModeTable:
        return ModeTable.build(*self._key)

    # ----- structure --------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self._key[0]

    @property
    def modes(self) -> tuple[tuple[int, ...], ...]:
        """Per dimension, its factors (most significant first) in normal form."""
        return self._key[1]

    @property
    def spatial_modes(self) -> tuple[int, ...]:
        return self._key[2]

    @property
    def local_modes(self) -> tuple[int, ...]:
        return self._key[3]

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of elements of the tile."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def mode_sizes(self) -> tuple[int, ...]:
        return tuple(s for dim in self.modes for s in dim)

    @property
    def num_threads(self) -> int:
        return self._counts[0]

    @property
    def local_size(self) -> int:
        """Slots (registers' worth of elements) each thread holds."""
        return self._counts[1]

    @property
    def replication(self) -> int:
        """How many (thread, slot) pairs hold each element."""
        return self._counts[2]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RegisterLayout) and self._key == other._key

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return expression(self._key)

    # ----- the map ----------------------------------------------------------------------------
    def __call__(self, thread, slot):
        """The logical index held by ``thread`` in ``slot`` (ints, or numpy arrays broadcast)."""
        t, s = np.asarray(thread), np.asarray(slot)
        if (
            (t < 0).any()
            or (t >= self.num_threads).any()
            or (s < 0).any()
            or (s >= self.local_size).any()
        ):
            raise LayoutError(
                "thread or slot out of range",
                expected=f"0 <= thread < {self.num_threads} and 0 <= slot < {self.local_size}",
                found=f"thread={thread!r}, slot={slot!r}",
                code="layout-range",
            )
        index = self._map(t.astype(np.int64), s.astype(np.int64))
        if t.ndim == 0 and s.ndim == 0:
            return tuple(int(i) for i in index)
        return index

    def _map(self, thread: np.ndarray, slot: np.ndarray) -> tuple[np.ndarray, ...]:
        sizes = self.mode_sizes
        digits: dict[int, np.ndarray] = {}
        for value, entries in ((thread, self.spatial_modes), (slot, self.local_modes)):
            for entry in reversed(entries):
                radix = -entry if entry < 0 else sizes[entry]
                if entry >= 0:
                    digits[entry] = value % radix
                value = value // radix
        index = []
        mode = 0
        for dim in self.modes:
            coord = np.zeros(np.broadcast(thread, slot).shape, dtype=np.int64)
            for radix in dim:
                coord = coord * radix + digits[mode]
                mode += 1
            index.append(coord)
        return tuple(index)

    def indices(self) -> np.ndarray:
        """The whole map as an array ``[num_threads, local_size, rank]``."""
        t = np.arange(self.num_threads).reshape(-1, 1)
        s = np.arange(self.local_size).reshape(1, -1)
        return (
            np.stack(np.broadcast_arrays(*self._map(t, s)), axis=-1)
            if self.rank
            else np.zeros((self.num_threads, self.local_size, 0), dtype=np.int64)
        )

    def owners(self, index: Sequence[int]) -> list[tuple[int, int]]:
        """Every ``(thread, slot)`` that holds ``index``, sorted by thread."""
        index = tuple(int(i) for i in np.atleast_1d(index))
        if len(index) != self.rank or any(not 0 <= i < n for i, n in zip(index, self.shape)):
            raise LayoutError(
                "index outside the layout's shape",
                expected=f"{self.rank} coordinates within {list(self.shape)}",
                found=str(list(index)),
                code="layout-range",
            )
        sizes = self.mode_sizes
        digits: dict[int, int] = {}
        mode = sum(len(dim) for dim in self.modes)
        for coord, dim in zip(reversed(index), reversed(self.modes)):
            for radix in reversed(dim):
                mode -= 1
                digits[mode] = coord % radix
                coord //= radix
        slot = 0
        for entry in self.local_modes:
            slot = slot * sizes[entry] + digits[entry]
        choices = [range(-e) if e < 0 else (digits[e],) for e in self.spatial_modes]
        radices = [-e if e < 0 else sizes[e] for e in self.spatial_modes]
        threads = []
        for combo in itertools.product(*choices):
            t = 0
            for digit, radix in zip(combo, radices):
                t = t * radix + digit
            threads.append(t)
        return [(t, slot) for t in sorted(threads)]

    # ----- algebra ----------------------------------------------------------------------------
    def __mul__(self, other: RegisterLayout) -> RegisterLayout:
        return compose(self, other)

    def __truediv__(self, other: RegisterLayout) -> RegisterLayout:
        return divide(self, other)

    def local(self, *shape: int) -> RegisterLayout:
        """``self * local(*shape)``: chain a primitive."""
        return self * primitive("local", shape)

    def spatial(self, *shape: int) -> RegisterLayout:
        return self * primitive("spatial", shape)

    def column_local(self, *shape: int) -> RegisterLayout:
        return self * primitive("column_local", shape)

    def column_spatial(self, *shape: int) -> RegisterLayout:
        return self * primitive("column_spatial", shape)

    def replicate(self, count: int) -> RegisterLayout:
        """``self * replicate(count, rank)``: every element held by ``count`` times more threads."""
        return self * replicate(count, self.rank)

    def table(self, max_owners: int = 4) -> str:
        """An ASCII grid of the tile: each cell ``t<thread>:<slot>`` (several threads where
        the element is replicated)."""
        return grid(self.shape, self.indices(), max_owners)


# ----- constructors ---------------------------------------------------------------------------

PRIMITIVES = ("local", "spatial", "column_local", "column_spatial")


def primitive(kind: str, shape: Sequence[int]) -> RegisterLayout:
    """``local``: one thread holds the whole shape, slots row-major; ``spatial``: one element per
    thread, threads row-major; the ``column_`` forms order slots / threads column-major."""
    if kind not in PRIMITIVES:
        raise LayoutError(
            "unknown primitive layout",
            expected=" | ".join(PRIMITIVES),
            found=repr(kind),
            code="layout-args",
        )
    shape = _check_shape(shape, kind)
    order = list(range(len(shape)))
    if kind.startswith("column_"):
        order.reverse()
    entries = tuple(order)
    modes = [(n,) for n in shape]
    if kind.endswith("local"):
        return RegisterLayout(shape, modes, (), entries)
    return RegisterLayout(shape, modes, entries, ())


def replicate(count: int, rank: int = 1) -> RegisterLayout:
    """A tile of ``rank`` unit dimensions held by ``count`` threads: composing with it
    multiplies the replication of every element."""
    if not isinstance(count, (int, np.integer)) or count < 1:
        raise LayoutError(
            "replication count must be a positive int",
            expected="an int >= 1",
            found=repr(count),
            code="layout-args",
        )
    return RegisterLayout((1,) * rank, [()] * rank, (-int(count),) if count > 1 else (), ())


def compose(f: RegisterLayout, g: RegisterLayout) -> RegisterLayout:
    """``f * g``: ``h(t, i) = f(t // T_g, i // R_g) * S_g + g(t % T_g, i % R_g)``."""
    _check_same_rank(f, g, "*")
    ft, gt = f._table(), g._table()
    offset = len(ft.size)
    shift = lambda e: e if e < 0 else e + offset  # noqa: E731 - renumber g's modes after f's
    table = ModeTable(
        [a * b for a, b in zip(f.shape, g.shape)],
        ft.size + gt.size,
        [fd + [m + offset for m in gd] for fd, gd in zip(ft.dims, gt.dims)],
        ft.spatial + [shift(e) for e in gt.spatial],
        ft.local + [shift(e) for e in gt.local],
    )
    return RegisterLayout._from_table(table)


def divide(h: RegisterLayout, g: RegisterLayout) -> RegisterLayout:
    """``h / g``: the layout ``f`` with ``f * g == h``.

    Cut ``h``'s factors at ``g``'s size in every dimension, at ``T_g`` in the thread list and at
    ``R_g`` in the slot list; ``f`` exists exactly when the three cuts agree on which factors
    are ``g``'s and those factors form ``g``.
    """
    _check_same_rank(h, g, "/")
    why = _division_obstacle(h, g)
    if isinstance(why, RegisterLayout):
        return why
    raise LayoutDivisionError(
        f"{h!r} is not divisible by {g!r}",
        expected=f"a layout f with f * {g!r} == {h!r}",
        found=why,
        hint="the divisor must be the innermost factor of every dimension, of the thread index "
        "and of the slot index; compare the two with .table()",
    )


def divisible(h: RegisterLayout, g: RegisterLayout) -> bool:
    return h.rank == g.rank and isinstance(_division_obstacle(h, g), RegisterLayout)


def _division_obstacle(h: RegisterLayout, g: RegisterLayout) -> RegisterLayout | str:
    """The quotient, or a sentence saying why there is none."""
    for d, (a, b) in enumerate(zip(h.shape, g.shape)):
        if a % b:
            return f"dimension {d}: {a} is not a multiple of {b}"
    if h.num_threads % g.num_threads or h.local_size % g.local_size:
        return (
            f"{h.num_threads} threads x {h.local_size} slots is not a multiple of "
            f"{g.num_threads} threads x {g.local_size} slots"
        )
    table = h._table()
    inner: set[int] = set()
    try:
        for d, ids in enumerate(table.dims):
            count = table.cut_tail(ids, g.shape[d])
            inner.update(ids[len(ids) - count :])
        n_spatial = _cut_list(table, table.spatial, g.num_threads, inner)
        n_local = _cut_list(table, table.local, g.local_size, inner)
    except CutError as exc:
        return str(exc)
    tail_spatial = table.spatial[len(table.spatial) - n_spatial :]
    tail_local = table.local[len(table.local) - n_local :]
    in_tails = {e for e in tail_spatial + tail_local if e >= 0}
    if in_tails != inner:
        return "the divisor's elements are not held by the innermost threads and slots"
    quotient, rest = _split_table(table, inner, n_spatial, n_local, g.shape)
    if RegisterLayout._from_table(rest) != g:
        return f"the innermost part of the dividend is {RegisterLayout._from_table(rest)!r}"
    return RegisterLayout._from_table(quotient)


def _cut_list(table: ModeTable, seq: list[int], target: int, inner: set[int]) -> int:
    """Cut a thread or slot list; halves of a split mode stay on their parent's side."""
    before = len(table.size)
    count = table.cut_tail(seq, target)
    for new in range(before, len(table.size)):
        if table.parent[new] in inner:
            inner.add(new)
    return count


def _split_table(
    table: ModeTable, inner: set[int], n_spatial: int, n_local: int, inner_shape: Sequence[int]
) -> tuple[ModeTable, ModeTable]:
    outer_shape = [a // b for a, b in zip(table.shape, inner_shape)]
    outer = ModeTable(
        outer_shape,
        table.size,
        [[m for m in ids if m not in inner] for ids in table.dims],
        table.spatial[: len(table.spatial) - n_spatial],
        table.local[: len(table.local) - n_local],
    )
    rest = ModeTable(
        list(inner_shape),
        table.size,
        [[m for m in ids if m in inner] for ids in table.dims],
        table.spatial[len(table.spatial) - n_spatial :],
        table.local[len(table.local) - n_local :],
    )
    return outer, rest


# ----- validation -----------------------------------------------------------------------------


def _check_shape(shape: Sequence[int], what: str) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if not shape or not all(isinstance(n, (int, np.integer)) and n >= 1 for n in shape):
        raise LayoutError(
            f"bad shape for {what}",
            expected="one or more positive ints, e.g. spatial(4, 8)",
            found=repr(tuple(shape)),
            code="layout-args",
        )
    return tuple(int(n) for n in shape)


def _check_same_rank(a: RegisterLayout, b: RegisterLayout, op: str) -> None:
    if not isinstance(a, RegisterLayout) or not isinstance(b, RegisterLayout):
        raise LayoutError(
            f"'{op}' combines two register layouts",
            expected="RegisterLayout operands",
            found=f"{type(a).__name__} {op} {type(b).__name__}",
            code="layout-args",
        )
    if a.rank != b.rank:
        raise LayoutError(
            f"'{op}' needs layouts of the same rank",
            expected=f"rank {a.rank} on both sides",
            found=f"shapes {list(a.shape)} and {list(b.shape)}",
            hint="add unit dimensions, e.g. spatial(4, 1) instead of spatial(4)",
            code="layout-rank",
        )


def _validate(
    shape: Sequence[int],
    modes: Sequence[Sequence[int]],
    spatial: Sequence[int],
    local: Sequence[int],
) -> None:
    def fail(message: str, expected: str, found: str) -> LayoutError:
        return LayoutError(message, expected=expected, found=found, code="layout-args")

    shape = _check_shape(shape, "register_layout") if len(shape) else ()
    if len(modes) != len(shape):
        raise fail("one list of modes per dimension", f"{len(shape)} lists", f"{len(modes)}")
    for d, (n, dim) in enumerate(zip(shape, modes)):
        if (
            any(not isinstance(s, (int, np.integer)) or s < 1 for s in dim)
            or int(np.prod(dim)) != n
        ):
            raise fail(
                f"modes of dimension {d} must multiply to {n}",
                f"positive factors of {n}",
                str(list(dim)),
            )
    count = sum(len(dim) for dim in modes)
    ids = [e for e in spatial if e >= 0] + list(local)
    if sorted(ids) != list(range(count)):
        raise fail(
            "every mode must appear exactly once in spatial or local",
            f"the ids 0..{count - 1} once each",
            f"spatial={list(spatial)}, local={list(local)}",
        )
