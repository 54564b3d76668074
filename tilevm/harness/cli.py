"""The command lines of ``check`` and ``bench``: arguments, devices, the seed, and the exit
status (0: every case passed; 1: a case failed; 2: the problem could not be run at all)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

import tilevm as tv
from tilevm.harness.bench import RUNS, WARMUP, run_bench
from tilevm.harness.check import CALLS, run_check
from tilevm.harness.guards import Watch
from tilevm.harness.problem import Problem, load
from tilevm.harness.report import Report
from tilevm.harness.runner import describe

EXIT_OK, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2


def add_commands(commands: Any) -> None:
    """Add ``check`` and ``bench`` to an argparse sub-parser collection."""
    check = commands.add_parser("check", help="verify a problem's solution on every device")
    _common(check)
    calls = f"calls per device and shape, each on fresh inputs ({CALLS})"
    check.add_argument("--calls", type=int, default=CALLS, help=calls)
    check.set_defaults(handler=main_check)
    bench = commands.add_parser("bench", help="time a problem's solution, verifying each call")
    _common(bench)
    bench.add_argument("--runs", type=int, default=RUNS, help=f"timed calls ({RUNS})")
    bench.add_argument("--warmup", type=int, default=WARMUP, help=f"untimed calls ({WARMUP})")
    bench.set_defaults(handler=main_bench)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("problem", help="the problem module (a .py file)")
    parser.add_argument("--solution", help="take solution() from this file instead")
    where = "run on this device (repeatable; default: every device here)"
    parser.add_argument("--device", action="append", dest="devices", help=where)
    parser.add_argument("--seed", type=int, help="replay a run's inputs (default: a new seed)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def main_check(args: argparse.Namespace) -> int:
    return _run(args, calls=max(1, args.calls))


def main_bench(args: argparse.Namespace) -> int:
    return _run(args, runs=max(1, args.runs), warmup=max(0, args.warmup))


def _run(args: argparse.Namespace, **counts: int) -> int:
    report, problem = run_problem(
        args.command, args.problem, lambda p: _devices(args, p), args.seed, args.solution, **counts
    )
    if problem is None:
        return _emit(report, args.json, EXIT_UNUSABLE)
    return _emit(report, args.json, EXIT_OK if report.ok else EXIT_FAILED)


def run_problem(
    command: str,
    path: str,
    choose: Callable[[Problem], list[str]],
    seed: int | None = None,
    solution: str | None = None,
    calls: int = CALLS,
    runs: int = RUNS,
    warmup: int = WARMUP,
) -> tuple[Report, Problem | None]:
    """``check`` or ``bench`` of one problem module on the devices ``choose`` picks for it:
    the report, and the problem (None when it could not be loaded or its devices chosen: the
    report's errors say why). A new seed unless one is given."""
    watch = Watch()  # before the problem is imported: its clocks and numpy's, as they were
    seed = seed if seed is not None else int(np.random.SeedSequence().entropy % 2**32)
    report = Report(command, path, seed)
    try:
        problem = load(path, solution)
        devices = choose(problem)
    except Exception as exc:  # a broken module or a bad device: nothing can be run
        report.errors.append({"code": getattr(exc, "code", "problem-error"),
                              "message": describe(exc)})  # fmt: skip
        return report, None
    patched = watch.changed()  # by importing the problem (each call is checked on its own)
    if command == "bench":
        report = run_bench(problem, watch, devices, seed, runs, warmup)
    else:
        report = run_check(problem, watch, devices, seed, calls)
    if patched:
        message = "importing the problem replaced " + ", ".join(patched)
        report.errors.append({"code": "patched", "message": message})
    return report, problem


def _devices(args: argparse.Namespace, problem: Any) -> list[str]:
    here = tv.devices()
    if args.devices:
        unknown = [d for d in args.devices if d not in here]
        if unknown:
            raise tv.DeviceError(
                f"no device {', '.join(unknown)} here",
                expected=f"one of {', '.join(here)}",
                found=", ".join(unknown),
                code="no-device",
            )
        chosen = list(args.devices)
    else:  # an interpreter's time says nothing about a kernel's speed: bench skips it
        chosen = [d for d in here if not (args.command == "bench" and d == "interp")]
    return [d for d in chosen if problem.runs_on(d)]


def _emit(report: Report, as_json: bool, status: int) -> int:
    print(report.to_json() if as_json else report.table(), file=sys.stdout)
    return status


__all__ = ["add_commands", "run_problem"]
