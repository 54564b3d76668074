"""Lowering of scans (``tv.cumsum``, ``tv.associative_scan``).

The index along the scanned axis is a mixed-radix number whose digits the layout places in a
thread's slots, in lanes of a warp, or across warps. Digits are scanned from the least
significant up. Each element keeps two running values:

* ``P``: its inclusive scan within the elements that differ from it only in the digits done;
* ``T``: the total of those elements (its group), kept once per group of a thread's slots (at
  the group's first slot: lanes and warps then exchange one value per group, not per slot).

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

Replicated threads compute the same values in the same order, so replicas stay bitwise equal
(in shared memory they share one cell, written by the first of them).
A reverse scan runs each digit backwards and swaps the combine's arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

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
    entry: int  # the layout's mode


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
            stages.append(Stage("slots", *in_slots[entry], entry))
        elif entry in in_threads and sizes[entry] > 1:
            radix, stride = in_threads[entry]
            inside = 1
            if _pow2(radix) and _pow2(stride) and stride < warp:
                inside = min(radix, warp // stride)
                bits = range(inside.bit_length() - 1)
                stages += [Stage("lanes", 2, stride << b, entry) for b in bits]
            if radix > inside:
                stages.append(Stage("warps", radix // inside, stride * inside, entry))
    return stages


def distinct_threads(layout: RegisterLayout) -> tuple[list[tuple[int, int, int]], int]:
    """The thread digits that are not replication, as ``(radix, stride, compact stride)``:
    ``sum(digit * compact stride)`` numbers the threads holding different elements (replicas
    share a number), and how many numbers there are."""
    out, compact = [], 1
    for entry, radix, stride in reversed(digits(layout.spatial_modes, layout.mode_sizes)):
        if entry >= 0:
            out.append((radix, stride, compact))
            compact *= radix
    return out[::-1], compact


def scan_scratch(ins: Instr, target: Target) -> int:
    """Shared bytes for the group totals of every thread, where a digit spans warps: one per
    group a thread holds (slots that differ only in digits scanned before share a total), and
    one copy for all replicas of a thread."""
    if ins.op != "scan":
        return 0
    layout = ins.args[0].type.layout
    groups, most = layout.local_size, 0
    for stage in scan_stages(layout, ins.attr("axis"), target):
        if stage.kind == "slots":
            groups //= stage.radix
        elif stage.kind == "warps":
            most = max(most, groups)
    ct = compute_type(ins.args[0].type.dtype)
    return distinct_threads(layout)[1] * most * ct.bits // 8


Dims = list[tuple[int, tuple[int, ...]]]  # loops: (count, the stride of each index built)


@dataclass
class _State:
    lw: Lowerer
    combine: Combiner
    ct: DataType
    layout: RegisterLayout
    prefix: str  # P
    slot_digits: dict[int, tuple[int, int]]  # the layout's slot digits: entry -> (radix, stride)
    reverse: bool = False
    total: str | None = None  # T; None while every group is one element (T is P)
    done: list[int] = field(default_factory=list)  # slot digits scanned so far

    @property
    def slots(self) -> int:
        return self.layout.local_size

    def p(self, i: t.Expr) -> t.Elem:
        return t.Elem(self.prefix, i, self.ct)

    def t(self, i: t.Expr) -> t.Elem:
        """T of the group whose first slot (every scanned slot digit 0) is ``i``."""
        return t.Elem(self.total or self.prefix, i, self.ct)

    def position(self, v: t.Expr, radix: int) -> t.Expr:
        """The ``v``-th value of a digit in the scan's order."""
        return sub(const(radix - 1), v) if self.reverse else v

    def groups(self, skip: int | None = None) -> Dims:
        """Loops over the first slot of each group (with the group's index among them)."""
        dims = [(r, s) for e, (r, s) in self.slot_digits.items() if e not in self.done + [skip]]
        out, compact = [], 1
        for radix, stride in reversed(dims):
            out.append((radix, (stride, compact)))
            compact *= radix
        return out[::-1]

    def members(self) -> Dims:
        """Loops over the offsets from a group's first slot to each of its slots."""
        return [(self.slot_digits[e][0], (self.slot_digits[e][1],)) for e in self.done]

    def split_total(self) -> None:
        """Give T its own registers (a copy of P) before P moves away from it."""
        if self.total is not None:
            return
        lw = self.lw
        self.total = lw.names.fresh(f"{self.prefix}_total")
        lw.emit(t.Declare(self.total, self.ct, self.slots))
        lw.slots(self.slots, lambda j: lw.emit(t.Set(self.t(j), self.p(j))))

    def put_in_front(self, first: t.Expr, value: t.Expr, where: t.Expr | None = None) -> None:
        """``P = combine(value, P)`` on every slot of the group at ``first`` (where ``where``
        holds, if given)."""

        def one(offsets: tuple[t.Expr, ...]) -> None:
            i = add(first, offsets[0])
            ahead = self.combine(value, self.p(i))
            self.lw.emit(t.Set(self.p(i), ahead if where is None else
                               t.Select(where, ahead, self.p(i), self.ct)))  # fmt: skip

        _loops(self.lw, self.members(), one, "tv_m", 1)


