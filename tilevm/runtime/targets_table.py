"""The README's "Targets" table, generated from the registered backends and their caps.

Each lowering backend lists its targets of interest (``Backend.describe``); the matrix
instruction column is read from the target's caps (``Target.atoms`` and ``matrix_loads``), never
from a backend's name. ``python3 -m tilevm.runtime.targets_table --write`` rewrites the table in
README.md between its marker comments; without ``--write`` the table is printed.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import textwrap

from tilevm.lowering.target import Target
from tilevm.runtime import registry
from tilevm.runtime.backend import TargetInfo

BEGIN = "<!-- targets:begin -->"
END = "<!-- targets:end -->"
README = pathlib.Path(__file__).resolve().parents[2] / "README.md"

HEADER = ("target", "to run here", "to compile here", "matrix instructions",
          "sub-byte fast casts")  # fmt: skip

# lowering/lower_cast.py turns casts of a view's packed fields into magic-number arithmetic on
# whole words for every target: it reads no caps, so this column is the same on every row.
FAST_CASTS = "yes (target-independent)"
FAST_CASTS_NOTE = (
    "Sub-byte fast casts: a cast of the fields of a `view` to f16, bf16 or f32 moves each field's "
    "bits into a float and subtracts a magic number, two 16-bit values per 32-bit word "
    "(`lowering/lower_cast.py`). That lowering reads no target caps, so every target gets it; "
    "each renderer supplies the packed 16-bit add and multiply it calls."
)


def targets_table() -> str:
    """The Markdown table (and its note) of every lowering backend's described targets."""
    rows = []
    for backend in registry.backends():
        if not backend.lowers:
            continue  # it runs the VM IR itself: no target, no generated code
        described = backend.describe()
        if not described:
            rows.append((f"`{backend.name}`", "not described (`Backend.describe`)", "", "", ""))
        rows.extend(_row(info) for info in described)
    lines = [_line(HEADER), _line(("---",) * len(HEADER)), *(_line(r) for r in rows)]
    return "\n".join([*lines, "", textwrap.fill(FAST_CASTS_NOTE, 100)]) + "\n"


def _row(info: TargetInfo) -> tuple[str, ...]:
    shown = f"`{info.spec}`"
    if info.target.name != info.spec.replace(":", "-"):
        shown += f" (lowers as `{info.target.name}`)"
    return (shown, info.runs_on, info.compiler, _matrix(info.target), FAST_CASTS)


def _matrix(target: Target) -> str:
    """The target's matrix instructions (its atoms) and matrix loads, or that dots are SIMT."""
    if not target.atoms:
        return "none (SIMT multiply-add)"
    text = "<br>".join(f"`{atom.name}`" for atom in target.atoms)
    loads = sorted({load.intrinsic for load in target.matrix_loads})
    if loads:
        text += "<br>fed by " + ", ".join(f"`{name}`" for name in loads)
    return text


def _line(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cells) + " |"


def readme_table(text: str) -> str | None:
    """The table between README's markers (None when a marker is missing)."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        return None
    return text[start + len(BEGIN) : end].strip("\n") + "\n"


def with_table(text: str) -> str:
    """README text with the generated table between its markers."""
    start, end = text.index(BEGIN), text.index(END)
    return text[: start + len(BEGIN)] + "\n" + targets_table() + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the table in README.md")
    args = parser.parse_args(argv)
    if not args.write:
        sys.stdout.write(targets_table())
        return 0
    README.write_text(with_table(README.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
