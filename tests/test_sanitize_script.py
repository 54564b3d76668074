"""benchmarks/sanitize.py without a GPU: the dry run enumerates the whole kernel zoo and the
exact commands; the grids it launches with cover every output element (checked on the CPU);
sanitizer output is attributed to the right case, a process that dies in a case is followed by
one for the cases after it; compute-sanitizer is found where the toolkit or pip put it; the
planted-bug kernels compile."""

from __future__ import annotations

import json
import os
import pathlib
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from benchmarks import sanitize_passes as passes
from benchmarks import sanitize_tools as tools
from benchmarks.sanitize import _selftest_checks
from benchmarks.sanitize_cases import GRIDS, cases, run_on_host
from benchmarks.sanitize_driver import format_indices, parse_indices
from benchmarks.sanitize_report import MARK, parse
from benchmarks.sanitize_selftest import Planted
from tests.kernel_zoo import zoo_calls

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "sanitize.py"


def _event(**fields) -> str:
    return MARK + json.dumps(fields)


# --- the dry run -----------------------------------------------------------------------------


def test_dry_run_lists_every_zoo_case_and_one_command_per_tool() -> None:
    out = subprocess.run([sys.executable, str(SCRIPT), "--dry-run"], capture_output=True,
                         text=True, timeout=300, cwd=ROOT)  # fmt: skip
    assert out.returncode == 0, out.stderr
    names = [call[0] for call in zoo_calls()]
    assert f"{len(names)} cases of the kernel zoo" in out.stdout
    listed = [ln.split()[1] for ln in out.stdout.splitlines() if ln.startswith("  ") and
              ln.split()[0].isdigit()]  # fmt: skip
    assert listed == names
    commands = {ln.split(":")[0].strip(): ln for ln in out.stdout.splitlines()
                if "sanitize_driver.py zoo" in ln}  # fmt: skip
    assert set(commands) == {"plain", *tools.TOOLS}
    last = len(names) - 1
    for tool in tools.TOOLS:
        line = commands[tool]
        assert f"--tool {tool}" in line and "--report-api-errors no" in line
        assert f"--cases 0-{last}" in line  # one process runs every case
    assert "--uninitialized-outputs" in commands["initcheck"]
    assert "compute-sanitizer" not in commands["plain"]
    for planted in ("out_of_bounds", "shared_race", "bad_syncwarp", "uninitialized_read"):
        assert planted in out.stdout


def test_every_zoo_kernel_has_a_grid_rule() -> None:
    kernels = {call[1].__name__ for call in zoo_calls()}
    assert kernels <= set(GRIDS), kernels - set(GRIDS)


# --- grids and outputs, on the CPU ------------------------------------------------------------


def _one_case_per_kernel():
    seen, picked = set(), []
    for case in cases():
        key = (case.kernel_name, case.outputs)  # prefill once per split kind (y or part)
        if key not in seen:
            seen.add(key)
            picked.append(case)
    return picked


@pytest.mark.parametrize("case", _one_case_per_kernel(), ids=lambda c: c.name)
def test_the_grid_writes_every_output_element(case, rng) -> None:
    assert case.outputs, "every zoo kernel writes an output"
    outcome = run_on_host(case, "cpu", rng)
    assert outcome.unwritten == {}


def test_a_grid_one_block_short_leaves_poison_behind(rng) -> None:
    case = next(c for c in cases() if c.name == "gemm_f16_small")
    case.grid = (case.grid[0] - 1,)
    outcome = run_on_host(case, "cpu", rng)
    assert outcome.unwritten == {"c": 8 * 8}  # the last block's tile: the ragged corner


