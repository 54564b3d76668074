"""``python -m tilevm check``: every device and shape of a problem, each called a few times on
fresh inputs, every call verified (``runner``)."""

from __future__ import annotations

from typing import Any

from tilevm.harness import gpu
from tilevm.harness.compare import Failure
from tilevm.harness.guards import Watch
from tilevm.harness.problem import Problem
from tilevm.harness.report import Case, Report
from tilevm.harness.runner import Outcome, Runner, describe

CALLS = 2  # two calls per case: an output cached from the first fails the second


def run_check(
    problem: Problem, watch: Watch, devices: list[str], seed: int, calls: int = CALLS
) -> Report:
    report = Report("check", problem.path, seed)
    runner = Runner(problem, watch, seed)
    for device in devices:
        # On a GPU each call runs under the event timer: its early copy catches off-stream work.
        timer = gpu.CudaTimer(device, watch.now) if gpu.is_gpu(device) else None
        for index, shape in enumerate(problem.shapes_for(device)):
            case = Case(device, shape)
            for call in range(calls):
                outcome = verified_call(runner, case, index, call, timer)
                if outcome is None or outcome.failures:
                    break
            report.cases.append(case)
    return report


def verified_call(
    runner: Runner, case: Case, index: int, call: int, timer: Any, ref_timer: Any = None
) -> Outcome | None:
    """One call of ``case`` (shape number ``index``) on fresh inputs, judged and added to the
    case; None when the problem's own code failed to make its inputs."""
    try:
        prepared = runner.prepare(case.device, case.shape, runner.rng(case.device, index, call))
    except Exception as exc:  # the problem's own code failed: the case cannot be judged
        case.failures.append(Failure("problem-error", describe(exc)))
        return None
    outcome = runner.run(prepared, case.device, timer)
    runner.judge(prepared, outcome, (case.device, index), ref_timer)
    case.calls += 1
    case.launches += outcome.launches
    case.outputs = outcome.stats or case.outputs
    case.failures += outcome.failures
    return outcome


__all__ = ["run_check", "verified_call"]
