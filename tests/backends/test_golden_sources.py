"""Golden sources: the CUDA (sm_90a), HIP (gfx942) and SYCL (xe) text of a few kernels, compared
with the files checked in under ``tests/backends/golden/``, so that any change in generated code
shows up in review as a diff of those files.

After an intended change to the lowering or a renderer, regenerate the files and review them::

    TILEVM_UPDATE_GOLDEN=1 python3 -m pytest tests/backends/test_golden_sources.py

Each source must also read well: 4-space indentation (no tabs, no trailing whitespace), the
kernel's own parameter names in its signature, and the kernel's Python lines as
``// line N: ...`` comments. Emission needs no toolchain and no device: every target names its
arch, and the arguments sit at 64-byte aligned addresses (alignment is specialized on).

The ``small_dot`` kernel below is part of the golden text through its line numbers: keep it at
the top of this file.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import os
import pathlib
import re
import textwrap
from typing import Any

import numpy as np
import pytest

import tilevm as tv
from tests.kernel_zoo import zoo_calls
from tilevm.runtime import registry


@tv.kernel
def small_dot(a: tv.Tensor[tv.f16], b: tv.Tensor[tv.f16], c: tv.Tensor[tv.f32]):
    acc = tv.zeros([64, 64], tv.f32)
    acc = tv.dot(tv.load(a, [0, 0], [64, 32]), tv.load(b, [0, 0], [32, 64]), acc)
    tv.store(c, acc, [0, 0])


HERE = pathlib.Path(__file__).resolve()
GOLDEN = HERE.parent / "golden"
UPDATE = "TILEVM_UPDATE_GOLDEN"
REGENERATE = f"{UPDATE}=1 python3 -m pytest {HERE.relative_to(HERE.parents[2])}"
TARGETS = {"cuda:sm_90a": "cu", "hip:gfx942": "hip", "sycl:xe": "cpp"}
ZOO = ("vector_add", "softmax", "quantized_matmul_i3")
DIFF_LINES = 60
# calls evaluated while specializing, which leave no code behind
COMPILE_TIME = {"num_threads", "cdiv"}


def _aligned(value: Any) -> Any:
    """A copy of a numpy array at a 64-byte aligned address (others as they are)."""
    if not isinstance(value, np.ndarray):
        return value
    buffer = np.empty(value.nbytes + 64, np.uint8)
    start = -buffer.ctypes.data % 64
    out = buffer[start : start + value.nbytes].view(value.dtype).reshape(value.shape)
    out[...] = value
    return out


def _cases() -> dict[str, tuple[tv.Kernel, tuple[Any, ...], dict[str, Any]]]:
    cases = {name: (k, args, kw) for name, k, args, kw in zoo_calls() if name in ZOO}
    f16, f32 = np.float16, np.float32
    dot_args = (np.zeros((64, 32), f16), np.zeros((32, 64), f16), np.zeros((64, 64), f32))
    cases["small_dot"] = (small_dot, dot_args, {})
    assert set(cases) == {*ZOO, "small_dot"}, "a golden kernel left the zoo"
    return cases


CASES = _cases()
PARAMS = [(name, target) for name in CASES for target in TARGETS]


def _emit(name: str, target: str) -> str:
    kernel, args, kwargs = CASES[name]
    return kernel.emit(target, *(_aligned(a) for a in args), **kwargs)


def _golden_path(name: str, target: str) -> pathlib.Path:
    return GOLDEN / f"{name}.{TARGETS[target]}"


@pytest.mark.parametrize("name, target", PARAMS)
def test_emitted_source_matches_golden(name: str, target: str):
    path = _golden_path(name, target)
    emitted = _emit(name, target)
    if os.environ.get(UPDATE):
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(emitted)
        return
    assert path.exists(), f"no golden file {path.name}: create it with `{REGENERATE}`"
    golden = path.read_text()
    if emitted != golden:
        old, new = golden.splitlines(), emitted.splitlines()
        diff = list(difflib.unified_diff(old, new, f"golden/{path.name}", "emitted", lineterm=""))
        shown = diff[:DIFF_LINES]
        if len(diff) > DIFF_LINES:
            shown.append(f"... {len(diff) - DIFF_LINES} more diff lines")
        how = f"If the change is intended, regenerate with `{REGENERATE}` and review the diff."
        shown_text = "\n".join(shown)
        pytest.fail(
            f"{name} for {target} differs from golden/{path.name}:\n{shown_text}\n\n{how}",
            pytrace=False,
        )


@pytest.mark.parametrize("name, target", PARAMS)
def test_emitted_source_is_indented_with_four_spaces(name: str, target: str):
    lines = _emit(name, target).splitlines()
    for number, line in enumerate(lines, 1):
        assert "\t" not in line, f"a tab on line {number}: {line!r}"
        assert line == line.rstrip(), f"trailing whitespace on line {number}: {line!r}"
    # a line that starts a statement is indented by a multiple of 4 everywhere (continuation
    # lines of a helper's call or asm statement may align with an opening parenthesis)
    for number, (before, line) in enumerate(zip(["{"] + lines, lines), 1):
        if _ends_statement(before):
            assert _indent(line) % 4 == 0, f"line {number} is indented by {_indent(line)}"
    # the kernel itself: parameters at 4, then 4 per open brace
    start = _signature_line(lines, CASES[name][0].__name__)
    depth = 0
    for number, line in enumerate(lines[start + 1 :], start + 2):
        code = line.split("//")[0]
        want = 4 if depth == 0 else 4 * (depth - code.lstrip().startswith("}"))
        if line.strip():
            assert _indent(line) == want, f"line {number} is indented by {_indent(line)}: {want}"
        depth += code.count("{") - code.count("}")
    assert depth == 0 and lines[-1] == "}"


@pytest.mark.parametrize("name, target", PARAMS)
def test_signature_has_the_kernel_parameter_names(name: str, target: str):
    kernel = CASES[name][0]
    lines = _emit(name, target).splitlines()
    start = _signature_line(lines, kernel.__name__)
    end = next(i for i in range(start, len(lines)) if lines[i].endswith("{"))
    signature = "\n".join(lines[start : end + 1])
    for param in kernel.signature.parameters.values():
        if param.annotation is not tv.constexpr:
            assert re.search(rf"\b{param.name}\b", signature), f"{param.name!r} not in signature"


@pytest.mark.parametrize("name, target", PARAMS)
def test_kernel_lines_are_comments_with_their_numbers(name: str, target: str):
    kernel = CASES[name][0]
    source = _emit(name, target)
    comments = {int(n): text for n, text in re.findall(r"^ *// line (\d+): (.*)$", source, re.M)}
    file_lines = pathlib.Path(inspect.getsourcefile(kernel.fn)).read_text().splitlines()
    for number, text in comments.items():
        assert file_lines[number - 1].strip() == text, f"line {number} is not {text!r}"
    missing = [n for n in _statement_lines(kernel) if n not in comments]
    assert not missing, f"kernel lines without a comment: {missing}"


@pytest.mark.parametrize("target", TARGETS)
def test_small_dot_runs_on_the_targets_matrix_atoms(target: str):
    lines = _emit("small_dot", target).splitlines()
    body = "\n".join(lines[_signature_line(lines, small_dot.__name__) :])
    atoms = registry.backend_for(target).target(target).atoms
    called = [atom.intrinsic for atom in atoms if re.search(rf"\b\w*{atom.intrinsic}\(", body)]
    assert bool(called) == bool(atoms), f"matrix atoms of {target} called: {called}"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _ends_statement(line: str) -> bool:
    text = line.strip()
    return not text or text.endswith(("{", "}", ";")) or text.startswith(("//", "#"))


def _signature_line(lines: list[str], name: str) -> int:
    """The line that opens the kernel's parameter list (``... name(``)."""
    return next(i for i, line in enumerate(lines) if line.endswith(f" {name}("))


