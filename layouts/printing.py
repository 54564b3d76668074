"""How layouts look to people and agents: an expression that rebuilds them, and an ASCII grid.

The expression is read off the normal form, so equal layouts print the same text. Primitives are
peeled from the inside out: a run of trailing spatial (or local) entries, each the innermost mode
of a different dimension in increasing (or decreasing: ``column_``) dimension order, is the last
factor of a composition. What cannot be peeled prints as an explicit ``register_layout(...)``.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from tilevm.layouts.modes import Canonical, ModeTable


def expression(key: Canonical) -> str:
    table = ModeTable.build(*key)
    factors: list[str] = []
    while table.spatial or table.local:
        factor = _peel(table, "spatial") or _peel_replication(table) or _peel(table, "local")
        if factor is None:
            break
        factors.append(factor)
    factors.reverse()
    rank = len(key[0])
    if table.spatial or table.local:
        shape, modes, spatial, local = table.canonical()
        base = (
            f"register_layout(shape={list(shape)}, modes={[list(m) for m in modes]}, "
            f"spatial={list(spatial)}, local={list(local)})"
        )
    elif factors:
        base, factors = factors[0], factors[1:]
    else:
        base = f"local({', '.join(['1'] * rank)})"
    if base.startswith("replicate(") and rank > 1:
        base = base[:-1] + f", rank={rank})"
    return base + "".join("." + f for f in factors)


def _peel(table: ModeTable, which: str) -> str | None:
    seq = table.spatial if which == "spatial" else table.local
    run: list[int] = []
    for entry in reversed(seq):
        if entry < 0:
            break
        dim = table.dim_of(entry)
        if table.dims[dim][-1] != entry or any(table.dim_of(e) == dim for e in run):
            break
        dims = [dim] + [table.dim_of(e) for e in run]
        if len(dims) > 2 and (dims[0] < dims[1]) != (dims[1] < dims[2]):
            break
        run.insert(0, entry)
    if not run:
        return None
    dims = [table.dim_of(e) for e in run]
    shape = [1] * len(table.shape)
    for entry, dim in zip(run, dims):
        shape[dim] = table.size[entry]
        table.shape[dim] //= table.size[entry]
        table.dims[dim].pop()
    del seq[len(seq) - len(run) :]
    column = len(dims) > 1 and dims[0] > dims[1]
    return f"{'column_' if column else ''}{which}({', '.join(map(str, shape))})"


def _peel_replication(table: ModeTable) -> str | None:
    if not table.spatial or table.spatial[-1] >= 0:
        return None
    return f"replicate({-table.spatial.pop()})"


def grid(shape: tuple[int, ...], indices: np.ndarray, max_owners: int = 4) -> str:
    """The tile as rows of cells ``t<thread>:<slot>``; ranks above 2 print a grid per leading
    index."""
    owners: dict[tuple[int, ...], list[tuple[int, int]]] = defaultdict(list)
    threads, slots = indices.shape[:2]
    for t in range(threads):
        for s in range(slots):
            owners[tuple(int(i) for i in indices[t, s])].append((t, s))

    def cell(index: tuple[int, ...]) -> str:
        held = sorted(owners.get(index, []))
        if not held:
            return "-"
        ts = [str(t) for t, _ in held]
        if len(ts) > max_owners:
            ts = ts[: max_owners - 1] + [f"..({len(held)})"]
        return f"t{','.join(ts)}:{held[0][1]}"

    rows, cols = (shape[-2], shape[-1]) if len(shape) >= 2 else (1, shape[0])
    blocks = []
    for lead in np.ndindex(*shape[:-2]) if len(shape) > 2 else [()]:
        if len(shape) == 1:
            table = [[cell((c,)) for c in range(cols)]]
        else:
            table = [[cell((*lead, r, c)) for c in range(cols)] for r in range(rows)]
        width = max(len(x) for row in table for x in row + [str(cols - 1)])
        label = len(str(rows - 1))
        lines = [" " * label + " " + " ".join(str(c).rjust(width) for c in range(cols))]
        lines += [
            str(r).rjust(label) + " " + " ".join(x.rjust(width) for x in row)
            for r, row in enumerate(table)
        ]
        title = f"[{', '.join(map(str, lead))}, :, :]\n" if lead else ""
        blocks.append(title + "\n".join(lines))
    return "\n\n".join(blocks)