def test_placeholders_get_random_data_and_outputs_poison(rng) -> None:
    from benchmarks.sanitize_cases import host_arguments

    case = next(c for c in cases() if c.name == "prefill_u4_f16_split1")
    host = host_arguments(case, rng)
    x, w, scales, zeros, bias, y, part = host
    assert np.isnan(y.astype(np.float32)).all()  # the output
    assert np.isfinite(x.astype(np.float32)).all() and np.abs(x.astype(np.float32)).max() > 0
    np.testing.assert_array_equal(w, case.args[1])  # real quantized data kept
    assert part is scales  # a stand-in argument stays one array
    again = host_arguments(case, np.random.default_rng(123))
    assert not np.array_equal(x, again[0])


# --- reading sanitizer output ------------------------------------------------------------------

MEMCHECK_RUN = "\n".join([
    "========= COMPUTE-SANITIZER",
    _event(event="device", name="NVIDIA H200", arch="sm_90"),
    _event(event="begin", index=0, name="vector_add"),
    _event(event="end", index=0, status="ok", unwritten={}, seconds=0.1),
    _event(event="begin", index=6, name="gemm_f16_small"),
    "========= Invalid __global__ write of size 4 bytes",
    "=========     at gemm_kernel+0x160",
    "=========     by thread (0,0,0) in block (0,0,0)",
    "=========     Address 0x7f6510c00fa0 is out of bounds",
    "=========",
    "=========  Unused __global__ memory in allocation 0x7fed9f400000 of size 100 bytes",
    "=========     Not written 80 bytes at offset 0x14 (0x7fed9f400014)",
    "=========",
    _event(event="end", index=6, status="ok", unwritten={"c": 3}, seconds=0.2),
    _event(event="begin", index=44, name="splitk_sum_f16"),
    "========= Invalid __shared__ read of size 16 bytes",
    "=========     at gemm_kernel+0x1a0",  # late: the previous case's kernel
    "=========",
    "Traceback lines of the application are its own",
    _event(event="end", index=44, status="ok", unwritten={}, seconds=0.3),
    _event(event="finished"),
    "========= ERROR SUMMARY: 3 errors",
])  # fmt: skip


def test_reports_belong_to_the_case_they_appear_in() -> None:
    run = parse(MEMCHECK_RUN, {0: "vector_add", 6: "gemm_kernel", 44: "splitk_sum"})
    assert run.finished and run.summary == 3 and run.device["arch"] == "sm_90"
    assert [len(run.cases[i].records) for i in (0, 6, 44)] == [0, 3, 0]
    first = run.cases[6].records[0]
    assert first.title == "Invalid __global__ write of size 4 bytes" and len(first.lines) == 4
    assert run.cases[6].records[1].title.startswith("Unused __global__ memory")
    assert run.cases[6].unwritten == {"c": 3}
    assert run.reported == 3 and run.unprinted == 0 and not run.before and not run.after


def test_without_kernel_names_the_order_decides() -> None:
    run = parse(MEMCHECK_RUN)
    assert [len(run.cases[i].records) for i in (0, 6, 44)] == [0, 2, 1]


def test_racecheck_summary_and_reports_outside_cases() -> None:
    output = "\n".join([
        "========= COMPUTE-SANITIZER",
        "========= Error: Race reported between Write access at softmax+0xf0 in k.cu:40",
        "=========     and Read access at softmax+0x280 in k.cu:46 [4 hazards]",
        "=========",
        _event(event="begin", index=1, name="softmax"),
        "========= Warning: Race reported between Write access at softmax+0xf0",
        "=========     and Read access at softmax+0x290 [2 hazards]",
        _event(event="end", index=1, status="ok", seconds=0.1),
        _event(event="finished"),
        "========= RACECHECK SUMMARY: 1,502 hazards displayed (1,501 errors, 1 warning)",
    ])  # fmt: skip
    run = parse(output)
    assert run.summary == 1502
    assert len(run.before) == 1 and len(run.cases[1].records) == 1
    assert run.unprinted == 1500  # past the print limit: counted, not shown


