"""The process that ``benchmarks/sanitize.py`` runs under compute-sanitizer: it launches cases
one after the other on the GPU, each waited for, between ``@@sanitize`` lines that tell the
reader which case a report belongs to.

    python3 benchmarks/sanitize_driver.py zoo --cases 0-45 --seed 7 [--uninitialized-outputs]
        [--device cpu]
    python3 benchmarks/sanitize_driver.py selftest --tool memcheck --cases 0-2

A case that raises ends the process (exit status 3) after its ``end`` line: the CUDA context
may be unusable after a fault, so the runner starts a fresh process for the cases after it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.sanitize_report import MARK  # noqa: E402

CASE_RAISED = 3


def emit(event: str, **fields) -> None:
    print(MARK + json.dumps({"event": event, **fields}), flush=True)


def parse_indices(text: str) -> list[int]:
    """``"0-3,7"`` -> ``[0, 1, 2, 3, 7]``."""
    out: list[int] = []
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("-")
        out += range(int(first), int(last or first) + 1)
    return out


def format_indices(indices: list[int]) -> str:
    """``[0, 1, 2, 3, 7]`` -> ``"0-3,7"``."""
    runs: list[list[int]] = []
    for i in sorted(indices):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _run_cases(named: list[tuple[int, str]], launch, settle: float) -> int:
    """Launch each case between its ``begin`` and ``end`` lines. ``settle``: seconds to wait
    after each launch has finished, for the sanitizer (another process) to print its reports
    on the launch before the next case begins."""
    for index, name in named:
        emit("begin", index=index, name=name)
        start = time.perf_counter()
        try:
            unwritten = launch(index) or {}
            time.sleep(settle)
        except Exception as exc:
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            emit("end", index=index, status="fail", message=detail[:4000],
                 seconds=round(time.perf_counter() - start, 3))  # fmt: skip
            traceback.print_exc()
            return CASE_RAISED
        emit("end", index=index, status="ok", unwritten=unwritten,
             seconds=round(time.perf_counter() - start, 3))  # fmt: skip
    emit("finished")
    return 0


def _device() -> None:
    from tilevm.backends.cuda import driver

    info = driver.device_info(0)
    emit("device", name=info.name, arch=info.arch, multiprocessors=info.multiprocessors)


def zoo(
    indices: list[int], seed: int, uninitialized_outputs: bool, device: str, settle: float
) -> int:
    """The zoo's cases on the GPU (``device="cuda"``), or on a host executor (``cpu``) where the
    same pipeline is tested without a GPU."""
    import numpy as np

    from benchmarks.sanitize_cases import cases, run_on_gpu, run_on_host

    if device == "cuda":
        _device()
    every = cases()

    def launch(index: int) -> dict:
        rng = np.random.default_rng([seed, index])
        if device == "cuda":
            return run_on_gpu(every[index], rng, uninitialized_outputs).unwritten
        return run_on_host(every[index], device, rng).unwritten

    return _run_cases([(i, every[i].name) for i in indices], launch, settle)


def selftest(tool: str, indices: list[int], shared_initcheck: bool, settle: float) -> int:
    from benchmarks import sanitize_selftest as planted
    from tilevm.backends.cuda import driver

    _device()
    module = driver.Module(planted.compile_cubin(driver.device_info(0).arch_for_compile))
    plan = planted.plan(tool, shared_initcheck)

    def launch(index: int) -> dict:
        planted.launch(module, plan[index])
        return {}

    return _run_cases([(i, plan[i].name) for i in indices], launch, settle)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    z = sub.add_parser("zoo")
    z.add_argument("--cases", required=True)
    z.add_argument("--seed", type=int, required=True)
    z.add_argument("--uninitialized-outputs", action="store_true")
    z.add_argument("--device", default="cuda")
    s = sub.add_parser("selftest")
    s.add_argument("--tool", required=True)
    s.add_argument("--cases", required=True)
    s.add_argument("--shared-initcheck", action="store_true")
    for p in (z, s):
        p.add_argument("--settle", type=float, default=0.0)
    args = parser.parse_args(argv)
    if args.what == "zoo":
        return zoo(parse_indices(args.cases), args.seed, args.uninitialized_outputs, args.device,
                   args.settle)  # fmt: skip
    return selftest(args.tool, parse_indices(args.cases), args.shared_initcheck, args.settle)


if __name__ == "__main__":
    sys.exit(main())
