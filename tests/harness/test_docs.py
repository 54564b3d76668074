"""docs/harness.md: its python blocks run as written, from the repository's root."""

from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "harness.md").read_text(), re.S)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_every_python_block_runs(monkeypatch, capsys, index: int) -> None:
    monkeypatch.chdir(ROOT)
    scope: dict = {}
    exec(compile(BLOCKS[index], f"harness.md block {index}", "exec"), scope)  # noqa: S102
    if "report" in scope:  # the commands' functions answer as the commands do
        assert scope["report"].ok and "OK:" in capsys.readouterr().out