def test_a_run_without_a_summary_or_with_a_dead_case_is_visible() -> None:
    output = "\n".join([
        _event(event="begin", index=3, name="quantized_matmul_i3"),
        "========= Error: process didn't terminate successfully",
    ])  # fmt: skip
    run = parse(output)
    assert run.summary is None and not run.finished
    assert run.last_begun().index == 3
    assert run.process_lines == ["Error: process didn't terminate successfully"]


# --- a pass: processes, restarts, judging ------------------------------------------------------

FAKE_DRIVER = textwrap.dedent(
    """
    import json, os, sys
    MARK = {mark!r}
    cases = [int(c) for c in sys.argv[1].split(",")]
    print("========= COMPUTE-SANITIZER", flush=True)
    for i in cases:
        print(MARK + json.dumps({{"event": "begin", "index": i, "name": f"case{{i}}"}}), flush=True)
        if i == 2:
            print("========= Invalid __global__ read of size 4 bytes", flush=True)
            print("=========     at kernel2+0x10", flush=True)
            os._exit(1)  # the process dies inside case 2
        if i == 4:
            print(MARK + json.dumps({{"event": "end", "index": i, "status": "fail",
                                      "message": "CudaRuntimeError: boom"}}), flush=True)
            print("========= ERROR SUMMARY: 0 errors", flush=True)
            sys.exit(3)
        print(MARK + json.dumps({{"event": "end", "index": i, "status": "ok",
                                  "unwritten": {{}}, "seconds": 0.0}}), flush=True)
    print(MARK + json.dumps({{"event": "finished"}}), flush=True)
    print("========= ERROR SUMMARY: 0 errors", flush=True)
    """
)


def test_a_pass_restarts_after_the_case_a_process_stopped_in(tmp_path) -> None:
    script = tmp_path / "fake_driver.py"
    script.write_text(FAKE_DRIVER.format(mark=MARK))
    kernels = {i: f"kernel{i}" for i in range(7)}

    def command(indices):
        return [sys.executable, str(script), ",".join(map(str, indices))]

    import time

    result = passes.run_pass("memcheck", list(range(7)), kernels, command, time.monotonic() + 120)
    assert len(result.commands) == 3  # 0-6, then 3-6 after the crash, then 5-6 after the failure
    assert [result.cases[i].status for i in range(7)] == [
        "ok", "ok", "crashed", "ok", "fail", "ok", "ok"]  # fmt: skip
    assert result.errors(2) == 1 and result.total == 1
    assert [passes.cell(result, i) for i in (1, 2, 4)] == ["0", "crash", "fail"]
    assert result.problems == ["process 1: no summary line from compute-sanitizer (exit 1)"]
    assert not passes.pass_clean(result, list(range(7)))
    clean = passes.run_pass("memcheck", [0, 1], kernels, command, time.monotonic() + 120)
    assert passes.pass_clean(clean, [0, 1]) and clean.total == 0


def test_output_keeps_the_order_it_was_written_in() -> None:
    # like C's stdio (and so compute-sanitizer's output): block-buffered into a pipe,
    # line-buffered into a terminal; a second process writes in between
    code = textwrap.dedent(
        """\
        import subprocess
        out = open(1, "w", closefd=False)
        out.write("one\\n")
        subprocess.run(["echo", "two"])
        out.write("three\\n")
        out.flush()
        """
    )
    text, status, timed_out = passes._run([sys.executable, "-c", code], 60)
    assert (text.split(), status, timed_out) == (["one", "two", "three"], 0, False)


def test_a_process_past_its_time_is_stopped() -> None:
    import time

    start = time.monotonic()
    text, status, timed_out = passes._run([sys.executable, "-c", "import time; time.sleep(60)"], 1)
    assert timed_out and status != 0 and time.monotonic() - start < 30


