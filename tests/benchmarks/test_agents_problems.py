"""benchmarks/agents: every problem's solution passes the harness's check on the CPU (its
small ``DEVICE_SHAPES``), and run.py's table renders and reports failures in its exit status."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

RUN_PY = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "agents" / "run.py"


def _load_run():
    spec = importlib.util.spec_from_file_location("agents_run", RUN_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


run = _load_run()
NAMES = [p.stem for p in run.problem_paths(None)]

BROKEN = '''
import numpy as np
import tilevm as tv

CATEGORY = "broken"
SHAPES = [(3, 40)]


@tv.kernel
def half_done(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32]):
    row = tv.block_id(0)
    tv.store(out, tv.load(x, [row, 0], [1, 32]), [row, 0])  # columns 32.. never written


def make_inputs(shape, device, rng):
    return (rng.standard_normal(shape).astype(np.float32),)


def outputs(x):
    return [(x.shape, "float32")]


def solution(x, out, device):
    half_done[x.shape[0],](x, out, device=device)


def reference(x):
    return np.asarray(x, dtype=np.float64).astype(np.float32)
'''


def test_there_are_at_least_fourteen_problems_in_distinct_categories():
    assert len(NAMES) >= 14
    categories = {_category(n) for n in NAMES}
    assert len(categories) >= 5


def _category(name: str) -> str:
    text = (run.PROBLEMS / f"{name}.py").read_text()
    return text.split("CATEGORY = ", 1)[1].splitlines()[0]


@pytest.mark.parametrize("name", NAMES)
def test_the_solution_passes_check_on_the_cpu(name):
    args = run.parse(["--device", "cpu"])
    (result,) = [run.run_problem(p, ["cpu"], args) for p in run.problem_paths([name])]
    assert not result.report.errors, result.report.errors
    assert result.report.ok, "\n".join(run.failures([result]))
    assert len(result.report.cases) >= 3  # odd shapes included
    for case in result.report.cases:
        assert case.calls == 2 and case.launches >= 2  # fresh inputs twice, kernels ran
        assert all(o["mismatches"] == 0 for o in case.outputs)


def test_the_check_table_has_a_row_per_problem_and_device():
    args = run.parse(["--device", "cpu"])
    results = [run.run_problem(p, ["cpu"], args) for p in run.problem_paths(["rmsnorm", "gemv"])]
    lines = run.table(results, bench=False).splitlines()
    assert lines[0] == "| " + " | ".join(run.HEADER) + " |"
    assert lines[1].startswith("| --- |")
    assert lines[2].startswith("| rmsnorm | normalization | cpu | 4 shapes | 4/4 |")
    assert lines[3].startswith("| gemv | matmul | cpu |")


def test_the_bench_table_shows_both_medians_and_the_speedup():
    args = run.parse(["--bench", "--device", "cpu", "--runs", "2", "--warmup", "0"])
    (result,) = [run.run_problem(p, ["cpu"], args) for p in run.problem_paths(["swiglu"])]
    rows = run.table([result], bench=True).splitlines()[2:]
    assert len(rows) == len(result.report.cases) == 4
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[:3] == ["swiglu", "elementwise", "cpu"] and cells[4] == "ok"
        assert cells[5].endswith("s") and cells[6].endswith("s")  # torch CPU is timed too
        assert cells[7].endswith("x") and float(cells[7][:-1]) > 0


def test_a_failing_problem_makes_the_exit_status_one(tmp_path, monkeypatch, capsys):
    (tmp_path / "broken.py").write_text(BROKEN)
    monkeypatch.setattr(run, "PROBLEMS", tmp_path)
    assert run.main(["--device", "cpu"]) == 1
    out = capsys.readouterr().out
    assert "| broken | broken | cpu | 1 shapes | 0/1 FAIL |" in out
    assert "broken cpu 3x40: mismatch" in out


def test_an_unknown_problem_or_device_is_refused(capsys):
    with pytest.raises(SystemExit, match="no problem nope"):
        run.main(["--problems", "nope", "--device", "cpu"])
    assert run.main(["--device", "cuda:7"]) == 2
    assert "no device cuda:7 here" in capsys.readouterr().out
