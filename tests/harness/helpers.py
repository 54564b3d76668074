"""Running ``python -m tilevm check|bench`` in this process on the test problems."""

from __future__ import annotations

import json
import pathlib
import time

import numpy as np

from tilevm.__main__ import main

PROBLEMS = pathlib.Path(__file__).parent / "problems"
EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples" / "problems"


def harness(capsys, command: str, problem: str, *options: str) -> tuple[int, dict]:
    """The exit status and the JSON report of one run; clocks and numpy restored after it
    (some problems replace them)."""
    path = problem if problem.endswith(".py") else str(PROBLEMS / f"{problem}.py")
    saved = time.perf_counter, np.abs
    try:
        status = main([command, path, "--json", *options])
    finally:
        time.perf_counter, np.abs = saved
    return status, json.loads(capsys.readouterr().out)


def failure_codes(report: dict) -> set[str]:
    return {f["code"] for case in report["cases"] for f in case["failures"]}
