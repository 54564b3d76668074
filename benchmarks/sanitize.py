"""Every example and stdlib kernel (the kernel zoo) on the GPU under compute-sanitizer's
memcheck, racecheck, synccheck and initcheck, on fresh random inputs: a table of the reports
each tool makes in each kernel (0 expected), a JSON summary, exit status 1 when anything is
reported.

    python3 benchmarks/sanitize.py --install --out sanitize.json   (on a CUDA GPU)
    python3 benchmarks/sanitize.py --dry-run      (anywhere: the cases and the exact commands)
    python3 benchmarks/sanitize.py --selftest     (only the planted bugs)

Needs, on the GPU machine: compute-sanitizer (the CUDA toolkit's, or the pip package
nvidia-cuda-sanitizer-api matching the driver's CUDA version), torch with CUDA, cuda-python
with NVRTC, and tilevm importable (``--install`` installs the last one editable, and the
sanitizer from a ``.whl`` folder in the repository or the registry, when they are missing).
The JSON goes to ``--out``, the raw output of every process beside it (``.log``).

How: one process per tool launches every case once (``sanitize_driver.py``), so each tool
starts once; the tools run side by side (``--jobs``). Beside them the same driver runs every
case once with no sanitizer (the ``plain`` column, a baseline), and first each tool's selftest
checks that it reports a planted bug (an out-of-bounds write, a shared-memory
race, a bad ``__syncwarp`` mask, reads of never-written global and shared memory): without
that, "0 errors" would prove nothing. CUDA API errors are not reported (``--report-api-errors
no``): torch and cuda-python probe the driver and get expected failures, and tilevm checks every
driver call itself. Every device-side report counts, also one outside any kernel of the zoo.

initcheck runs with the outputs left uninitialized and shared memory checked too: it reports
a kernel reading shared memory no thread wrote (a pipeline stage read before its copy, a
masked tile edge that was never filled) and an output element the kernel never wrote (when
the output is read back); the other tools see NaN-poisoned outputs, and the driver counts
the elements still NaN after the launch (``*`` in the table).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import sanitize_passes as passes  # noqa: E402
from benchmarks import sanitize_tools as tools  # noqa: E402
from benchmarks.sanitize_driver import format_indices  # noqa: E402

DRIVER = Path(__file__).resolve().parent / "sanitize_driver.py"
DEFAULT_BUDGET = 450.0  # seconds for the whole run: inside ~8 minutes with start-up
REEXEC = "TILEVM_SANITIZE_REEXEC"  # set when the script restarted itself after installing tilevm
MAX_FINDINGS = 30  # lines of findings printed under the table (the JSON and the log have all)
SETTLE = "0.2"  # seconds after each sanitized launch for the sanitizer's reports to print


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    started = time.monotonic()
    deadline = started + args.budget
    if not _tilevm_importable(args.install):
        return 2
    from benchmarks.sanitize_cases import UnknownKernel, cases

    try:
        every = cases()
    except UnknownKernel as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    chosen = [c for c in every if re.search(args.only, c.name)]
    selected = [t for t in args.tools.split(",") if t]
    bad = [t for t in selected if t not in tools.TOOLS]
    if bad or not chosen:
        print(f"error: unknown tools {bad} (known: {', '.join(tools.TOOLS)}) or no case matches "
              f"--only {args.only!r}", file=sys.stderr)  # fmt: skip
        return 2
    sanitizer = _sanitizer(args)
    if args.dry_run:
        return _dry_run(args, chosen, selected, sanitizer)
    if sanitizer is None:
        return 2
    from tilevm.backends.cuda import driver

    if args.device == "cuda" and not driver.available():
        print(f"error: no CUDA GPU here ({driver.unavailable()}); --dry-run shows the commands",
              file=sys.stderr)  # fmt: skip
        return 2
    run = Run(args, chosen, selected, sanitizer, deadline)
    report = run.execute()
    report["seconds"] = round(time.monotonic() - started, 1)
    _write(args.out, report, run.log)
    return 0 if report["ok"] else 1


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="the JSON summary (the raw log goes beside it)")
    parser.add_argument("--tools", default=",".join(tools.TOOLS))
    parser.add_argument("--only", default="", help="a regex: only the zoo cases it matches")
    parser.add_argument("--dry-run", action="store_true", help="list cases and commands; no GPU")
    parser.add_argument("--selftest", action="store_true", help="only the planted bugs")
    parser.add_argument("--skip-selftest", action="store_true")
    parser.add_argument(
        "--install",
        action="store_true",
        help="pip-install compute-sanitizer and tilevm (editable) if missing",
    )
    parser.add_argument("--sanitizer", help="the compute-sanitizer binary")
    parser.add_argument("--jobs", type=int, default=4, help="tools that run at the same time")
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET, help="seconds in all")
    parser.add_argument("--seed", type=int, default=None, help="replay a run's random data")
    parser.add_argument(
        "--device",
        default="cuda",
        help="where the zoo runs: cuda, or a host executor (cpu) to test this script's pipeline "
        "without a GPU (no sanitizer sees host code)",
    )
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 31)
    args.jobs = max(1, args.jobs)
    return args


def _tilevm_importable(install: bool) -> bool:
    try:
        import tilevm.backends.cuda.driver  # noqa: F401
    except ImportError as exc:
        command = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                   "-e", str(ROOT)]  # fmt: skip
        if not install or os.environ.get(REEXEC):
            print(
                f"error: tilevm cannot be imported ({exc}); install it with\n  "
                f"{shlex.join(command)}\nor run this script with --install",
                file=sys.stderr,
            )
            return False
        if not tools.pip_install(["-e", str(ROOT)], None, ["--no-deps", "--no-build-isolation"]):
            print("error: installing tilevm failed", file=sys.stderr)
            return False
        # the editable install's import hook is read at start-up: start again (once)
        os.environ[REEXEC] = "1"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    return True


def _sanitizer(args: argparse.Namespace) -> tools.Sanitizer | None:
    path = tools.find(args.sanitizer)
    if path is None and args.install and not args.dry_run:
        version = tools.cuda_driver_version()
        pin = f"=={version}.*" if version else ""
        tools.pip_install([tools.PIP_PACKAGE + pin], ROOT / ".whl")
        path = tools.find(args.sanitizer)
    if path is None:
        where = ", ".join(str(p) for p in tools.candidates()[:6])
        print(f"{'note' if args.dry_run else 'error'}: compute-sanitizer not found (looked at "
              f"the PATH, {where}, ...): {tools.install_hint(tools.cuda_driver_version())}",
              file=sys.stderr)  # fmt: skip
        return None
    return tools.Sanitizer.probe(path)


class Run:
    """The plain pass and the selftest, then the tools; then the table and the summary."""

    def __init__(self, args, chosen, selected, sanitizer: tools.Sanitizer, deadline: float):
        self.args, self.chosen, self.selected = args, chosen, selected
        self.sanitizer, self.deadline = sanitizer, deadline
        self.indices = [c.index for c in chosen]
        self.kernels = {c.index: c.kernel_name for c in chosen}
        self.shared_initcheck = sanitizer.has("--initcheck-address-space")
        self.log: list[str] = []

    # commands
    def zoo_command(self, tool: str, slot: int):
        def command(indices: list[int]) -> list[str]:
            driver = [sys.executable, str(DRIVER), "zoo", "--cases", format_indices(indices),
                      "--seed", str(self.args.seed)]  # fmt: skip
            if self.args.device != "cuda":
                driver += ["--device", self.args.device]
            if tool == passes.PLAIN:
                return driver
            if tool == "initcheck":
                driver.append("--uninitialized-outputs")
            driver += ["--settle", SETTLE]
            return self.sanitizer.command(tool, slot, self._workers()) + driver

        return command

    def selftest_command(self, tool: str, slot: int):
        def command(indices: list[int]) -> list[str]:
            driver = [sys.executable, str(DRIVER), "selftest", "--tool", tool,
                      "--cases", format_indices(indices)]  # fmt: skip
            if tool == "initcheck" and self.shared_initcheck:
                driver.append("--shared-initcheck")
            driver += ["--settle", SETTLE]
            return self.sanitizer.command(tool, slot, self._workers()) + driver

        return command

    def _workers(self) -> int:
        return max(1, (os.cpu_count() or 4) // self.args.jobs)

    def _slot(self, k: int) -> int:
        return k + 1 if self.args.jobs > 1 else 0  # its own ports for each concurrent sanitizer

    # running
    def execute(self) -> dict:
        from benchmarks import sanitize_selftest as planted

        selftest_tools = [] if self.args.skip_selftest else self.selected
        plans = {t: planted.plan(t, self.shared_initcheck) for t in selftest_tools}
        zoo_tools = [] if self.args.selftest else self.selected
        print(f"{len(self.indices)} cases, seed {self.args.seed}; selftest: "
              f"{', '.join(selftest_tools) or 'none'}; then the zoo under: "
              f"{', '.join(zoo_tools) or 'none'}; {self.sanitizer.path} ({self.sanitizer.version})",
              flush=True)  # fmt: skip
        # the plain pass (no sanitizer) beside the sanitized passes, at most --jobs of those at
        # once: the selftests first (they are short), then the zoo under each tool
        zoo_slots = {t: self._slot(len(selftest_tools) + k) for k, t in enumerate(zoo_tools)}
        with ThreadPoolExecutor(1) as alone, ThreadPoolExecutor(self.args.jobs) as pool:
            plain_run = None
            if not self.args.selftest:
                plain_run = alone.submit(passes.run_pass, passes.PLAIN, self.indices,
                                         self.kernels, self.zoo_command(passes.PLAIN, 0),
                                         self.deadline, "plain pass")  # fmt: skip
            selftest_runs = {}
            for k, tool in enumerate(selftest_tools):
                names = {i: p.kernel for i, p in enumerate(plans[tool])}
                selftest_runs[tool] = pool.submit(
                    passes.run_pass, tool, list(names), names,
                    self.selftest_command(tool, self._slot(k)), self.deadline,
                    f"{tool} selftest")  # fmt: skip
            zoo_runs = {
                t: pool.submit(passes.run_pass, t, self.indices, self.kernels,
                               self.zoo_command(t, zoo_slots[t]), self.deadline, f"{t} pass")
                for t in zoo_tools
            }  # fmt: skip
            plain = plain_run.result() if plain_run else None
            selftest = {t: f.result() for t, f in selftest_runs.items()}
            zoo = {t: f.result() for t, f in zoo_runs.items()}
        for result in [*([plain] if plain else []), *selftest.values(), *zoo.values()]:
            self.log += result.log
        return self.summarize(plain, selftest, plans, zoo)

    # judging and printing
    def summarize(self, plain, selftest, plans, zoo) -> dict:
        checks = _selftest_checks(selftest, plans)
        selftest_ok = all(c["ok"] for c in checks)
        columns = ([plain] if plain else []) + list(zoo.values())
        zoo_ok = all(passes.pass_clean(r, self.indices) for r in columns)
        device = next((p.device for r in columns + list(selftest.values())
                       for p in r.processes if p.device), {})  # fmt: skip
        if checks:
            _print_selftest(checks)
        if columns:
            _print_table(self.chosen, columns)
        for line in _findings(self.chosen, columns)[:MAX_FINDINGS]:
            print(line)
        for r in columns + list(selftest.values()):
            for problem in r.problems:
                print(f"problem in the {r.tool} pass: {problem}")
        if self.sanitizer.dropped:
            print(
                "options this compute-sanitizer does not know (run without): "
                + " ".join(sorted(self.sanitizer.dropped))
            )
        ok = selftest_ok and zoo_ok
        selftest_word = "skipped" if not checks else "ok" if selftest_ok else "FAILED"
        zoo_word = f", kernel zoo {'clean' if zoo_ok else 'NOT clean'}" if columns else ""
        print(f"{'PASSED' if ok else 'FAILED'}: selftest {selftest_word}{zoo_word}")
        return {
            "ok": ok,
            "errors": sum(r.total for r in zoo.values()),
            "seed": self.args.seed,
            "device": device,
            "sanitizer": {"path": str(self.sanitizer.path), "version": self.sanitizer.version,
                          "options_not_supported": sorted(self.sanitizer.dropped)},
            "environment": passes.ENV,
            "selftest": {"ok": selftest_ok, "checks": checks,
                         "passes": {t: passes.pass_json(r) for t, r in selftest.items()}},
            "passes": {r.tool: passes.pass_json(r) for r in columns},
            "kernels": [
                {"index": c.index, "name": c.name, "kernel": c.kernel_name,
                 "grid": list(c.grid), "warps": c.warps,
                 "results": {r.tool: passes.case_json(r.cases.get(c.index), r.sanitized)
                             for r in columns}}
                for c in self.chosen
            ],
        }  # fmt: skip


def _selftest_checks(selftest: dict, plans: dict) -> list[dict]:
    """Each planted case: a bug must be reported (in its own kernel), a clean run must not."""
    checks = []
    for tool, result in selftest.items():
        for index, planted in enumerate(plans[tool]):
            case = result.cases.get(index)
            found = len(case.records) if case else 0
            named = case is not None and any(r.mentions(planted.kernel) for r in case.records)
            if planted.expect_reports:
                ok = found > 0 and named
                expected = f"> 0 reports naming {planted.kernel}"
            else:
                ok = case is not None and case.status == "ok" and found == 0
                expected = "0 reports, launch ok"
            status = case.status if case else "not run"
            checks.append(
                {
                    "tool": tool,
                    "case": planted.name,
                    "kernel": planted.kernel,
                    "reports": found,
                    "status": status,
                    "expected": expected,
                    "ok": ok,
                }
            )
        if result.problems:
            checks.append({"tool": tool, "case": "(process)", "kernel": "", "reports": 0,
                           "status": "; ".join(result.problems), "expected": "no problems",
                           "ok": False})  # fmt: skip
    return checks


def _print_selftest(checks: list[dict]) -> None:
    print("selftest: planted bugs must be reported, clean launches must not")
    for c in checks:
        print(
            f"  {c['tool']:<10} {c['case']:<24} {c['reports']:>5} reports  {c['status']:<8} "
            f"expected {c['expected']:<44} {'ok' if c['ok'] else 'FAILED'}"
        )


def _print_table(chosen, columns) -> None:
    width = max(len("(outside kernels)"), *(len(c.name) for c in chosen))
    head = f"{'kernel':<{width}}  " + "  ".join(f"{r.tool:>9}" for r in columns)
    print(head)
    print("-" * len(head))
    for c in chosen:
        print(f"{c.name:<{width}}  " + "  ".join(f"{passes.cell(r, c.index):>9}" for r in columns))
    outside = f"{'(outside kernels)':<{width}}  " + "  ".join(
        f"{r.outside if r.sanitized else '':>9}" for r in columns
    )
    total = f"{'total':<{width}}  " + "  ".join(
        f"{r.total if r.sanitized else _plain_total(r, chosen):>9}" for r in columns
    )
    print(outside)
    print("-" * len(head))
    print(total)
    print("N: reports by the tool during that case; *: output elements left unwritten (NaN)\n"
          "fail: the launch raised; crash/timeout: the process died or was stopped in it; "
          "-: not run")  # fmt: skip


def _findings(chosen, columns) -> list[str]:
    """One line for each thing the table counts against the zoo: the first line of a case's
    first report, the message of a launch that raised, outputs left unwritten, and reports
    outside any case (the log has them in full)."""
    lines = []
    for r in columns:
        for c in chosen:
            case = r.cases.get(c.index)
            if case is None:
                continue
            if case.records:
                lines.append(f"{r.tool} {c.name}: {case.records[0].title}")
            if case.status != "ok":
                lines.append(f"{r.tool} {c.name}: {case.status}: {case.message[-300:]}")
            if case.unwritten:
                lines.append(f"{r.tool} {c.name}: outputs left unwritten {case.unwritten}")
        for p in r.processes:
            for record in p.before + p.after:
                lines.append(f"{r.tool} (outside the zoo's launches): {record.title}")
    return lines


def _plain_total(result, chosen) -> str:
    bad = sum(not passes.case_clean(result, c.index) for c in chosen)
    return "ok" if bad == 0 else f"{bad} bad"


def _dry_run(args, chosen, selected, sanitizer: tools.Sanitizer | None) -> int:
    if sanitizer is None:  # show the commands with the name the PATH would resolve
        sanitizer = tools.Sanitizer(Path("compute-sanitizer"))
    else:
        print(f"compute-sanitizer: {sanitizer.path} ({sanitizer.version})")
    run = Run(args, chosen, selected, sanitizer, 0.0)
    indices = [c.index for c in chosen]
    print(f"{len(chosen)} cases of the kernel zoo (tests/kernel_zoo.py):")
    for case in chosen:
        print("  " + case.describe())
    env = " ".join(f"{k}={v}" for k, v in passes.ENV.items())
    print(f"commands (environment: {env}); one process per tool runs every case, a process that "
          "stops in a case is followed by one for the cases after it:")  # fmt: skip
    print(f"  {passes.PLAIN}: {shlex.join(run.zoo_command(passes.PLAIN, 0)(indices))}")
    for k, tool in enumerate(selected):
        slot = run._slot((0 if args.skip_selftest else len(selected)) + k)
        print(f"  {tool}: {shlex.join(run.zoo_command(tool, slot)(indices))}")
    if not args.skip_selftest:
        from benchmarks import sanitize_selftest as planted

        print("selftest commands (a clean launch, the planted bug, a clean launch):")
        for k, tool in enumerate(selected):
            plan = planted.plan(tool, run.shared_initcheck)
            cmd = run.selftest_command(tool, run._slot(k))(list(range(len(plan))))
            print(f"  {tool} [{', '.join(p.name for p in plan)}]: {shlex.join(cmd)}")
    return 0


def _write(out: Path | None, report: dict, log: list[str]) -> None:
    if out is None:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    log_path = out.with_suffix(".log")
    log_path.write_text("".join(log))
    print(f"wrote {out} and {log_path}")


if __name__ == "__main__":
    sys.exit(main())