def test_the_selftest_needs_the_planted_bug_reported_in_its_own_kernel() -> None:
    plan = [Planted("clean_before", "clean_copy", False),
            Planted("out_of_bounds", "planted_out_of_bounds", True)]  # fmt: skip
    names = {0: "clean_copy", 1: "planted_out_of_bounds"}

    def selftest(report_line: str) -> list[dict]:
        output = "\n".join([
            _event(event="begin", index=0, name="clean_before"),
            _event(event="end", index=0, status="ok", seconds=0.0),
            _event(event="begin", index=1, name="out_of_bounds"),
            report_line,
            _event(event="end", index=1, status="ok", seconds=0.0),
            _event(event="finished"),
            "========= ERROR SUMMARY: 1 error",
        ])  # fmt: skip
        result = passes.PassResult("memcheck")
        proc = parse(output, names)
        result.processes.append(proc)
        result.cases.update(proc.cases)
        return _selftest_checks({"memcheck": result}, {"memcheck": plan})

    found = selftest(
        "========= Invalid __global__ write of size 4 bytes at planted_out_of_bounds+0x70"
    )
    assert [c["ok"] for c in found] == [True, True]
    elsewhere = selftest("========= Invalid __global__ write of size 4 bytes at some_other+0x70")
    assert [c["ok"] for c in elsewhere] == [True, False]


# --- the whole pipeline, on the CPU under a stand-in sanitizer ---------------------------------

STAND_IN = textwrap.dedent(
    """\
    #!{python}
    # Stands in for compute-sanitizer: knows a few options, runs the application, and reports
    # one race in the softmax case when it is racecheck.
    import subprocess, sys
    args = sys.argv[1:]
    if args == ["--help"]:
        for option in ("tool", "report-api-errors", "error-exitcode", "print-limit"):
            print(f"  --{{option}} arg")
        sys.exit(0)
    tool = args[args.index("--tool") + 1]
    start = next(i for i, a in enumerate(args) if a.endswith("sanitize_driver.py")) - 1
    print("========= COMPUTE-SANITIZER", flush=True)
    app = subprocess.Popen(args[start:], stdout=subprocess.PIPE, text=True)
    found = 0
    for line in app.stdout:
        print(line, end="", flush=True)
        if tool == "racecheck" and '"begin"' in line and '"softmax"' in line:
            print("========= Error: Race reported between Write access at softmax+0x10", flush=True)
            print("=========     and Read access at softmax+0x20 [2 hazards]", flush=True)
            found += 1
    app.wait()
    if tool == "racecheck":
        print(f"========= RACECHECK SUMMARY: {{found}} hazards displayed ({{found}} errors)")
    else:
        print(f"========= ERROR SUMMARY: {{found}} errors")
    sys.exit(86 if found else app.returncode)
    """
)


