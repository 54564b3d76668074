"""``python -m tilevm``: ``check`` and ``bench`` a problem module, ``explain`` an error code."""

from __future__ import annotations

import argparse
import sys

from tilevm import explain
from tilevm.harness import cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tilevm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    cli.add_commands(commands)
    explain.add_command(commands)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
