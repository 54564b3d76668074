"""Check (and with ``--bench``, time) every problem in ``problems/`` through the harness and
print one markdown table.

    python benchmarks/agents/run.py                          # check on the GPU, else the CPU
    python benchmarks/agents/run.py --bench --device cuda:0  # time against torch eager
    python benchmarks/agents/run.py --problems rmsnorm,gemv --device cpu --device interp

Check: one row per problem and device, ``correct`` = cases passed. Bench: one row per case
(shape), with the medians of tilevm and of the torch eager reference (GPU: CUDA events, L2
flushed; see docs/harness.md) and their ratio. Exit status 1 when any case fails, 2 when a
problem cannot be run at all.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from dataclasses import dataclass
from typing import Any


import tilevm as tv
from tilevm.harness.cli import run_problem as harness_run
from tilevm.harness.report import Report

PROBLEMS = pathlib.Path(__file__).resolve().parent / "problems"
HEADER = ["problem", "category", "device", "shape", "correct", "tilevm", "torch eager", "speedup"]


@dataclass
class Result:
    name: str
    category: str
    report: Report


def problem_paths(names: list[str] | None) -> list[pathlib.Path]:
    """The problem modules (files not starting with ``_``), or the named ones, in order."""
    found = {p.stem: p for p in sorted(PROBLEMS.glob("*.py")) if not p.name.startswith("_")}
    if not names:
        return list(found.values())
    unknown = [n for n in names if n not in found]
    if unknown:
        raise SystemExit(f"no problem {', '.join(unknown)}; there are: {', '.join(found)}")
    return [found[n] for n in names]


def default_devices() -> list[str]:
    """The first GPU where there is one (the speed that matters), else the CPU."""
    here = tv.devices()
    gpus = [d for d in here if d.startswith(("cuda", "hip"))]
    return gpus[:1] or ["cpu"]


def run_problem(path: pathlib.Path, devices: list[str], args: argparse.Namespace) -> Result:
    """One problem through the harness, as ``python -m tilevm check|bench`` runs it."""
    report, problem = harness_run(
        "bench" if args.bench else "check", str(path),
        lambda p: [d for d in devices if p.runs_on(d)], args.seed,
        calls=args.calls, runs=args.runs, warmup=args.warmup,
    )  # fmt: skip
    category = getattr(problem.module, "CATEGORY", "-") if problem is not None else "?"
    return Result(path.stem, category, report)


def table(results: list[Result], bench: bool) -> str:
    """The results as a markdown table: a row per case when timed, else per device."""
    rows = [HEADER, ["---"] * len(HEADER)]
    for result in results:
        rows += _bench_rows(result) if bench else _check_rows(result)
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def _check_rows(result: Result) -> list[list[str]]:
    by_device: dict[str, list[Any]] = {}
    for case in result.report.cases:
        by_device.setdefault(case.device, []).append(case)
    if not by_device:  # nothing ran: the module's errors say why
        return [[result.name, result.category, "-", "-", _errors(result), "-", "-", "-"]]
    rows = []
    for device, cases in by_device.items():
        passed = sum(c.ok for c in cases)
        verdict = f"{passed}/{len(cases)}" + ("" if passed == len(cases) else " FAIL")
        shapes = f"{len(cases)} shapes"
        rows.append([result.name, result.category, device, shapes, verdict, "-", "-", "-"])
    return rows


def _bench_rows(result: Result) -> list[list[str]]:
    if not result.report.cases:
        return [[result.name, result.category, "-", "-", _errors(result), "-", "-", "-"]]
    rows = []
    for case in result.report.cases:
        timing = case.timing or {}
        speedup = timing.get("speedup")
        rows.append([
            result.name,
            result.category,
            case.device,
            _shape(case.shape),
            "ok" if case.ok else "FAIL " + ",".join(sorted({f.code for f in case.failures})),
            _time(timing.get("median_s")),
            _time(timing.get("reference_median_s")),
            "-" if speedup is None else f"{speedup:.3g}x",
        ])  # fmt: skip
    return rows


def _shape(shape: Any) -> str:
    if isinstance(shape, (list, tuple)):
        return "x".join(str(s) for s in shape)
    return str(shape)


def _errors(result: Result) -> str:
    codes = ",".join(e["code"] for e in result.report.errors)
    return f"FAIL {codes}" if codes else "-"


def _time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1e6:.1f} us" if seconds < 1e-3 else f"{seconds * 1e3:.3f} ms"


def failures(results: list[Result]) -> list[str]:
    """Each failure in one line: problem, device, shape, codes (and module errors)."""
    lines = []
    for result in results:
        for error in result.report.errors:
            lines.append(f"{result.name}: error[{error['code']}]: {error['message']}")
        for case in result.report.cases:
            for failure in case.failures:
                first = failure.message.splitlines()[0] if failure.message else ""
                where = f"{result.name} {case.device} {_shape(case.shape)}"
                lines.append(f"{where}: {failure.code}: {first}")
    return lines


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", action="store_true", help="time each case (bench)")
    where = "a device to run on (repeatable; default: the first GPU, else cpu)"
    parser.add_argument("--device", action="append", dest="devices", help=where)
    parser.add_argument("--problems", help="comma-separated problem names (default: all)")
    parser.add_argument("--seed", type=int, help="replay a run's inputs")
    parser.add_argument("--calls", type=int, default=2, help="check: calls per case (2)")
    parser.add_argument("--runs", type=int, default=10, help="bench: timed calls (10)")
    parser.add_argument("--warmup", type=int, default=3, help="bench: untimed calls (3)")
    parser.add_argument("--json", help="also write every harness report to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    devices = args.devices or default_devices()
    missing = [d for d in devices if d not in tv.devices()]
    if missing:
        print(f"no device {', '.join(missing)} here; there are: {', '.join(tv.devices())}")
        return 2
    names = [n.strip() for n in args.problems.split(",")] if args.problems else None
    results = [run_problem(p, devices, args) for p in problem_paths(names)]
    print(table(results, args.bench))
    bad = failures(results)
    for line in bad:
        print(line)
    if args.json:
        reports = {r.name: r.report.to_dict() for r in results}
        pathlib.Path(args.json).write_text(json.dumps(reports, indent=2, allow_nan=False))
    cases = sum(len(r.report.cases) for r in results)
    passed = sum(c.ok for r in results for c in r.report.cases)
    print(f"\n{passed} of {cases} cases passed on {', '.join(devices)}")
    if any(r.report.errors and not r.report.cases for r in results):
        return 2
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
