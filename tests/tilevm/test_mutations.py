"""Bad kernels made by mutation: an argument of a call in a working kernel replaced by something
else (a string, None, a tuple, a dtype, a tensor argument, a huge or negative number, ...).
Whatever the mutant does, on the interpreter and on the CPU, it either runs or raises a
TilevmError: no raw Python, numpy or LLVM exception escapes (and a crash takes the test's
worker down, which fails the run)."""

from __future__ import annotations

import importlib.util
import random
import re
import sys

import numpy as np
import pytest

import tilevm as tv

ELEMENTWISE = """\
import tilevm as tv


@tv.kernel
def k(x: tv.Tensor, y: tv.Tensor, out: tv.Tensor, n: tv.i32, BLOCK: tv.constexpr):
    start = tv.block_id(0) * BLOCK
    a = tv.load(x, [start], [BLOCK], other=0.0)
    b = tv.load(y, [start], [BLOCK])
    c = tv.where(tv.arange(0, BLOCK) + start < n, a * b + 1.0, 0.0)
    s = tv.sum(c, axis=0)
    m = tv.max(a, axis=0)
    e = tv.exp(c - m)
    t = tv.reshape(e, [BLOCK // 2, 2])
    u = tv.sum(t, axis=1)
    tv.store(out, c + s, [start])
    tv.store(out, tv.zeros([BLOCK // 2], tv.f32) + u, [start])
"""

MATRIX = """\
import tilevm as tv


@tv.kernel
def k(x: tv.Tensor, y: tv.Tensor, out: tv.Tensor, n: tv.i32, BLOCK: tv.constexpr):
    a = tv.load(x, [0, 0], [16, 16]).to(tv.f16)
    b = tv.load(y, [0, 0], [16, 16]).to(tv.f16)
    s = tv.shared([16, 16], tv.f16)
    tv.store_shared(s, a)
    tv.sync()
    a2 = tv.load_shared(s, [0, 0], [16, 16])
    acc = tv.zeros([16, 16], tv.f32)
    for i in tv.range(0, 2):
        acc = tv.dot(a2, b, acc)
    for j in tv.static_range(2):
        acc = acc * 1.0
    tv.atomic_add(out, acc, [0, 0])
    tv.store(out, tv.max(acc, axis=1)[:, None] + acc, [0, 0])
"""

SCANS_AND_MATH = """\
import tilevm as tv


@tv.func
def larger(p, q):
    return tv.maximum(p, q)


@tv.kernel
def k(x: tv.Tensor, y: tv.Tensor, out: tv.Tensor, n: int, BLOCK: tv.constexpr):
    start = tv.block_id(0) * BLOCK
    a = tv.load(x, [start], [BLOCK], other=0.0)
    c = tv.cumsum(a, axis=0)
    m = tv.associative_scan(a, 0, larger)
    e = tv.erf(a) + tv.sigmoid(c) + tv.pow(a, 2.0)
    f = tv.fdiv(e, m + 2.0, approx=True) + tv.exp2(a, approx=True)
    s = tv.sum(f, axis=0, dtype=tv.f64)
    b = tv.view(tv.load(y, [start], [BLOCK]), dtype=tv.u8, shape=[BLOCK * 4])
    tv.store(out, f + s.to(tv.f32) + tv.sum(b.to(tv.f32), axis=0), [start])
"""

REPLACEMENTS = ["'s'", "None", "(1, 2)", "[]", "-1", "0", "3.5", "2**40", "tv.f16", "tv.i3",
                "tv.layouts.local(2)", "x", "a", "True", "{}", "float('nan')", "1e300",
                "BLOCK * 1000000"]  # fmt: skip
HUGE = ("2**40", "BLOCK * 1000000", "1e300")
ARGUMENT = re.compile(r"(?<=[\(\[, ])[A-Za-z0-9_.\*\+\- ]+(?=[\)\],])")


def mutants(source: str) -> list[str]:
    """Every argument of every call in the kernel's body replaced by every replacement."""
    lines = source.splitlines()
    out: list[str] = []
    for i, line in enumerate(lines):
        if not (line.startswith("    ") and "(" in line):
            continue
        for a, b in (m.span() for m in ARGUMENT.finditer(line)):
            for replacement in REPLACEMENTS:
                if line.lstrip().startswith("for ") and replacement in HUGE:
                    continue  # a valid loop of 2**40 steps: it would run, for hours
                changed = line[:a] + replacement + line[b:]
                text = "\n".join([*lines[:i], changed, *lines[i + 1 :]]) + "\n"
                try:
                    compile(text, "<mutant>", "exec")
                except SyntaxError:
                    continue  # not Python: nothing for tilevm to judge
                out.append(text)
    return out


BASES = (("elementwise", ELEMENTWISE), ("matrix", MATRIX), ("scans_and_math", SCANS_AND_MATH))
CASES = [(name, i, src) for name, base in BASES for i, src in enumerate(mutants(base))]
_ON_CPU = {CASES[i][:2] for i in random.Random(0).sample(range(len(CASES)), 24)}  # a sample


@pytest.mark.parametrize(("name", "index", "source"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_a_mutant_runs_or_raises_a_tilevm_error(name: str, index: int, source: str, tmp_path):
    path = tmp_path / f"mutant_{name}_{index}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    shape = (16, 16) if name == "matrix" else (256,)
    for device in ("interp", "cpu") if (name, index) in _ON_CPU else ("interp",):
        x = np.random.default_rng(index).random(shape).astype(np.float32)
        out = np.full(shape, np.nan, np.float32)
        try:
            module.k[2,](x, x.copy(), out, 200, BLOCK=128, device=device)
        except tv.TilevmError:
            pass  # a precise error: what a bad kernel should get
    sys.modules.pop(path.stem, None)
