"""The pass list, in order. Each pass states what holds before and after it.

infer_layouts   every tile gets a layout; conversions become explicit
verify          the IR is still well formed
plan_shared     shared tiles and scratch get offsets, checked against the target's limit
budget          the largest register tile fits (generously) in a thread's registers
divisibility    facts about block-uniform integers, for vector widths
lower           VM IR -> thread IR
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tilevm.errors import CompileError
from tilevm.ir.nodes import Instr, KernelIR
from tilevm.ir.verify import verify

# handler modules (lower_matrix_load after lower_memory: its load_shared wraps the plain one)
from tilevm.lowering import (  # noqa: F401
    lower_async,
    lower_atomic,
    lower_dot,
    lower_matrix_load,
    lower_memory,
    lower_reduce,
    lower_scan,
    lower_tile,
)
from tilevm.lowering.budget import check_registers
from tilevm.lowering.divisibility import Divisibility
from tilevm.lowering.infer_layouts import Conversion, infer_layouts
from tilevm.lowering.lower import Lowerer, TensorFacts
from tilevm.lowering.plan_shared import SharedPlan, plan_shared
from tilevm.lowering.target import Target
from tilevm.lowering.thread_ir import ThreadKernel


@dataclass(frozen=True)
class Lowered:
    kernel: KernelIR  # after layout inference
    thread: ThreadKernel
    plan: SharedPlan
    conversions: tuple[Conversion, ...]


def lower_kernel(
    kernel: KernelIR,
    target: Target,
    facts: dict[str, TensorFacts],
    dump: Callable[[KernelIR, str], None] | None = None,
) -> Lowered:
    if kernel.num_threads > target.max_threads:
        raise CompileError(
            f"{kernel.warps} warps of {kernel.warp_size} threads exceed {target}'s block limit",
            expected=f"at most {target.max_threads} threads per block",
            found=f"{kernel.num_threads} threads",
            hint="launch with fewer warps=",
            location=kernel.loc,
            code="block-size",
        )
    inferred = infer_layouts(kernel, target)
    verify(inferred.kernel)
    if dump is not None:
        dump(inferred.kernel, "layouts")
    _check_conversions(inferred.conversions, target)

    def scratch(ins: Instr) -> int:
        return (
            lower_memory.conversion_bytes(ins)
            + lower_reduce.reduction_scratch(ins, target)
            + lower_scan.scan_scratch(ins, target)
            + lower_atomic.atomic_scratch(ins)
        )

    plan = plan_shared(inferred.kernel, target, scratch)
    check_registers(inferred.kernel, target.register_bits, str(target))
    divisibility = Divisibility(
        inferred.kernel, {name: f.stride_align for name, f in facts.items()}
    )
    thread = Lowerer(inferred.kernel, target, plan, facts, divisibility).lower()
    return Lowered(inferred.kernel, thread, plan, inferred.conversions)


def _check_conversions(conversions: tuple[Conversion, ...], target: Target) -> None:
    """A conversion too large for shared memory cannot be made: name the two instructions that
    disagree about the layout."""
    for conv in conversions:
        t = conv.value.type
        size = t.layout.size * max(1, t.dtype.storage.itemsize)
        if size <= target.shared_bytes or lower_memory.in_registers(conv.source, conv.target):
            continue
        producer = conv.producer
        where = f"line {producer.loc.line}" if producer is not None and producer.loc else "?"
        raise CompileError(
            f"{conv.value.name} is produced in layout {conv.source!r} ({where}) but used in "
            f"layout {conv.target!r}; converting it needs {size} bytes of shared memory",
            expected=f"a conversion of at most {target.shared_bytes} bytes, or agreeing layouts",
            found=f"{size} bytes",
            hint="give both instructions the same layout with layout=/tv.annotate, or use a "
            "smaller tile",
            location=getattr(conv.consumer, "loc", None),
            code="layout-conflict",
        )
