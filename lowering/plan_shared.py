"""Pass: place every shared tile and every scratch area in one shared-memory block.

Before: ``shared`` instructions and instructions that need scratch (layout conversions,
reductions across warps) say how many bytes they need. After: each has a byte offset; buffers
whose lifetimes do not overlap share bytes (lifetimes from first definition to last use, a use
inside a loop keeping a buffer alive for the whole loop). The total is checked against the
target's limit. A buffer placed over bytes another buffer used earlier needs a barrier before
its first use (``reuse_barrier``); scratch users always start with one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tilevm.errors import CompileError
from tilevm.ir.nodes import For, If, Instr, KernelIR, Stmt, Var, While
from tilevm.ir.types import SharedType
from tilevm.lowering.target import Target

ALIGN = 16


@dataclass
class SharedPlan:
    offsets: dict[Var | Instr, int] = field(default_factory=dict)  # shared Var or scratch Instr
    sizes: dict[Var | Instr, int] = field(default_factory=dict)
    total: int = 0
    reuse_barrier: set[Var] = field(default_factory=set)


def shared_bytes(t: SharedType) -> int:
    """Sub-byte elements take a byte each in shared memory: stores stay plain byte stores."""
    return t.layout.cosize * max(1, t.dtype.storage.itemsize)


@dataclass
class _Interval:
    key: Var | Instr
    start: int
    end: int
    size: int
    instr: Instr


def plan_shared(
    kernel: KernelIR, target: Target, scratch_bytes: Callable[[Instr], int]
) -> SharedPlan:
    intervals: dict[Var | Instr, _Interval] = {}
    clock = [0]

    def visit(stmts: Sequence[Stmt], loops: list[tuple[int, list[Var]]]) -> None:
        for stmt in stmts:
            clock[0] += 1
            now = clock[0]
            if isinstance(stmt, Instr):
                for arg in stmt.args:
                    if isinstance(arg, Var) and arg in intervals:
                        intervals[arg].end = now
                        for _, used in loops:
                            used.append(arg)
                if stmt.out is not None and isinstance(stmt.out.type, SharedType):
                    size = shared_bytes(stmt.out.type)
                    intervals[stmt.out] = _Interval(stmt.out, now, now, size, stmt)
                need = scratch_bytes(stmt)
                if need:
                    intervals[stmt] = _Interval(stmt, now, now, need, stmt)
            elif isinstance(stmt, For | While):
                used: list[Var] = []
                loops.append((now, used))
                if isinstance(stmt, While):
                    visit(stmt.cond_body, loops)
                visit(stmt.body, loops)
                loops.pop()
                clock[0] += 1
                for var in used:  # alive for every iteration: from before the loop to its end
                    if intervals[var].start > now:
                        continue  # defined inside the loop: one iteration's lifetime
                    intervals[var].end = max(intervals[var].end, clock[0])
            elif isinstance(stmt, If):
                visit(stmt.then_body, loops)
                visit(stmt.else_body, loops)

    visit(kernel.body, [])
    plan = SharedPlan()
    placed: list[_Interval] = []
    for item in sorted(intervals.values(), key=lambda i: (i.start, -i.size)):
        offset = 0
        for other in sorted(placed, key=lambda o: plan.offsets[o.key]):
            if other.end < item.start or other.start > item.end:
                continue
            lo = plan.offsets[other.key]
            if offset + item.size <= lo:
                break
            offset = max(offset, _align(lo + other.size))
        plan.offsets[item.key] = offset
        plan.sizes[item.key] = item.size
        plan.total = max(plan.total, _align(offset + item.size))
        if isinstance(item.key, Var) and any(
            other.end < item.start
            and plan.offsets[other.key] < offset + item.size
            and offset < plan.offsets[other.key] + other.size
            for other in placed
        ):
            plan.reuse_barrier.add(item.key)
        placed.append(item)
    if plan.total > target.shared_bytes:
        raise _too_much(plan, intervals, target)
    return plan


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _too_much(plan: SharedPlan, intervals: dict, target: Target) -> CompileError:
    biggest = sorted(intervals.values(), key=lambda i: -i.size)[:3]
    listing = ", ".join(
        f"{i.key.name if isinstance(i.key, Var) else i.instr.op} ({i.size} B, line "
        f"{i.instr.loc.line if i.instr.loc else '?'})"
        for i in biggest
    )
    return CompileError(
        f"the kernel needs {plan.total} bytes of shared memory; {target} allows "
        f"{target.shared_bytes}",
        expected=f"at most {target.shared_bytes} bytes",
        found=f"{plan.total} bytes; largest: {listing}",
        hint="use smaller tiles, fewer stages, or annotate layouts so fewer conversions are needed",
        location=biggest[0].instr.loc if biggest else None,
        code="shared-memory",
    )
