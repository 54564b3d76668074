"""``python -m tilevm explain``: every code raised in the source has a catalogue entry, and
every entry's example raises its code."""

from __future__ import annotations

import pathlib
import re
import runpy

import pytest

import tilevm as tv
from tilevm.__main__ import main
from tilevm.error_catalog import CATALOG

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCE_FOLDERS = ["tilevm", "lowering", "layouts", "backends", "dtypes", "stdlib"]
# code="slug", code = "slug" (class attributes), code: str = "slug" (the root's default)
CODE_LITERAL = re.compile(r"""\bcode(?:\s*:\s*str)?\s*=\s*["']([a-z0-9-]+)["']""")
PRELUDE = "import numpy as np\nimport tilevm as tv\n"


def raised_codes() -> dict[str, str]:
    """Every code literal in the source, with one place it appears."""
    found = {}
    for folder in SOURCE_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "error_catalog" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                for code in CODE_LITERAL.findall(line):
                    found.setdefault(code, f"{path.relative_to(ROOT)}:{number}")
    return found


def test_the_source_walk_finds_the_codes():
    codes = raised_codes()
    assert {"register-budget", "launch", "tilevm-error", "problem-module"} <= set(codes)
    assert len(codes) > 90


@pytest.mark.parametrize("code", sorted(raised_codes()))
def test_every_raised_code_has_an_entry(code):
    assert code in CATALOG, f"{code} (raised at {raised_codes()[code]}) has no catalogue entry"


def test_every_entry_is_a_code_that_is_raised():
    assert sorted(set(CATALOG) - set(raised_codes())) == []


def test_entries_without_an_example_say_why():
    for entry in CATALOG.values():
        assert (entry.example is None) == (entry.why_no_example is not None), entry.code
        assert entry.title and entry.meaning and entry.fix


@pytest.mark.parametrize("code", sorted(c for c, e in CATALOG.items() if e.example is not None))
def test_every_example_raises_its_code(code, tmp_path):
    file = tmp_path / f"example_{code.replace('-', '_')}.py"
    file.write_text(PRELUDE + CATALOG[code].example.strip("\n") + "\n")
    with pytest.raises(tv.TilevmError) as info:
        runpy.run_path(str(file), run_name="__main__")
    assert info.value.code == code, str(info.value)


def test_explain_prints_meaning_example_and_fix(capsys):
    assert main(["explain", "register-budget"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("error[register-budget]:")
    assert "Example that raises it:" in text and "How to fix it:" in text
    assert main(["explain", "error[shape]"]) == 0  # as an error message prints it
    assert "error[shape]" in capsys.readouterr().out


def test_explain_lists_every_code(capsys):
    assert main(["explain", "--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == sorted(CATALOG)


def test_an_unknown_code_suggests_close_ones(capsys):
    assert main(["explain", "register-budgit"]) == 2
    assert "register-budget" in capsys.readouterr().err
