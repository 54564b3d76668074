"""``python -m tilevm check``: honest solutions pass; each cheat is caught by its defense."""

from __future__ import annotations

import pytest

from tests.harness.helpers import EXAMPLES, failure_codes, harness

CPU = ("--device", "cpu")


@pytest.mark.parametrize("problem", ["honest", "honest_given", "declared_downgrade"])
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
