"""One watched call of a solution, shared by ``check`` and ``bench``.

A call: fresh inputs from the problem (a new seed each run, recorded), private copies of them
for the reference, poisoned outputs when the problem allocates them, the solution with the
launch counter read around it, then the verdicts: outputs of the exact array types on the
device, inputs byte-for-byte unchanged, no watched function replaced, at least one kernel
launch, no output repeated from an earlier call on other inputs, the reference (run only now,
on the copies) matched within tolerance.
"""

from __future__ import annotations

import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tilevm.dtypes import TilevmError, interop
from tilevm.harness import gpu
from tilevm.harness.arrays import (
    SCALARS,
    digest,
    is_packed,
    is_plain_array,
    poisoned,
    private_copy,
    to_device,
    type_name,
)
from tilevm.harness.compare import Failure, check_kind, compare
from tilevm.harness.guards import Watch
from tilevm.harness.problem import Problem, ProblemError


@dataclass
class Prepared:
    """The arguments of one call and what the harness keeps to judge it."""

    inputs: tuple
    copies: tuple  # private: only the reference sees them, after the solution
    before: list[str]  # digests of the inputs
    given: tuple = ()  # outputs the harness allocated, poisoned


@dataclass
class Outcome:
    """What one call produced: its outputs on the host, and what went wrong."""

    failures: list[Failure] = field(default_factory=list)
    launches: int = 0
    outputs: tuple = ()  # host copies, taken when the current stream finished
    stats: list[dict[str, Any]] = field(default_factory=list)
    reference: tuple = ()
    seconds: float | None = None
    reference_seconds: float | None = None


class Tripwire:
    """Stands in for the module's ``reference`` while the solution runs: only the harness may
    call the reference (a solution that returns its result has no kernel to check)."""

    def __init__(self) -> None:
        self.called = False

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.called = True
        raise ProblemError(
            "the solution called the problem's reference",
            expected="a solution that computes its outputs with tilevm kernels",
            found="a call to reference() from the solution",
            code="reference-called",
        )


