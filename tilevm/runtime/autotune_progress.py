"""The autotuner's progress line: one line on stderr, rewritten with ``\\r`` as configs finish,
then a final line with the winner and what failed. Silent unless stderr is a terminal, so logs
and CI output never fill with progress updates."""

from __future__ import annotations

import sys
from collections.abc import Hashable

from tilevm.errors import TilevmError


class Progress:
    def __init__(self, kernel: str, label: str, total: int) -> None:
        self.head = f"{kernel} [{label}]"
        self.total = total
        isatty = getattr(sys.stderr, "isatty", None)  # sys.stderr may be None or a bare stream
        self.live = bool(isatty and isatty())
        self.width = 0
        self._write(f"tuning {self.head}: 0/{total} configs", "")

    def update(self, done: int, timings: dict[Hashable, float]) -> None:
        self._write(f"tuning {self.head}: {done}/{self.total} configs{_best(timings)}", "")

    def finish(
        self, timings: dict[Hashable, float], failures: list[tuple[Hashable, TilevmError]]
    ) -> None:
        text = f"tuned {self.head}: {len(timings)}/{self.total} configs ran{_best(timings)}"
        if failures:
            config, exc = failures[0]
            text += f"; {len(failures)} failed (first: {config}: {exc.code}: {exc.message})"
        self._write(text, "\n")

    def _write(self, text: str, end: str) -> None:
        if not self.live:
            return
        pad = " " * max(0, self.width - len(text))  # rub out the rest of a longer line
        self.width = len(text)
        sys.stderr.write(f"\r{text}{pad}{end}")
        sys.stderr.flush()


def _best(timings: dict[Hashable, float]) -> str:
    if not timings:
        return ""
    best = min(timings, key=timings.__getitem__)
    return f", best {seconds(timings[best])} ({best})"


def seconds(t: float) -> str:
    """A duration as people read it: 12.3 us, 4.56 ms, 1.23 s."""
    if t < 1e-3:
        return f"{t * 1e6:.1f} us"
    return f"{t * 1e3:.2f} ms" if t < 1 else f"{t:.2f} s"


__all__ = ["Progress", "seconds"]