def test_the_pipeline_runs_every_tool_and_reports_what_it_finds(tmp_path) -> None:
    stand_in = tmp_path / "compute-sanitizer"
    stand_in.write_text(STAND_IN.format(python=sys.executable))
    stand_in.chmod(0o755)
    out = tmp_path / "sanitize.json"
    cmd = [sys.executable, str(SCRIPT), "--device", "cpu", "--sanitizer", str(stand_in),
           "--skip-selftest", "--only", "^(vector_add|softmax)$", "--jobs", "2",
           "--out", str(out)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 1, done.stdout + done.stderr  # the race makes the run fail
    report = json.loads(out.read_text())
    assert not report["ok"] and report["errors"] == 1
    results = {k["name"]: k["results"] for k in report["kernels"]}
    assert set(results) == {"vector_add", "softmax"}
    assert results["softmax"]["racecheck"]["errors"] == 1
    assert results["softmax"]["racecheck"]["reports"][0].startswith("Error: Race reported")
    for tool in ("memcheck", "synccheck", "initcheck"):
        assert results["softmax"][tool] == {
            "status": "ok",
            "errors": 0,
            "seconds": results["softmax"][tool]["seconds"],
        }
    assert results["vector_add"]["plain"]["status"] == "ok"
    assert report["passes"]["racecheck"]["summary_lines"] == [1]
    assert "--padding" in report["sanitizer"]["options_not_supported"]
    table = done.stdout
    assert "softmax" in table and "FAILED" in table
    row = next(ln for ln in table.splitlines() if ln.startswith("softmax"))
    assert row.split()[1:] == ["ok", "0", "1", "0", "0"]
    log = out.with_suffix(".log").read_text()
    assert "### racecheck:" in log and "Race reported" in log


# --- finding compute-sanitizer -----------------------------------------------------------------


def _executable(path: pathlib.Path) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\necho 'Version 2099.1'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_compute_sanitizer_is_found_in_a_toolkit_or_the_pip_package(tmp_path, monkeypatch):
    monkeypatch.setattr(tools, "_nvidia_package_dirs", lambda: [str(tmp_path / "site/nvidia")])
    monkeypatch.setattr(tools, "toolkit_roots", lambda: [])  # none of this machine's toolkits
    bare = {"PATH": str(tmp_path / "empty")}
    assert tools.find(env=bare) is None
    pip_binary = _executable(tmp_path / "site/nvidia/cu13/bin/compute-sanitizer")
    assert tools.find(env=bare) == pip_binary
    toolkit = _executable(tmp_path / "cuda-13.0/bin/compute-sanitizer")
    assert tools.find(env={**bare, "CUDA_HOME": str(tmp_path / "cuda-13.0")}) == toolkit
    on_path = _executable(tmp_path / "bin/compute-sanitizer")
    assert tools.find(env={"PATH": str(tmp_path / "bin")}) == on_path
    assert tools.find(env={**bare, "COMPUTE_SANITIZER": str(toolkit)}) == toolkit


def test_options_an_older_sanitizer_lacks_are_left_out() -> None:
    help_text = textwrap.dedent(
        """\
          -h [ --help ]                Produce this help message.
          --tool arg (=memcheck)       Set the tool to use.
          --report-api-errors arg      Print errors if any API call fails.
          --print-limit arg (=100)     Stop printing errors.
          --error-exitcode arg         Exit code on errors.
          -q [ --quiet ]               Quiet.
        """
    )
    names = tools.option_names(help_text)
    assert {"help", "tool", "report-api-errors", "print-limit", "quiet"} <= names
    sanitizer = tools.Sanitizer(pathlib.Path("cs"), "old", names)
    cmd = sanitizer.command("memcheck", slot=2)
    assert cmd[:5] == ["cs", "--tool", "memcheck", "--report-api-errors", "no"]
    assert "--padding" not in cmd and "--port" not in cmd
    assert {"--padding", "--destroy-on-device-error", "--port"} <= sanitizer.dropped


def test_the_missing_sanitizer_hint_names_the_pip_package() -> None:
    hint = tools.install_hint("13.0")
    assert "nvidia-cuda-sanitizer-api==13.0.*" in hint and "--install" in hint


def test_case_lists_round_trip() -> None:
    assert parse_indices("0-3,7,9-10") == [0, 1, 2, 3, 7, 9, 10]
    assert format_indices([9, 0, 1, 2, 3, 7, 10]) == "0-3,7,9-10"


# --- the planted bugs ----------------------------------------------------------------------------


def test_the_planted_bug_kernels_compile_for_hopper() -> None:
    from benchmarks.sanitize_selftest import SOURCE, compile_cubin
    from tilevm.backends.cuda import nvrtc

    try:
        nvrtc.nvrtc_version()
    except nvrtc.CudaUnavailable:
        if os.environ.get("CI"):
            raise
        pytest.skip("NVRTC is not installed here")
    cubin = compile_cubin("sm_90a")
    assert cubin[:4] == b"\x7fELF"
    for kernel in ("clean_copy", "planted_out_of_bounds", "planted_shared_race",
                   "planted_bad_syncwarp", "planted_uninitialized_read",
                   "planted_uninitialized_shared"):  # fmt: skip
        assert f'extern "C" __global__ void {kernel}(' in SOURCE
        assert kernel.encode() in cubin