@lowers("scan")
def _scan(lw: Lowerer, ins: Instr) -> None:
    src, out = ins.args[0], ins.out
    layout = src.type.layout
    ct = compute_type(src.type.dtype)
    prefix = lw.names.fresh(f"{lw.name(src)}_scan")
    lw.emit(t.Declare(prefix, ct, layout.local_size))
    slot_digits = {e: (r, s) for e, r, s in digits(layout.local_modes, layout.mode_sizes)}
    state = _State(lw, _combiner(lw, ins, ct), ct, layout, prefix, slot_digits)
    state.reverse = bool(ins.attr("reverse"))
    lw.slots(layout.local_size, lambda j: lw.emit(t.Set(state.p(j), lw.element(src, j))))
    stages = scan_stages(layout, ins.attr("axis"), lw.target)
    plain_sum = ins.attr("op") == "sum"
    for k, stage in enumerate(stages):
        last = k == len(stages) - 1
        if stage.kind == "slots":
            _slots(state, stage.entry, last)
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


def _loops(
    lw: Lowerer,
    dims: Dims,
    body: Callable[[tuple[t.Expr, ...]], None],
    prefix: str,
    indices: int,
) -> None:
    """``body(indices)`` for every combination of the loops' counters, each index the sum of
    counter times its stride: nested loops, unrolled by the compiler (names ``prefix0``...)."""

    def level(k: int, index: tuple[t.Expr, ...]) -> None:
        if k == len(dims):
            body(index)
            return
        count, strides = dims[k]
        if count == 1:
            level(k + 1, index)
            return
        var = t.Sym(f"{prefix}{k}")
        with lw.block() as inner:
            level(k + 1, tuple(add(i, mul(var, s)) for i, s in zip(index, strides)))
        lw.emit(t.Loop(var.name, const(0), const(count), const(1), tuple(inner), unroll=True))

    level(0, (const(0),) * indices)


def _slots(state: _State, entry: int, last: bool) -> None:
    """A digit in the thread's own slots: a sequential scan over its values, group by group."""
    lw, ct = state.lw, state.ct
    radix, stride = state.slot_digits[entry]
    single = state.total is None  # nothing scanned yet: each group is one slot, T is P
    if single and not last:
        state.split_total()  # T becomes the group totals below; P already holds x
    acc = t.Sym(lw.names.fresh("tv_run"), ct)
    lw.emit(t.Declare(acc.name, ct))

    def group(first: tuple[t.Expr, ...]) -> None:
        def at(v: t.Expr) -> t.Expr:
            return add(first[0], mul(state.position(v, radix), stride))

        lw.emit(t.Set(acc, state.t(at(const(0)))))
        with lw.block() as inner:
            i = at(t.Sym("tv_v"))
            state.put_in_front(i, acc)
            # single slots: the running value is P itself, one combine saved
            lw.emit(t.Set(acc, state.p(i) if single else state.combine(acc, state.t(i))))
        lw.emit(t.Loop("tv_v", const(1), const(radix), const(1), tuple(inner), unroll=True))
        if not last:
            lw.slots(radix, lambda v: lw.emit(t.Set(state.t(at(v)), acc)), var="tv_w")

    _loops(lw, state.groups(skip=entry), group, "tv_g", 1)
    state.done.append(entry)


