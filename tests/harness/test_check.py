"""``python -m tilevm check``: honest solutions pass; each cheat is caught by its defense."""

from __future__ import annotations

import pytest

from tests.harness.helpers import EXAMPLES, failure_codes, harness
from tilevm.backends.cuda import driver

CPU = ("--device", "cpu")


@pytest.mark.parametrize("problem", ["honest", "honest_given", "declared_downgrade", "packed"])
def test_honest_solutions_pass_on_every_cpu_executor(capsys, problem):
    status, report = harness(capsys, "check", problem, *CPU, "--device", "interp")
    assert status == 0, report
    assert report["ok"] and not report["errors"]
    assert {c["device"] for c in report["cases"]} == {"cpu", "interp"}
    for case in report["cases"]:
        assert case["calls"] == 2 and case["launches"] == 2
        assert case["outputs"][0]["mismatches"] == 0


@pytest.mark.parametrize(
    ("problem", "code"),
    [
        ("noop_kernel", "mismatch"),  # the poisoned output stays NaN
        ("no_launch", "no-launch"),
        ("patched_timer", "patched"),
        ("memoized", "stale-output"),
        ("lazy_output", "output-type"),
        ("lazy_torch_output", "output-type"),
        ("calls_reference", "reference-called"),
        ("downgrade", "dtype"),
        ("modifies_input", "input-modified"),
        ("packed_modifies_input", "input-modified"),
        ("wrong_shape", "shape"),
        ("raises", "raised"),
    ],
)
def test_each_cheat_is_caught(capsys, problem, code):
    status, report = harness(capsys, "check", problem, *CPU)
    assert status == 1
    assert not report["ok"]
    assert code in failure_codes(report), report


def test_a_noop_kernel_leaves_the_poison_and_the_worst_element_is_shown(capsys):
    _, report = harness(capsys, "check", "noop_kernel", *CPU)
    worst = report["cases"][-1]["failures"][0]["worst"]
    assert worst["got"] == "nan" and isinstance(worst["expected"], float)
    assert worst["index"] and 0 <= worst["index"][0] < 1000


def test_a_memoized_output_fails_the_second_call(capsys):
    _, report = harness(capsys, "check", "memoized", *CPU)
    for case in report["cases"]:
        assert case["calls"] == 2
        assert {"mismatch", "stale-output"} <= {f["code"] for f in case["failures"]}


def test_a_module_that_patches_at_import_fails_everything(capsys):
    status, report = harness(capsys, "check", "patched_at_import", *CPU)
    assert status == 1
    assert report["errors"][0]["code"] == "patched"
    assert "numpy.abs" in report["errors"][0]["message"]
    assert failure_codes(report) == {"patched"}


def test_the_seed_is_recorded_and_replays_the_same_inputs(capsys):
    _, first = harness(capsys, "check", "noop_kernel", *CPU)
    _, again = harness(capsys, "check", "noop_kernel", *CPU, "--seed", str(first["seed"]))
    _, other = harness(capsys, "check", "noop_kernel", *CPU)
    worst = [r["cases"][-1]["failures"][0]["worst"] for r in (first, again, other)]
    assert worst[0] == worst[1]
    assert first["seed"] != other["seed"] and worst[0]["expected"] != worst[2]["expected"]


@pytest.mark.parametrize("name", ["softmax_rows", "gemv"])
def test_the_example_problems_pass(capsys, name):
    status, report = harness(capsys, "check", str(EXAMPLES / f"{name}.py"), *CPU,
                             "--device", "interp", "--device", "cpu:amd")  # fmt: skip
    assert status == 0, report
    shapes = {tuple(c["shape"]) for c in report["cases"] if c["device"] == "interp"}
    assert shapes and all(s[0] * s[1] <= 2000 for s in shapes)  # DEVICE_SHAPES limits interp


