"""The register layouts of the quantized linear: they define the packed weight format.

The kernels and the host-side packer read the same layouts, so what a kernel loads is, by
construction, what the packer wrote. Everything is built per *unit*: 16 weight rows (``n``) by
``KC`` input columns (``k``: 128 for 2, 4, 6 and 8 bits, 256 for 1, 3, 5 and 7 bits, so a lane's
share is a whole number of 16-byte pieces), held by one group of 32 lanes the way a tensor-core
``m16n8k16`` fragment holds it::

    lane = 4 r + l                 rows n = 8 rh + r                (rh: the row half)
    per lane and unit              k_frag = 16 t + 8 kh + 2 l + e    (t: the k16 step)

A lane holds ``KC / 2`` weights: 2 rows x ``KC / 16`` steps x 4. Their *fields* (``b`` bits each,
one after the other in the lane's bit string) are ordered so that the pairs the tensor cores
read as one register (``e = 0, 1``) sit 16 bits apart in a 32-bit word where the width allows,
or close to it: the cast to f16 then turns two fields into a half2 with one and/or and one
packed add (``lowering/lower_cast.py``).

``k_frag`` is a label, not the column: activations are loaded with each lane holding runs of 8
consecutive columns (16-byte loads) and relabelled by a ``view``, and the weights are packed
under the same relabelling. Column ``k`` of a unit sits at fragment position ``sigma^-1(k)``
with ``sigma(16 t + 8 kh + 2 l + e) = 32 (t >> 1) + 8 l + 4 (t & 1) + 2 kh + e`` (it keeps every
aligned block of 32 columns together, so quantization groups of 32, 64 or 128 columns stay
groups of the fragment order). Digits are named; a layout is "which digits index which
dimension, which are threads, in which order slots walk them".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from tilevm.layouts import RegisterLayout, register_layout

LANES = 32
ROWS = 16  # weight rows of a unit (two m16n8k16 row halves of 8)


@dataclass(frozen=True)
class Unit:
    """The packed unit of a ``bits``-wide weight type."""

    bits: int

    @property
    def kc(self) -> int:
        """Columns per unit: a lane's bits are then a whole number of 16-byte pieces."""
        return 128 if self.bits % 2 == 0 else 256

    @property
    def steps(self) -> int:
        return self.kc // 16

    @property
    def fields(self) -> int:
        """Weights per lane."""
        return self.kc // 2

    @property
    def pieces(self) -> int:
        """16-byte pieces per lane."""
        return self.fields * self.bits // 128

    @property
    def words(self) -> int:
        """32-bit words of a unit (all lanes)."""
        return self.pieces * 4 * LANES

    @property
    def pair_weight(self) -> int:
        """How many fields apart the two weights of a register are (16 bits apart when the
        width divides 16; else the distance whose windows the cast shares best)."""
        return {1: 16, 2: 8, 3: 4, 4: 4, 5: 4, 6: 2, 7: 2, 8: 2}[self.bits]

    def t_digits(self) -> list[str]:
        """The step index as binary digits, most significant first."""
        return [f"t{i}" for i in reversed(range(self.steps.bit_length() - 1))]

    def field_digits(self) -> list[str]:
        """A lane's fields as digits, most significant first: the pair digit ``e`` weighs
        ``pair_weight`` fields."""
        t = self.t_digits()
        w = self.pair_weight
        if w == 2:
            hi, lo = [*t, "rh"], ["kh"]
        else:
            low_t = (w // 4).bit_length() - 1  # step digits below e
            hi, lo = t[: len(t) - low_t], ["rh", "kh", *t[len(t) - low_t :]]
        return [*hi, "e", *lo]


def _radix(name: str, extra: dict[str, int]) -> int:
    fixed = {"r": 8, "l": 4, "rh": 2, "kh": 2, "e": 2}
    return extra.get(name, fixed.get(name, 2))


def build(
    dims: Sequence[Sequence[str]],
    threads: Sequence[str],
    slots: Sequence[str],
    radix: dict[str, int] | None = None,
) -> RegisterLayout:
    """A layout from named digits: ``dims`` list each dimension's digits, most significant
    first; ``threads`` and ``slots`` list the digits of the thread and slot indices. A thread
    digit no dimension names replicates (those threads hold the same elements)."""
    radix = radix or {}
    keep = [[d for d in dim if _radix(d, radix) > 1] for dim in dims]
    index = {name: i for i, name in enumerate(d for dim in keep for d in dim)}
    shape = [int(np.prod([_radix(d, radix) for d in dim], dtype=np.int64)) for dim in keep]
    modes = [[_radix(d, radix) for d in dim] for dim in keep]
    spatial = [index[d] if d in index else -_radix(d, radix) for d in threads
               if _radix(d, radix) > 1]  # fmt: skip
    local = [index[d] for d in slots if d in index]
    return register_layout(shape, modes, spatial, local)


def _k_frag(unit: Unit, group: int) -> tuple[list[str], list[str]]:
    """The fragment-order column digits split into (group index, column within the group)."""
    t = unit.t_digits()
    per_group = max(group, 16) // 16  # steps per group
    top = len(t) - (per_group.bit_length() - 1)
    return t[:top], [*t[top:], "kh", "l", "e"]


def weight_words(unit: Unit, tiles: int, groups: int) -> RegisterLayout:
    """Packed words ``[tiles, groups_of_lanes, unit.words]`` as loaded: lane ``r, l`` takes its
    16-byte pieces, each piece of all 32 lanes contiguous (one coalesced 512-byte access)."""
    radix = {"rn": tiles, "s": groups, "p": unit.pieces, "wd": 4}
    return build([["rn"], ["s"], ["p", "r", "l", "wd"]], ["s", "r", "l"], ["rn", "p", "wd"], radix)


def weight_values(unit: Unit, tiles: int, groups: int, group: int) -> RegisterLayout:
    """The weights ``[groups_of_lanes, k_groups, 16 tiles, group]`` the words hold (fragment
    order along k; see the module docstring), each lane's slots in field order."""
    g, inner = _k_frag(unit, group)
    radix = {"rn": tiles, "s": groups}
    dims = [["s"], g, ["rn", "rh", "r"], inner]
    return build(dims, ["s", "r", "l"], ["rn", *unit.field_digits()], radix)


def activations(unit: Unit, rows: int, groups: int) -> RegisterLayout:
    """Activations ``[rows, groups_of_lanes * kc]`` as loaded: lane ``r, l`` holds rows
    ``r + 8 i`` and, in each aligned block of 32 columns, the 8 columns ``8 l ..`` (16 bytes)."""
    t = unit.t_digits()
    radix = {"rm": rows // 8, "s": groups}
    dims = [["rm", "r"], ["s", *t[:-1], "l", t[-1], "kh", "e"]]
    return build(dims, ["s", "r", "l"], ["rm", *t, "kh", "e"], radix)


def activations_relabelled(unit: Unit, rows: int, groups: int, group: int) -> RegisterLayout:
    """The same registers as ``activations``, labelled in fragment order as the tensor cores'
    B operand ``[groups_of_lanes, k_groups, group, rows]``."""
    g, inner = _k_frag(unit, group)
    t = unit.t_digits()
    radix = {"rm": rows // 8, "s": groups}
    dims = [["s"], g, inner, ["rm", "r"]]
    return build(dims, ["s", "r", "l"], ["rm", *t, "kh", "e"], radix)


def tile_words(unit: Unit, tiles: int, groups: int) -> RegisterLayout:
    """Packed words ``[tiles, 1, unit.words]`` of one chunk, the tiles split over the groups of
    lanes (prefill: the block's weight tiles, each dequantized by one warp)."""
    radix = {**_split(tiles, groups), "p": unit.pieces, "wd": 4}
    dims = [["s", "rn"], [], ["p", "r", "l", "wd"]]
    return build(dims, ["x", "s", "r", "l"], ["rn", "p", "wd"], radix)


def tile_values(unit: Unit, tiles: int, groups: int, group: int, fragment: bool) -> RegisterLayout:
    """The weights of ``tile_words`` as ``[k_groups, group, 16 tiles]`` (fragment order along
    k): slots in field order, or with ``fragment`` in fragment order (the two weights of a
    register next to each other)."""
    g, inner = _k_frag(unit, group)
    dims = [g, inner, ["s", "rn", "rh", "r"]]
    t = unit.t_digits()
    slots = unit.field_digits() if not fragment else [*t[:-1], "rh", t[-1], "kh", "e"]
    return build(dims, ["x", "s", "r", "l"], ["rn", *slots], _split(tiles, groups))


def tile_columns(unit: Unit, tiles: int, groups: int) -> RegisterLayout:
    """The registers of ``tile_values(fragment=True)`` labelled by the real columns, as
    ``[16 tiles, kc]``: each lane holds runs of 8 consecutive columns of its two rows."""
    t = unit.t_digits()
    dims = [["s", "rn", "rh", "r"], [*t[:-1], "l", t[-1], "kh", "e"]]
    slots = ["rn", *t[:-1], "rh", t[-1], "kh", "e"]
    return build(dims, ["x", "s", "r", "l"], slots, _split(tiles, groups))


def _split(tiles: int, groups: int) -> dict[str, int]:
    """Tiles over lane groups: ``s`` groups take ``rn`` tiles each; with more groups than
    tiles, ``x`` copies of each group do the same work (one of them stores it)."""
    used = min(tiles, groups)
    return {"x": groups // used, "s": used, "rn": tiles // used}


@cache
def sigma(bits: int) -> np.ndarray:
    """``sigma[k_frag]``: the column of a unit that fragment position ``k_frag`` holds."""
    unit = Unit(bits)
    phys = activations(unit, 8, 1)
    frag = activations_relabelled(unit, 8, 1, unit.kc)
    out = np.full(unit.kc, -1, dtype=np.int64)
    for thread in range(LANES):
        for slot in range(phys.local_size):
            _, k = phys(thread, slot)
            *_, k_frag, _ = frag(thread, slot)
            out[int(k_frag)] = int(k)
    assert (np.sort(out) == np.arange(unit.kc)).all()
    return out


@cache
def field_sources(bits: int) -> tuple[np.ndarray, np.ndarray]:
    """For lane ``lane`` and field ``f``: the row (0..15) and column (0..kc-1) of the unit the
    field holds, as two ``[32, fields]`` arrays."""
    unit = Unit(bits)
    values = weight_values(unit, 1, 1, unit.kc)
    rows = np.zeros((LANES, unit.fields), dtype=np.int64)
    cols = np.zeros((LANES, unit.fields), dtype=np.int64)
    frag_to_col = sigma(bits)
    for lane in range(LANES):
        for f in range(unit.fields):
            *_, n, k_frag = values(lane, f)
            rows[lane, f], cols[lane, f] = int(n), frag_to_col[int(k_frag)]
    return rows, cols


@cache
def word_positions(bits: int) -> np.ndarray:
    """``[32, words per lane]``: where each of a lane's words (in bit-string order) sits among
    the unit's words in memory."""
    unit = Unit(bits)
    words = weight_words(unit, 1, 1)
    out = np.zeros((LANES, words.local_size), dtype=np.int64)
    for lane in range(LANES):
        for j in range(words.local_size):
            *_, w = words(lane, j)
            out[lane, j] = int(w)
    return out