def _lanes(state: _State, stage: Stage, last: bool, plain_sum: bool) -> None:
    """One bit of a digit inside a warp: exchange group totals with the lane across it."""
    lw, ct, mask = state.lw, state.ct, stage.stride
    if not last:
        state.split_total()
    bit = t.Bin("and", lw.tid, const(mask), dts.i32)
    # the partner is earlier in the scan's order: below (forward) or above (reverse)
    behind = t.Bin("eq" if state.reverse else "ne", bit, const(0), dts.u1)

    def group(first: tuple[t.Expr, ...]) -> None:
        i = first[0]
        other = t.Sym(lw.names.fresh("tv_other"), ct)
        lw.emit(t.Declare(other.name, ct, None, t.Call("shfl_xor", (state.t(i), const(mask)), ct)))
        state.put_in_front(i, other, behind)
        if last:
            return
        if plain_sum:  # addition commutes: both halves add the same two totals
            total = state.combine(state.t(i), other)
        else:
            first_ = t.Select(behind, other, state.t(i), ct)
            second = t.Select(behind, state.t(i), other, ct)
            total = state.combine(first_, second)
        lw.emit(t.Set(state.t(i), total))

    _loops(lw, state.groups(), group, "tv_g", 1)


def _warps(state: _State, stage: Stage, last: bool, base_bytes: int) -> None:
    """A digit across warps (or not a power of two): totals meet in shared memory; each thread
    combines those of the groups in front of its own, in order."""
    lw, ct, radix, stride = state.lw, state.ct, stage.radix, stage.stride
    if not last:
        state.split_total()
    groups = state.groups()
    count = 1
    for n, _ in groups:
        count *= n

    def cell(thread: t.Expr, k: t.Expr) -> t.Mem:
        return t.Mem("shared", "tv_smem", add(mul(thread, count), k), ct, base_bytes)

    # threads numbered without their replicas (which hold the same totals): one cell each
    threads, _ = distinct_threads(state.layout)
    number: t.Expr = const(0)
    for r, s, c in threads:
        outermost = s * r == state.layout.num_threads
        number = add(number, mul(digit(lw.tid, r, s, outermost), c))
    # the stage's digit is the part from ``stride`` up of one thread digit (r, s)
    step = next(c * (stride // s) for r, s, c in threads if s <= stride < s * r)
    lw.emit(t.Barrier())  # the scratch may still be read by an earlier user
    with lw.first_holders(state.layout):
        _loops(lw, groups, lambda ik: lw.emit(t.Store(cell(number, ik[1]), state.t(ik[0]))),
               "tv_g", 2)  # fmt: skip
    lw.emit(t.Barrier())
    mine = digit(lw.tid, radix, stride, False)
    first = t.Sym(lw.names.fresh("tv_group"))  # the number of the thread whose digit is 0
    lw.emit(t.Declare(first.name, dts.i32, None, sub(number, mul(mine, step))))
    place = t.Sym(lw.names.fresh("tv_place"))  # this thread's position in the scan's order
    lw.emit(t.Declare(place.name, dts.i32, None, state.position(mine, radix)))
    acc = t.Sym(lw.names.fresh("tv_run"), ct)
    lw.emit(t.Declare(acc.name, ct))

    def total_of(v: t.Expr, k: t.Expr) -> t.Expr:  # the v-th total in the scan's order
        return t.Load(cell(add(first, mul(state.position(v, radix), step)), k), ct)

    def group(ik: tuple[t.Expr, ...]) -> None:
        i, k = ik
        lw.emit(t.Set(acc, total_of(const(0), k)))
        with lw.block() as inner:
            v = t.Sym("tv_v")
            state.put_in_front(i, acc, t.Bin("eq", place, v, dts.u1))
            lw.emit(t.Set(acc, state.combine(acc, total_of(v, k))))
        lw.emit(t.Loop("tv_v", const(1), const(radix), const(1), tuple(inner), unroll=True))
        if not last:
            lw.emit(t.Set(state.t(i), acc))

    _loops(lw, groups, group, "tv_g", 2)
