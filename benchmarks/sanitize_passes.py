"""One pass: every selected case through the driver, under one compute-sanitizer tool (or none,
the ``plain`` pass), in as few processes as possible.

A pass starts one process for all its cases. A process that stops early (a case raised, or the
process died in one) is followed by a fresh one for the cases after the one it stopped in, until
every case has run or the time budget is spent.
"""

from __future__ import annotations

import contextlib
import os
import pty
import select
import shlex
import signal
import subprocess
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from benchmarks.sanitize_report import CaseRun, ProcessRun, parse
from benchmarks.sanitize_tools import ERROR_EXITCODE

PLAIN = "plain"  # the pass without a sanitizer: a baseline, and it fills the compile cache
ENV = {
    # torch's caching allocator hands out slices of large blocks, inside which memcheck sees no
    # bounds; uncached, each tensor is its own cudaMalloc of exactly its size
    "PYTORCH_NO_CUDA_MEMORY_CACHING": "1",
    "PYTHONUNBUFFERED": "1",
}


@dataclass
class PassResult:
    tool: str  # PLAIN or a sanitizer tool
    cases: dict[int, CaseRun] = field(default_factory=dict)
    processes: list[ProcessRun] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    exit_codes: list[int | None] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what makes the pass itself untrustworthy
    log: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def sanitized(self) -> bool:
        return self.tool != PLAIN

    def errors(self, index: int) -> int:
        case = self.cases.get(index)
        return len(case.records) if case is not None else 0

    @property
    def outside(self) -> int:
        """Reports not inside any case: start-up, shut-down, and those past the print limit."""
        return sum(len(p.before) + len(p.after) + p.unprinted for p in self.processes)

    @property
    def total(self) -> int:
        return sum(self.errors(i) for i in self.cases) + self.outside


def run_pass(
    tool: str,
    indices: list[int],
    kernels: dict[int, str],
    command: Callable[[list[int]], list[str]],
    deadline: float,
    label: str = "",
) -> PassResult:
    """Run ``command(cases)`` until every case in ``indices`` has run (or the deadline);
    with a ``label``, say so when done (the tools' passes take minutes)."""
    result = PassResult(tool)
    started = time.monotonic()
    remaining = list(indices)
    while remaining:
        left = deadline - time.monotonic()
        if left < 5:
            result.problems.append(f"the time budget ran out before cases {remaining} ran")
            break
        cmd = command(remaining)
        result.commands.append(shlex.join(cmd))
        output, code, timed_out = _run(cmd, left)
        result.log.append(f"### {tool}: {shlex.join(cmd)}\n{output}\n### exit status {code}\n")
        result.exit_codes.append(code)
        proc = parse(output, kernels)
        result.processes.append(proc)
        result.cases.update(proc.cases)
        _check_process(result, proc, code, timed_out)
        if proc.finished or timed_out:
            break
        stopped = proc.last_begun()
        if stopped is not None:
            stopped.status = "crashed"
            stopped.message = f"the process ended (exit status {code}) during this case"
        if not proc.cases:
            result.problems.append(f"the process ended (exit status {code}) before its first case")
            break
        remaining = [i for i in remaining if i not in result.cases]
    result.seconds = time.monotonic() - started
    if label:
        ran = sum(c.status == "ok" for c in result.cases.values())
        reports = f", {result.total} reports" if result.sanitized else ""
        print(
            f"{label}: {ran}/{len(indices)} cases ran in {result.seconds:.1f} s{reports}, "
            f"{len(result.processes)} processes, {len(result.problems)} problems",
            flush=True,
        )
    return result


def _check_process(result: PassResult, proc: ProcessRun, code: int | None, timed_out: bool):
    n = len(result.processes)
    if timed_out:
        begun = proc.last_begun()
        if begun is not None:
            begun.status = "timeout"
        result.problems.append(f"process {n} was stopped at the time budget")
        return
    if not result.sanitized:
        return
    if proc.summary is None:
        result.problems.append(f"process {n}: no summary line from compute-sanitizer (exit {code})")
    if code == ERROR_EXITCODE and proc.reported + proc.unprinted == 0:
        result.problems.append(f"process {n}: compute-sanitizer exited {code} (errors found) but "
                               "no report could be read from its output")  # fmt: skip
    for line in proc.process_lines:
        result.problems.append(f"process {n}: {line}")