def _statement_lines(kernel: tv.Kernel) -> list[int]:
    """File line numbers of the kernel's statements that use the language (``tv``), but for
    those whose only calls are answered while specializing (``tv.num_threads()``)."""
    lines, first = inspect.getsourcelines(kernel.fn)
    function = ast.parse(textwrap.dedent("".join(lines))).body[0]
    found = set()
    for statement in ast.walk(function):
        if not isinstance(statement, ast.stmt) or statement is function:
            continue
        nodes = [n for part in _own_parts(statement) for n in ast.walk(part)]
        uses = any(isinstance(n, ast.Name) and n.id == "tv" for n in nodes)
        calls = {_language_call(n) for n in nodes} - {None}
        if uses and not (calls and calls <= COMPILE_TIME):
            found.add(first + statement.lineno - 1)
    return sorted(found)


def _own_parts(statement: ast.stmt) -> list[ast.AST]:
    """What a statement's own line holds: all of a simple one, a compound one's header."""
    if isinstance(statement, (ast.For, ast.AsyncFor)):
        return [statement.target, statement.iter]
    if isinstance(statement, (ast.While, ast.If)):
        return [statement.test]
    if isinstance(statement, (ast.With, ast.AsyncWith)):
        return list(statement.items)
    return [statement]


def _language_call(node: ast.AST) -> str | None:
    """The name ``f`` of a call ``tv.f(...)``."""
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return None
    owner = node.func.value
    return node.func.attr if isinstance(owner, ast.Name) and owner.id == "tv" else None