def test_bench_times_on_the_cpu_with_perf_counter_and_verifies_each_call(capsys):
    status, report = harness(capsys, "bench", "torch_reference", *CPU, "--runs", "3",
                             "--warmup", "1")  # fmt: skip
    assert status == 0, report
    for case in report["cases"]:
        timing = case["timing"]
        assert timing["clock"] == "perf_counter" and timing["runs"] == 3
        assert 0 < timing["min_s"] <= timing["median_s"] <= timing["max_s"]
        assert timing["reference_median_s"] > 0  # a torch reference is timed beside it
        assert case["calls"] == 4 and case["launches"] == 4


def test_bench_fails_a_cheat_and_reports_no_timing(capsys):
    status, report = harness(capsys, "bench", "no_launch", *CPU, "--runs", "2")
    assert status == 1 and all(c["timing"] is None for c in report["cases"])


def test_a_patched_timer_does_not_change_the_harness_clock(capsys):
    _, report = harness(capsys, "bench", "patched_timer", *CPU, "--runs", "2", "--warmup", "0")
    case = report["cases"][0]
    assert "patched" in {f["code"] for f in case["failures"]}


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("def make_inputs(shape, device, rng):\n    return ()\n", "problem-module"),  # no SHAPES
        ("SHAPES = []\n", "problem-module"),
        ("SHAPES = [(1,)]\nTOLERANCE = {'atol': -1}\n", "problem-module"),
    ],
)
def test_a_broken_problem_module_exits_2_with_its_code(capsys, tmp_path, source, code):
    path = tmp_path / "broken.py"
    path.write_text(source)
    status, report = harness(capsys, "check", str(path))
    assert status == 2 and report["errors"][0]["code"] == code and not report["ok"]


def test_inputs_of_a_subclass_are_a_problem_error(capsys, tmp_path):
    path = tmp_path / "sub_inputs.py"
    path.write_text("from tests.harness.problems.honest import *\nimport numpy as np\n"
                    "class Sub(np.ndarray): pass\n"
                    "def make_inputs(shape, device, rng):\n"
                    "    x = rng.standard_normal(shape).astype(np.float32)\n"
                    "    return (x.view(Sub),)\n")  # fmt: skip
    status, report = harness(capsys, "check", str(path), *CPU)
    assert status == 1 and failure_codes(report) == {"problem-error"}
    assert "problem-inputs" in report["cases"][0]["failures"][0]["message"]


def test_an_unknown_device_exits_2(capsys):
    status, report = harness(capsys, "check", "honest", "--device", "nonesuch")
    assert status == 2 and report["errors"][0]["code"] == "no-device"


def test_the_table_is_readable(capsys):
    from tilevm.__main__ import main

    assert main(["check", str(EXAMPLES / "gemv.py"), "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "device" in text and "max abs err" in text and "OK: 4 of 4 cases passed" in text


def test_the_launch_counter_counts_non_empty_launches():
    import numpy as np

    from tests.harness.problems.base import affine
    from tilevm.runtime.launches import launch_count

    x = np.ones(8, np.float32)
    before = launch_count()
    affine[1,](x, np.empty_like(x))  # the full path, then the repeat path
    affine[1,](x, np.empty_like(x))
    affine[0,](x, np.empty_like(x))  # an empty grid launches nothing
    assert launch_count() - before == 2


@pytest.mark.gpu
@pytest.mark.skipif(not driver.available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("command", ["check", "bench"])
def test_work_on_another_stream_is_caught_on_the_gpu(capsys, command):
    status, report = harness(capsys, command, "side_stream", "--device", "cuda:0",
                             "--runs", "3") if command == "bench" else harness(
        capsys, command, "side_stream", "--device", "cuda:0")  # fmt: skip
    assert status == 1 and "stream-escape" in failure_codes(report)


@pytest.mark.gpu
@pytest.mark.skipif(not driver.available(), reason="needs a CUDA GPU")
def test_honest_gpu_solutions_pass_and_are_timed_with_events(capsys):
    status, report = harness(capsys, "bench", "honest_given", "--device", "cuda:0",
                             "--runs", "5")  # fmt: skip
    assert status == 0, report
    assert all(c["timing"]["clock"] == "cuda-events" for c in report["cases"])
    status, report = harness(capsys, "check", str(EXAMPLES / "softmax_rows.py"),
                             "--device", "cuda:0")  # fmt: skip
    assert status == 0, report