class Runner:
    def __init__(self, problem: Problem, watch: Watch, seed: int) -> None:
        self.problem = problem
        self.watch = watch
        self.seed = seed
        self.tripwire = Tripwire()
        for module in {id(problem.module): problem.module,
                       id(problem.solution_module): problem.solution_module}.values():  # fmt: skip
            if module is not None and hasattr(module, "reference"):
                module.reference = self.tripwire
        self.seen: dict[tuple[str, int], dict[str, str]] = {}  # per case: output -> expected

    def rng(self, device: str, shape_index: int, call: int) -> np.random.Generator:
        """The generator of one call: the run's seed, the device, the shape and the call."""
        return np.random.default_rng([self.seed, zlib.crc32(device.encode()), shape_index, call])

    # ----- one call ---------------------------------------------------------------------------
    def prepare(self, device: str, shape: Any, rng: np.random.Generator) -> Prepared:
        made = self.problem.make_inputs(shape, device, rng)
        inputs = made if isinstance(made, tuple) else (made,)
        for i, value in enumerate(inputs):
            if not (is_plain_array(value) or is_packed(value) or type(value) in SCALARS):
                raise ProblemError(
                    f"make_inputs returned a {type_name(value)} as input {i}",
                    expected="numpy arrays, torch tensors, tv.PackedArrays (exact types) or "
                    "Python scalars",
                    found=type_name(value),
                    code="problem-inputs",
                )
        if gpu.is_gpu(device):
            inputs = tuple(to_device(v, gpu.torch_device(device)) for v in inputs)
        copies = tuple(private_copy(v) for v in inputs)
        given = ()
        if self.problem.outputs is not None:
            specs = self.problem.outputs(*copies)
            like = next((v for v in inputs if is_plain_array(v)), None)
            given = tuple(_allocate(spec, like) for spec in specs)
        return Prepared(inputs, copies, [digest(v) for v in inputs], given)

    def invoke(self, prepared: Prepared, device: str) -> Callable[[], tuple]:
        """The solution's call, as the timers run it: returns its outputs as a tuple."""
        solution, inputs, given = self.problem.solution, prepared.inputs, prepared.given

        def call() -> tuple:
            result = solution(*inputs, *given, device=device)
            if given:
                if result is not None:
                    raise ProblemError(
                        "the solution returned a value, but the problem gives it outputs",
                        expected="None (the outputs written in place)",
                        found=type_name(result),
                        code="problem-contract",
                    )
                return given
            return result if isinstance(result, tuple) else (result,)

        return call

    def run(self, prepared: Prepared, device: str, timer: Any = None) -> Outcome:
        """Call the solution (timed by ``timer`` when given), then judge the call."""
        outcome = Outcome()
        before = self.watch.launches()
        try:
            if timer is None:
                outputs = self.invoke(prepared, device)()
            else:
                outcome.seconds, outputs = timer.time(self.invoke(prepared, device))
        except Exception as exc:  # the solution's own failure is a verdict, not a crash
            outcome.failures.append(_raised(exc, self.tripwire.called))
            return outcome
        outcome.failures += check_kind(outputs, gpu.memory_of(device))
        if outcome.failures:
            return outcome
        outcome.outputs, escaped = gpu.settle(outputs, device)
        escaped = escaped or gpu.escaped_early(getattr(timer, "early", None), outcome.outputs)
        outcome.launches = self.watch.launches() - before
        outcome.failures += self._integrity(prepared, outcome, escaped)
        return outcome

    def judge(
        self, prepared: Prepared, outcome: Outcome, case: tuple[str, int], timer: Any = None
    ) -> None:
        """Run the reference on the private copies (timed by ``timer`` when given) and
        compare; remember the outputs."""
        if outcome.failures and not outcome.outputs:
            return
        reference = self.problem.reference
        try:
            if timer is None:
                expected = reference(*prepared.copies)
            else:
                outcome.reference_seconds, expected = timer.time(
                    lambda: reference(*prepared.copies)
                )
        except Exception as exc:
            outcome.failures.append(Failure("reference-error", describe(exc)))
            return
        outcome.reference = expected if isinstance(expected, tuple) else (expected,)
        dtypes = self._expected_dtypes(outcome.reference)
        tolerances = [self.problem.tolerance_for(i) for i in range(len(outcome.reference))]
        failures, outcome.stats = compare(outcome.outputs, outcome.reference, dtypes, tolerances)
        outcome.failures += failures
        outcome.failures += self._stale(prepared, outcome, case)

    # ----- verdicts ---------------------------------------------------------------------------
    def _integrity(self, prepared: Prepared, outcome: Outcome, escaped: bool) -> list[Failure]:
        failures = []
        if escaped:
            failures.append(Failure(
                "stream-escape",
                "outputs changed after the current stream finished: the solution ran work on "
                "another stream without making the current stream wait for it",
            ))  # fmt: skip
        for i, (value, was) in enumerate(zip(prepared.inputs, prepared.before)):
            if digest(value) != was:
                failures.append(Failure("input-modified", f"input {i} changed during the call"))
        patched = self.watch.changed()
        if patched:
            message = "the solution replaced " + ", ".join(patched)
            failures.append(Failure("patched", message))
        if outcome.launches == 0:
            failures.append(Failure(
                "no-launch",
                "the solution launched no tilevm kernel (its outputs came from elsewhere)",
            ))  # fmt: skip
        return failures

    def _stale(self, prepared: Prepared, outcome: Outcome, case: tuple[str, int]) -> list:
        """An output identical to one an earlier call of this case returned when the expected
        output was different: a cached or memoized result, not a computed one. (An output that
        is the same for every input, a softmax over one column, is not stale.)"""
        seen = self.seen.setdefault(case, {})
        failures = []
        for i, (out, ref) in enumerate(zip(outcome.outputs, outcome.reference)):
            mark, expected = f"{i}:{digest(out)}", digest(ref)
            earlier = seen.get(mark)
            if earlier is not None and earlier != expected:
                failures.append(Failure(
                    "stale-output",
                    f"output {i} is identical to an earlier call's, whose expected output "
                    "differed (a cached or memoized output)",
                    i,
                ))  # fmt: skip
            seen[mark] = expected
        return failures

    def _expected_dtypes(self, reference: tuple) -> list:
        declared = self.problem.output_dtypes
        if declared is not None and len(declared) == len(reference):
            return list(declared)
        return [interop.as_dtype(r.dtype) for r in reference]


def _allocate(spec: Any, like: Any) -> Any:
    try:
        shape, dtype = spec
        return poisoned(tuple(int(n) for n in shape), dtype, like)
    except (TypeError, ValueError) as exc:
        raise ProblemError(
            "outputs() must return (shape, dtype) pairs",
            expected='e.g. [((rows, cols), "float32")]',
            found=repr(spec)[:80],
            code="problem-contract",
        ) from exc


def _raised(exc: BaseException, called_reference: bool) -> Failure:
    if called_reference:
        return Failure("reference-called", "the solution called the problem's reference")
    return Failure("raised", describe(exc))


def describe(exc: BaseException) -> str:
    if isinstance(exc, TilevmError):
        return str(exc)
    frames = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return "".join(frames[-3:]).rstrip()


__all__ = ["Outcome", "Prepared", "Runner", "describe"]
