"""The package as users meet it: the namespace mapping, the one-liner, the quickstart."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import tilevm as tv

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_top_level_folders_are_tilevm_subpackages() -> None:
    import tilevm.backends
    import tilevm.lowering
    import tilevm.stdlib

    for module, folder in (
        (tv.dtypes, "dtypes"),
        (tv.layouts, "layouts"),
        (tilevm.lowering, "lowering"),
        (tilevm.backends, "backends"),
        (tilevm.stdlib, "stdlib"),
    ):
        assert pathlib.Path(module.__file__).parent.name == folder


def test_the_readme_one_liner_prints_a_dtype_and_a_table() -> None:
    code = (
        "import tilevm as tv; "
        "print(tv.dtype('f6e3m2fn'), tv.layouts.local(2,1).spatial(4,8).table())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    assert lines[0].startswith("f6e3m2fn ") and lines[0].split()[1:] == [str(c) for c in range(8)]
    assert lines[1].split() == ["0"] + [f"t{t}:0" for t in range(8)]
    assert lines[8].split() == ["7"] + [f"t{t}:1" for t in range(24, 32)]


def test_quickstart_example_runs() -> None:
    script = ROOT / "examples" / "quickstart.py"
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    assert "f6e3m2fn: 6 bits" in out.stdout
    assert "scaled_add on the CPU: max error 0.0" in out.stdout
    assert "the interpreter agrees bit for bit: True" in out.stdout
    assert "column_local(2, 2).spatial(8, 4).local(1, 2)" in out.stdout


def test_every_error_is_a_tilevm_error_and_a_builtin() -> None:
    for exc in (tv.DtypeError, tv.LayoutError, tv.LayoutDivisionError, tv.TilevmValueError):
        assert issubclass(exc, tv.TilevmError) and issubclass(exc, ValueError)
    assert issubclass(tv.TilevmTypeError, TypeError)
    err = tv.DtypeError("m", expected="e", found="f", hint="h", code="c")
    assert err.to_dict() == {
        "code": "c",
        "kind": "DtypeError",
        "message": "m",
        "expected": "e",
        "found": "f",
        "hint": "h",
        "location": None,
    }


def test_errors_render_a_source_location_with_a_caret() -> None:
    loc = tv.SourceLocation("kernel.py", 12, 8, "    y = x + tv.load(p)\n")
    err = tv.TilevmError("shape mismatch", expected="[64]", found="[32]", location=loc)
    assert str(err).splitlines()[:3] == [
        "kernel.py:12:9",
        "        y = x + tv.load(p)",
        "            ^",
    ]
    assert err.to_dict()["location"] == {
        "file": "kernel.py",
        "line": 12,
        "col": 8,
        "source": "    y = x + tv.load(p)\n",
    }


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()
    marker = next(i for i, line in enumerate(readme) if "run the test suite (what CI runs" in line)
    command = readme[marker + 1].strip()
    assert command.startswith("bash .ci/setup && python3 -m pytest")
    assert command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_every_error_class_is_also_a_builtin_exception() -> None:
    """A handler written for the builtin (except ValueError, except RuntimeError) catches every
    tilevm error; CompileError, CudaRuntimeError and DisassemblerError were only Exceptions."""
    import builtins
    import importlib
    import inspect
    import pkgutil

    import tilevm.backends

    for module in pkgutil.walk_packages(tilevm.backends.__path__, "tilevm.backends."):
        importlib.import_module(module.name)  # every backend module's own error classes
    specific = {
        c for c in vars(builtins).values() if inspect.isclass(c) and issubclass(c, BaseException)
    } - {Exception, BaseException}

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    found = set(subclasses(tv.TilevmError))
    assert len(found) >= 15
    for cls in found:
        assert any(issubclass(cls, b) for b in specific), cls