def _run(cmd: list[str], timeout: float) -> tuple[str, int | None, bool]:
    """Run ``cmd`` with stdout and stderr on one pseudo-terminal; on timeout kill its process
    group (the sanitizer and the driver under it).

    A terminal, not a pipe: C and C++ programs buffer their output whole blocks at a time into
    a pipe, and compute-sanitizer's reports could then come out after the driver's later lines;
    into a terminal every line goes out as it is written, in the order it was written."""
    env = {**os.environ, **ENV}
    try:
        reader, writer = pty.openpty()
    except OSError:  # no pseudo-terminals here: a pipe (the order may then suffer)
        return _run_with_pipe(cmd, timeout, env)
    attrs = termios.tcgetattr(writer)
    attrs[1] &= ~termios.OPOST  # no "\r" before each "\n"
    termios.tcsetattr(writer, termios.TCSANOW, attrs)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=writer, stderr=writer, env=env,
                            start_new_session=True)  # fmt: skip
    os.close(writer)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    timed_out = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 and not timed_out:
                timed_out = True
                _kill(proc)
                deadline = time.monotonic() + 10  # what is left in the terminal, then stop
                continue
            if left <= 0:
                break
            ready, _, _ = select.select([reader], [], [], min(left, 1.0))
            if not ready:
                continue
            try:
                data = os.read(reader, 1 << 16)
            except OSError:  # EIO: every process holding the terminal has ended
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(reader)
    if proc.poll() is None:
        _kill(proc)
    proc.wait()
    text = b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")
    return text, proc.returncode, timed_out


def _run_with_pipe(cmd: list[str], timeout: float, env: dict) -> tuple[str, int | None, bool]:
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, text=True, errors="replace",
                            start_new_session=True)  # fmt: skip
    try:
        output, _ = proc.communicate(timeout=timeout)
        return output, proc.returncode, False
    except subprocess.TimeoutExpired:
        _kill(proc)
        output, _ = proc.communicate()
        return output, proc.returncode, True


def _kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
        os.killpg(proc.pid, signal.SIGKILL)  # the group this run started (start_new_session)


# --- judging ---------------------------------------------------------------------------------


def cell(result: PassResult, index: int) -> str:
    """The table's entry for one case in one pass."""
    case = result.cases.get(index)
    if case is None:
        return "-"
    if case.status != "ok":
        return {"fail": "fail", "crashed": "crash", "timeout": "timeout"}.get(case.status, "?")
    text = str(len(case.records)) if result.sanitized else "ok"
    return text + ("*" if case.unwritten else "")


def case_clean(result: PassResult, index: int) -> bool:
    case = result.cases.get(index)
    return case is not None and case.status == "ok" and not case.records and not case.unwritten


def pass_clean(result: PassResult, indices: list[int]) -> bool:
    return (
        not result.problems and result.outside == 0 and all(case_clean(result, i) for i in indices)
    )


def case_json(case: CaseRun | None, sanitized: bool) -> dict:
    if case is None:
        return {"status": "not run"}
    out = {"status": case.status, "seconds": case.seconds}
    if sanitized:
        out["errors"] = len(case.records)
        if case.records:
            out["reports"] = ["\n".join(r.lines) for r in case.records[:5]]
    if case.unwritten:
        out["unwritten"] = case.unwritten
    if case.message:
        out["message"] = case.message
    return out


def pass_json(result: PassResult) -> dict:
    return {
        "seconds": round(result.seconds, 1),
        "errors": result.total if result.sanitized else None,
        "outside_cases": result.outside,
        "summary_lines": [p.summary for p in result.processes],
        "processes": len(result.processes),
        "exit_codes": result.exit_codes,
        "commands": result.commands,
        "problems": result.problems,
        "outside_reports": [
            "\n".join(r.lines) for p in result.processes for r in (p.before + p.after)
        ][:10],
    }
