"""``python -m tilevm explain CODE``: what an error code means, a minimal example that raises
it and how to fix it; ``explain --list`` lists every code, ``explain --markdown`` prints them all
as a table with their fixes (docs/agents.md holds it). The entries live in the
``tilevm/error_catalog`` package."""

from __future__ import annotations

import argparse
import difflib
import sys
import textwrap
from typing import Any

from tilevm.error_catalog import CATALOG, Entry

PRELUDE = "import numpy as np\nimport tilevm as tv\n"  # what every example assumes


def render(entry: Entry) -> str:
    lines = [f"error[{entry.code}]: {entry.title}", ""]
    lines += textwrap.wrap(entry.meaning, 92) + [""]
    if entry.example is not None:
        lines += ["Example that raises it:", ""]
        program = PRELUDE + entry.example.strip("\n")
        lines += ["    " + line if line else "" for line in program.splitlines()]
        lines.append("")
    else:
        lines += textwrap.wrap(f"No example: {entry.why_no_example}", 92) + [""]
    lines += ["How to fix it:", *textwrap.wrap(entry.fix, 92, initial_indent="  ",
                                               subsequent_indent="  ")]  # fmt: skip
    return "\n".join(lines)


def listing() -> str:
    width = max(len(code) for code in CATALOG)
    return "\n".join(f"{code.ljust(width)}  {CATALOG[code].title}" for code in sorted(CATALOG))


def markdown() -> str:
    """Every code, what it means in a line and its fix, as a markdown table."""
    rows = ["| code | what | fix |", "|---|---|---|"]
    for code in sorted(CATALOG):
        entry = CATALOG[code]
        title, fix = (" ".join(text.split()).replace("|", "\\|") for text in (entry.title, entry.fix))
        rows.append(f"| `{code}` | {title} | {fix} |")
    return "\n".join(rows)


def add_command(commands: Any) -> None:
    parser = commands.add_parser("explain", help="explain an error code (error[CODE])")
    parser.add_argument("code", nargs="?", help="the code, e.g. register-budget")
    parser.add_argument("--list", action="store_true", help="list every code")
    parser.add_argument("--markdown", action="store_true",
                        help="every code with its fix, as a markdown table")  # fmt: skip
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    if args.list:
        print(listing())
        return 0
    if args.markdown:
        print(markdown())
        return 0
    code = (args.code or "").strip().removeprefix("error[").removesuffix("]")
    entry = CATALOG.get(code)
    if entry is None:
        close = difflib.get_close_matches(code, CATALOG, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        print(f"unknown error code {code!r}{hint} (python -m tilevm explain --list)",
              file=sys.stderr)  # fmt: skip
        return 2
    print(render(entry))
    return 0


__all__ = ["add_command", "listing", "render"]
