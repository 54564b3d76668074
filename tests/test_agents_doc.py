"""docs/agents.md: every python block in it is a complete program that runs as written (on
the CPU here, with fresh random data and its own checks), and its error table is the
catalogue's, with every code and fix."""

from __future__ import annotations

import pathlib
import re
import runpy

import pytest

from tilevm import explain

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "agents.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def test_the_doc_has_its_examples_and_stays_readable_whole() -> None:
    assert len(BLOCKS) >= 10
    assert len(DOC.read_text()) < 120_000  # about 30k tokens: read in one go


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_every_python_block_runs(tmp_path, index: int) -> None:
    path = tmp_path / f"agents_block_{index}.py"  # kernels compile from their source file
    path.write_text(BLOCKS[index])
    runpy.run_path(str(path), run_name="__main__")


def test_the_error_table_is_the_catalogue() -> None:
    text = DOC.read_text()
    start = text.index("<!-- error table: python -m tilevm explain --markdown -->\n")
    end = text.index("<!-- end of error table -->")
    table = text[start:end].split("\n", 1)[1].strip()
    assert table == explain.markdown(), "regenerate with: python -m tilevm explain --markdown"
