"""``python -m tilevm bench``: time a problem's solution per device and shape, every call on
fresh inputs and verified, beside the reference's time when the reference is torch.

GPUs: CUDA events on torch's current stream, a buffer of twice the L2 written before each call
(``gpu.CudaTimer``). CPU devices: ``time.perf_counter`` around each call (launches there are
synchronous), as the harness bound it before the problem was imported.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tilevm.harness import gpu
from tilevm.harness.arrays import is_torch_tensor
from tilevm.harness.check import verified_call
from tilevm.harness.guards import Watch
from tilevm.harness.problem import Problem
from tilevm.harness.report import Case, Report
from tilevm.harness.runner import Runner

RUNS = 10
WARMUP = 3


def run_bench(
    problem: Problem,
    watch: Watch,
    devices: list[str],
    seed: int,
    runs: int = RUNS,
    warmup: int = WARMUP,
) -> Report:
    report = Report("bench", problem.path, seed)
    runner = Runner(problem, watch, seed)
    for device in devices:
        timer, ref_timer = gpu.timer_for(device, watch.now), gpu.timer_for(device, watch.now)
        for index, shape in enumerate(problem.shapes_for(device)):
            case = Case(device, shape)
            times, ref_times, torch_reference = [], [], False
            for call in range(warmup + runs):
                outcome = verified_call(runner, case, index, call, timer, ref_timer)
                if outcome is None or outcome.failures:
                    break
                torch_reference = any(is_torch_tensor(r) for r in outcome.reference)
                if call >= warmup:
                    times.append(outcome.seconds)
                    ref_times.append(outcome.reference_seconds)
            if case.ok:
                case.timing = _timing(timer.clock, times, ref_times if torch_reference else None)
                case.timing["warmup"] = warmup
            report.cases.append(case)
    return report


def _timing(clock: str, times: list[float], ref_times: list[float] | None) -> dict[str, Any]:
    """Median, extremes and spread ((90th - 10th percentile) / median) of the timed calls."""
    t = np.asarray(times, dtype=np.float64)
    median = float(np.median(t))
    p10, p90 = np.percentile(t, [10, 90])
    reference = float(np.median(ref_times)) if ref_times else None
    return {
        "clock": clock,
        "runs": len(times),
        "median_s": median,
        "min_s": float(t.min()),
        "max_s": float(t.max()),
        "spread": float((p90 - p10) / median) if median > 0 else 0.0,
        "reference_median_s": reference,
        "speedup": reference / median if reference and median > 0 else None,
    }


__all__ = ["run_bench"]
