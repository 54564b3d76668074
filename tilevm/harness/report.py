"""The harness's results: one ``Case`` per device and shape, gathered in a ``Report`` that prints
as a table for people or as JSON for tools (schema ``tilevm-harness/1``, docs/harness.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tilevm.harness.compare import Failure

SCHEMA = "tilevm-harness/1"


@dataclass
class Case:
    device: str
    shape: Any
    calls: int = 0
    launches: int = 0
    failures: list[Failure] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)  # of the last verified call
    timing: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "shape": _jsonable(self.shape),
            "ok": self.ok,
            "calls": self.calls,
            "launches": self.launches,
            "failures": [f.to_dict() for f in self.failures],
            "outputs": self.outputs,
            "timing": self.timing,
        }


@dataclass
class Report:
    command: str  # "check" or "bench"
    problem: str
    seed: int
    cases: list[Case] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)  # failures outside any case

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.cases) and all(c.ok for c in self.cases)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "command": self.command,
            "problem": self.problem,
            "seed": self.seed,
            "ok": self.ok,
            "errors": self.errors,
            "cases": [c.to_dict() for c in self.cases],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    def table(self) -> str:
        """The cases as aligned rows, each failure under its case, and a summary line."""
        timed = self.command == "bench"
        head = ["device", "shape", "result", "calls", "launches", "max abs err"]
        head += ["median", "spread", "reference", "clock"] if timed else []
        rows = [head] + [_row(c, timed) for c in self.cases]
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = [f"tilevm {self.command} {self.problem} (seed {self.seed})"]
        for i, row in enumerate(rows):
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
            case = self.cases[i - 1] if i else None
            for failure in case.failures if case else []:
                lines += [f"    {failure.code}: {line}" if n == 0 else f"      {line}"
                          for n, line in enumerate(failure.message.splitlines())]  # fmt: skip
        for error in self.errors:
            lines.append(f"error[{error['code']}]: {error['message']}")
        failed = sum(not c.ok for c in self.cases)
        verdict = "OK" if self.ok else "FAILED"
        lines.append(f"{verdict}: {len(self.cases) - failed} of {len(self.cases)} cases passed"
                     f"; replay with --seed {self.seed}")  # fmt: skip
        return "\n".join(lines)


def _row(case: Case, timed: bool) -> list[str]:
    error = max((o.get("max_abs_error", 0.0) for o in case.outputs), default=None)
    row = [
        case.device,
        str(_jsonable(case.shape)),
        "ok" if case.ok else "FAIL " + ",".join(sorted({f.code for f in case.failures})),
        str(case.calls),
        str(case.launches),
        "-" if error is None else f"{error:.2e}",
    ]
    if timed:
        t = case.timing or {}
        reference = t.get("reference_median_s")
        row += [
            _seconds(t.get("median_s")),
            "-" if t.get("spread") is None else f"{100 * t['spread']:.1f}%",
            "-" if reference is None else _seconds(reference),
            t.get("clock", "-"),
        ]
    return row


def _seconds(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s * 1e6:.1f} us" if s < 1e-3 else f"{s * 1e3:.3f} ms"


def _jsonable(shape: Any) -> Any:
    if isinstance(shape, (tuple, list)):
        return [_jsonable(s) for s in shape]
    if isinstance(shape, (int, float, str, bool)) or shape is None:
        return shape
    if isinstance(shape, dict):
        return {str(k): _jsonable(v) for k, v in shape.items()}
    return repr(shape)


__all__ = ["SCHEMA", "Case", "Report"]
