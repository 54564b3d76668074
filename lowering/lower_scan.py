"""Lowering of scans (``tv.cumsum``, ``tv.associative_scan``).

The index along the scanned axis is a mixed-radix number whose digits the layout places in a
thread's slots, in lanes of a warp, or across warps. Digits are scanned from the least
significant up. Each element keeps two running values:

* ``P``: its inclusive scan within the elements that differ from it only in the digits done;
* ``T``: the total of those elements (its group), shared by the whole group.

Scanning one more digit ``d`` turns groups into bigger ones: an element whose digit is ``v``
combines the totals of the groups with digits ``0 .. v-1`` (in order) in front of its ``P``, and
the new ``T`` is the combination of all of them. Where the digit lives decides how:

* slots: one thread holds every value of the digit: a sequential loop over its registers;
* lanes: a power-of-two digit inside a warp, one bit at a time, by xor-shuffles (a butterfly:
  the partner of a lane across bit ``m`` holds the other half's total; the upper half puts it in
  front of its ``P``, both halves get the combined total, in order);
* warps (and digits whose radix or stride is not a power of two): totals meet in shared memory
  and each thread reads those of its group in order.

::

    axis index = [ warps digit | lane bits | slot digit ]    scanned right to left:
    P, T <- x  ->  slots: sequential  ->  lanes: shfl_xor  ->  warps: shared memory

Replicated threads compute the same values in the same order, so replicas stay bitwise equal.
A reverse scan runs each digit backwards and swaps the combine's arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tilevm import dtypes as dts
from tilevm.dtypes import DataType
from tilevm.ir.nodes import Instr
from tilevm.layouts import RegisterLayout
from tilevm.lowering import thread_ir as t
from tilevm.lowering.exprs import add, compute_type, const, digit, digits, mul, sub
from tilevm.lowering.lower import Lowerer, lowers
from tilevm.lowering.target import Target

Combiner = Callable[[t.Expr, t.Expr], t.Expr]


@dataclass(frozen=True)
class Stage:
    """One digit of the scanned axis: ``kind`` is "slots", "lanes" or "warps"; the digit is
    ``(slot or thread index // stride) % radix``."""

    kind: str
    radix: int
    stride: int


def _pow2(n: int) -> bool:
    return n & (n - 1) == 0


def scan_stages(layout: RegisterLayout, axis: int, target: Target) -> list[Stage]:
    """The digits of ``axis`` in ``layout``, least significant first."""
    sizes = layout.mode_sizes
    first = sum(len(dim) for dim in layout.modes[:axis])
    entries = range(first, first + len(layout.modes[axis]))
    in_slots = {e: (r, s) for e, r, s in digits(layout.local_modes, sizes)}
    in_threads = {e: (r, s) for e, r, s in digits(layout.spatial_modes, sizes) if e >= 0}
    warp = target.warp_size
    stages: list[Stage] = []
    for entry in reversed(entries):
        if entry in in_slots and sizes[entry] > 1:
            stages.append(Stage("slots", *in_slots[entry]))
        elif entry in in_threads and sizes[entry] > 1:
            radix, stride = in_threads[entry]
            inside = 1
            if _pow2(radix) and _pow2(stride) and stride < warp:
                inside = min(radix, warp // stride)
                stages += [Stage("lanes", 2, stride << b) for b in range(inside.bit_length() - 1)]
            if radix > inside:
                stages.append(Stage("warps", radix // inside, stride * inside))
    return stages


def scan_scratch(ins: Instr, target: Target) -> int:
    """Shared bytes for the totals of every thread's slots, where a digit spans warps."""
    if ins.op != "scan":
        return 0
    layout = ins.args[0].type.layout
    if all(s.kind != "warps" for s in scan_stages(layout, ins.attr("axis"), target)):
        return 0
    ct = compute_type(ins.args[0].type.dtype)
    return layout.num_threads * layout.local_size * ct.bits // 8


@dataclass
class _State:
    lw: Lowerer
    combine: Combiner
    ct: DataType
    slots: int
    prefix: str  # P
    total: str | None = None  # T; None while every group is one element (T is P)
    reverse: bool = False

    def p(self, i: t.Expr) -> t.Elem:
        return t.Elem(self.prefix, i, self.ct)

    def t(self, i: t.Expr) -> t.Elem:
        return t.Elem(self.total or self.prefix, i, self.ct)

    def split_total(self) -> None:
        """Give T its own registers (a copy of P) before P moves away from it."""
        if self.total is not None:
            return
        lw = self.lw
        self.total = lw.names.fresh(f"{self.prefix}_total")
        lw.emit(t.Declare(self.total, self.ct, self.slots))
        lw.slots(self.slots, lambda j: lw.emit(t.Set(self.t(j), self.p(j))))


@lowers("scan")
def _scan(lw: Lowerer, ins: Instr) -> None:
    src, out = ins.args[0], ins.out
    layout = src.type.layout
    ct = compute_type(src.type.dtype)
    prefix = lw.names.fresh(f"{lw.name(src)}_scan")
    lw.emit(t.Declare(prefix, ct, layout.local_size))
    state = _State(lw, _combiner(lw, ins, ct), ct, layout.local_size, prefix)
    state.reverse = bool(ins.attr("reverse"))
    lw.slots(layout.local_size, lambda j: lw.emit(t.Set(state.p(j), lw.element(src, j))))
    stages = scan_stages(layout, ins.attr("axis"), lw.target)
    plain_sum = ins.attr("op") == "sum"
    for k, stage in enumerate(stages):
        last = k == len(stages) - 1
        if stage.kind == "slots":
            _slots(state, stage, last)
        elif stage.kind == "lanes":
            _lanes(state, stage, last, plain_sum)
        else:
            _warps(state, stage, last, lw.plan.offsets[ins])
    name = lw.declare_tile(out)
    dtype = out.type.dtype
    lw.slots(
        layout.local_size,
        lambda j: lw.emit(t.Set(t.Elem(name, j, dtype), t.Encode(state.p(j), dtype))),
    )


def _combiner(lw: Lowerer, ins: Instr, ct: DataType) -> Combiner:
    """``combine(earlier, later)`` in the scan's order, as an expression in ``ct``; a user's
    combine is emitted afresh at each use (its values get new names each time)."""
    if ins.attr("op") == "sum":
        op = "wadd" if ct.is_integer else "add"  # integers wrap
        return lambda a, b: t.Bin(op, a, b, ct)
    fn, dtype, reverse = ins.attr("combine"), ins.out.type.dtype, bool(ins.attr("reverse"))

    def apply(a: t.Expr, b: t.Expr) -> t.Expr:
        if reverse:  # scanning backwards: the later element is the left operand
            a, b = b, a
        for param, value in zip(fn.params, (a, b)):
            lw.names.of.pop(param, None)
            lw.emit(t.Declare(lw.name(param), dtype, None, t.Encode(value, dtype)))
        for stmt in fn.body:
            lw.names.of.pop(stmt.out, None)
        lw.body(fn.body)
        return lw.scalar(fn.result)

    return apply


def _loops(lw: Lowerer, counts: list[tuple[int, int]], body: Callable[[t.Expr], None]) -> None:
    """``body(sum of i_k * stride_k)`` for every ``i_k < count_k``: nested unrolled loops."""

    def level(k: int, index: t.Expr) -> None:
        if k == len(counts):
            body(index)
            return
        count, stride = counts[k]
        if count == 1:
            level(k + 1, index)
            return
        var = f"tv_s{k}"
        with lw.block() as inner:
            level(k + 1, add(index, mul(t.Sym(var), stride)))
        lw.emit(t.Loop(var, const(0), const(count), const(1), tuple(inner), unroll=True))

    level(0, const(0))


def _slots(state: _State, stage: Stage, last: bool) -> None:
    """A digit in the thread's own slots: a sequential scan over its values."""
    lw, radix, stride, ct = state.lw, stage.radix, stage.stride, state.ct
    first_stage = state.total is None
    if first_stage and not last:
        state.split_total()  # T becomes the group totals below; P already holds x
    acc = lw.names.fresh("tv_run")
    lw.emit(t.Declare(acc, ct))

    def position(v: t.Expr) -> t.Expr:  # the v-th value of the digit in the scan's order
        return sub(const(radix - 1), v) if state.reverse else v

    def group(base: t.Expr) -> None:
        def at(v: t.Expr) -> t.Expr:
            return add(base, mul(position(v), stride))

        lw.emit(t.Set(t.Sym(acc, ct), state.t(at(const(0)))))

        def step(v: t.Expr) -> None:
            i = at(v)
            lw.emit(t.Set(state.p(i), state.combine(t.Sym(acc, ct), state.p(i))))
            if first_stage:  # single elements: the running value is P itself
                lw.emit(t.Set(t.Sym(acc, ct), state.p(i)))
            else:
                lw.emit(t.Set(t.Sym(acc, ct), state.combine(t.Sym(acc, ct), state.t(i))))

        with lw.block() as inner:
            step(t.Sym("tv_v"))
        lw.emit(t.Loop("tv_v", const(1), const(radix), const(1), tuple(inner), unroll=True))
        if not last:
            lw.slots(
                radix,
                lambda v: lw.emit(t.Set(state.t(at(v)), t.Sym(acc, ct))),
                var="tv_w",
            )

    outer = state.slots // (radix * stride)
    _loops(lw, [(outer, radix * stride), (stride, 1)], group)


def _lanes(state: _State, stage: Stage, last: bool, plain_sum: bool) -> None:
    """One bit of a digit inside a warp: exchange group totals with the lane across it."""
    lw, ct, mask = state.lw, state.ct, stage.stride
    if not last:
        state.split_total()
    bit = t.Bin("and", lw.tid, const(mask), dts.i32)
    # the partner is earlier in the scan's order: below (forward) or above (reverse)
    behind = t.Bin("eq" if state.reverse else "ne", bit, const(0), dts.u1)

    def slot(j: t.Expr) -> None:
        other = lw.names.fresh("tv_other")
        lw.emit(t.Declare(other, ct, None, t.Call("shfl_xor", (state.t(j), const(mask)), ct)))
        theirs = t.Sym(other, ct)
        ahead = state.combine(theirs, state.p(j))
        lw.emit(t.Set(state.p(j), t.Select(behind, ahead, state.p(j), ct)))
        if last:
            return
        if plain_sum:  # addition commutes: both halves add the same two totals
            total = state.combine(state.t(j), theirs)
        else:
            first = t.Select(behind, theirs, state.t(j), ct)
            second = t.Select(behind, state.t(j), theirs, ct)
            total = state.combine(first, second)
        lw.emit(t.Set(state.t(j), total))

    lw.slots(state.slots, slot)


def _warps(state: _State, stage: Stage, last: bool, base_bytes: int) -> None:
    """A digit across warps (or not a power of two): totals meet in shared memory; each thread
    combines those of the groups in front of its own, in order."""
    lw, ct, radix, stride = state.lw, state.ct, stage.radix, stage.stride
    if not last:
        state.split_total()
    slots = state.slots

    def cell(thread: t.Expr, j: t.Expr) -> t.Mem:
        return t.Mem("shared", "tv_smem", add(mul(thread, slots), j), ct, base_bytes)

    lw.emit(t.Barrier())  # the scratch may still be read by an earlier user
    lw.slots(slots, lambda j: lw.emit(t.Store(cell(lw.tid, j), state.t(j))))
    lw.emit(t.Barrier())
    mine = digit(lw.tid, radix, stride, False)
    first = lw.names.fresh("tv_group")
    lw.emit(t.Declare(first, dts.i32, None, sub(lw.tid, mul(mine, stride))))
    place = lw.names.fresh("tv_place")  # this thread's position in the scan's order
    order = sub(const(radix - 1), mine) if state.reverse else mine
    lw.emit(t.Declare(place, dts.i32, None, order))
    acc = lw.names.fresh("tv_run")
    lw.emit(t.Declare(acc, ct))

    def total_of(v: t.Expr, j: t.Expr) -> t.Expr:  # the v-th group's total in the scan's order
        position = sub(const(radix - 1), v) if state.reverse else v
        return t.Load(cell(add(t.Sym(first), mul(position, stride)), j), ct)

    def slot(j: t.Expr) -> None:
        lw.emit(t.Set(t.Sym(acc, ct), total_of(const(0), j)))
        with lw.block() as inner:
            v = t.Sym("tv_v")
            ahead = state.combine(t.Sym(acc, ct), state.p(j))
            here = t.Bin("eq", t.Sym(place), v, dts.u1)
            lw.emit(t.Set(state.p(j), t.Select(here, ahead, state.p(j), ct)))
            lw.emit(t.Set(t.Sym(acc, ct), state.combine(t.Sym(acc, ct), total_of(v, j))))
        lw.emit(t.Loop("tv_v", const(1), const(radix), const(1), tuple(inner), unroll=True))
        if not last:
            lw.emit(t.Set(state.t(j), t.Sym(acc, ct)))

    lw.slots(slots, slot)
