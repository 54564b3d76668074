"""Reading a sanitized run's output: which case each sanitizer report belongs to, and the totals.

The driver prints one ``@@sanitize {json}`` line when a case begins and one when it ends (after
the launch has been waited for), flushed; compute-sanitizer prints a report before the wait that
ends the launch returns, into the same pipe. So a report belongs to the case whose ``begin``
came last before it. Reports before the first case (start-up) or after the last (shut-down)
are kept apart: they still count.

compute-sanitizer's lines start with its prefix (``=========``); a report is a line with at
most two spaces after the prefix, its details are indented further, and a bare prefix line
ends it. Its summary line (``ERROR SUMMARY: N errors``, racecheck's ``RACECHECK SUMMARY: N
hazards displayed``) counts every report, also those past the print limit.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

MARK = "@@sanitize "
PREFIX = "========="
# top-level lines that are not reports about the application's kernels
HEADER = ("COMPUTE-SANITIZER",)
PROCESS_LINES = (
    "Error: process didn't terminate successfully",
    "Target application returned an error",
    "Error: Target application terminated before first instrumented API call",
    "Target application terminated before first instrumented API call",
    "LEAK SUMMARY",
)
ERROR_SUMMARY = re.compile(r"ERROR SUMMARY:\s*([\d,]+)\s+errors?")
RACE_SUMMARY = re.compile(r"RACECHECK SUMMARY:\s*([\d,]+)\s+hazards? displayed")


@dataclass
class Record:
    """One report of compute-sanitizer: its first line and its detail lines."""

    lines: list[str]

    @property
    def title(self) -> str:
        return self.lines[0].strip()

    def mentions(self, kernel: str) -> bool:
        text = "\n".join(self.lines)
        return re.search(rf"(?<![\w$]){re.escape(kernel)}(?![\w$])", text) is not None


@dataclass
class CaseRun:
    """What one process saw of one case."""

    index: int
    name: str
    status: str = "begun"  # begun (never ended: the process died in it), ok, fail
    seconds: float | None = None
    unwritten: dict[str, int] = field(default_factory=dict)
    message: str = ""
    records: list[Record] = field(default_factory=list)


@dataclass
class ProcessRun:
    """One process's output, split by case."""

    cases: dict[int, CaseRun] = field(default_factory=dict)
    before: list[Record] = field(default_factory=list)  # reports before the first case
    after: list[Record] = field(default_factory=list)  # after the driver finished
    process_lines: list[str] = field(default_factory=list)
    summary: int | None = None  # the sanitizer's own count; None: no summary line
    finished: bool = False  # the driver reached its end
    device: dict = field(default_factory=dict)
    other: list[str] = field(default_factory=list)  # the application's own lines

    @property
    def reported(self) -> int:
        return len(self.before) + len(self.after) + sum(len(c.records) for c in self.cases.values())

    @property
    def unprinted(self) -> int:
        """Reports the summary counts but the output does not show (past the print limit)."""
        return max(0, (self.summary or 0) - self.reported)

    def last_begun(self) -> CaseRun | None:
        begun = [c for c in self.cases.values() if c.status == "begun"]
        return begun[-1] if begun else None


def parse(output: str, kernels: dict[int, str] | None = None, prefix: str = PREFIX) -> ProcessRun:
    """Split a process's combined output into cases. ``kernels`` maps case indices to kernel
    names: a report that names the previous case's kernel but not its own case's (one that came
    late) moves back to the previous case."""
    run = ProcessRun()
    current: CaseRun | None = None
    record: Record | None = None
    order: list[int] = []

    def home() -> list[Record]:
        if run.finished:
            return run.after
        return current.records if current is not None else run.before

    for line in output.splitlines():
        if line.startswith(MARK):
            record = None
            event = _event(line)
            if event is None:
                run.other.append(line)
                continue
            kind = event.get("event")
            if kind == "begin":
                current = CaseRun(int(event["index"]), str(event.get("name", "")))
                run.cases[current.index] = current
                order.append(current.index)
            elif kind == "end" and current is not None:
                current.status = str(event.get("status", "fail"))
                current.seconds = event.get("seconds")
                current.unwritten = dict(event.get("unwritten") or {})
                current.message = str(event.get("message", ""))
            elif kind == "finished":
                run.finished = True
            elif kind == "device":
                run.device = {k: v for k, v in event.items() if k != "event"}
            continue
        if not line.startswith(prefix):
            record = None
            run.other.append(line)
            continue
        rest = line[len(prefix) :]
        if not rest.strip():
            record = None  # a bare prefix line ends a report
            continue
        indent = len(rest) - len(rest.lstrip(" "))
        text = rest.strip()
        if indent > 2 and record is not None:
            record.lines.append(text)
            continue
        record = None
        summary = ERROR_SUMMARY.search(text) or RACE_SUMMARY.search(text)
        if summary:
            run.summary = max(run.summary or 0, int(summary.group(1).replace(",", "")))
        elif text.startswith(HEADER):
            pass
        elif text.startswith(PROCESS_LINES):
            run.process_lines.append(text)
        else:
            record = Record([text])
            home().append(record)
    if kernels:
        _move_late_reports(run, order, kernels)
    return run


def _event(line: str) -> dict | None:
    try:
        event = json.loads(line[len(MARK) :])
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _move_late_reports(run: ProcessRun, order: list[int], kernels: dict[int, str]) -> None:
    for previous, index in zip(order, order[1:]):
        own, before = kernels.get(index, ""), kernels.get(previous, "")
        if own == before:
            continue  # the same kernel: the order is all there is to go by
        case = run.cases[index]
        late = [r for r in case.records if r.mentions(before) and not r.mentions(own)]
        if late:
            case.records = [r for r in case.records if r not in late]
            run.cases[previous].records += late
