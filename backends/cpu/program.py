"""The thread program rearranged for a CPU: a block's threads run one after another.

A GPU block runs its threads at once; a CPU core runs them in a loop. That loop may only be
cut where threads wait for each other: at barriers, and at warp collectives (a shuffle reads a
value another lane computed; an mma or ldmatrix reads every lane's registers). So the thread
IR becomes a *block program*:

- ``Region``: barrier-free statements, executed for thread 0, 1, ... in turn;
- ``WarpCall``: a warp-wide intrinsic executed once per warp after every lane gathered its
  arguments (pointers into its registers or shared memory);
- ``BlockLoop`` / ``BlockIf`` / ``BlockForever`` / ``BlockBreak``: control flow around a cut;
  its conditions are block-uniform (the VM's rule), so they are evaluated as thread 0.

A shuffle ``shfl_xor(v, m)`` inside a statement becomes ``Gather(tmp, v)`` at the end of one
region and ``Peer(tmp, tid ^ m)`` in the next. Declared names are made unique first, so a later
pass can give each variable one storage: a thread-loop local when every use is in the region
that declares it, else an array indexed by thread.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from tilevm import dtypes as dts
from tilevm.dtypes import DataType
from tilevm.lowering import thread_ir as t
from tilevm.lowering.target import Target

# ----- extra thread-IR nodes the CPU program uses -----------------------------------------


@dataclass(frozen=True)
class Peer(t.Expr):
    """Another thread's gathered value: ``name[lane]``."""

    name: str
    lane: t.Expr
    dtype: DataType


@dataclass(frozen=True)
class Gather(t.Stmt):
    """This thread's contribution to a collective: ``name[tid] = value`` (a value or a
    pointer, for ``Ref``/``Addr`` arguments)."""

    name: str
    value: t.Expr


# ----- the block program --------------------------------------------------------------------


class Node:
    pass


@dataclass
class Region(Node):
    stmts: list[t.Stmt] = field(default_factory=list)
    index: int = -1  # numbered in program order once built


@dataclass
class WarpCall(Node):
    """``fn`` over each warp's lanes; ``args[i]`` names the gathered pointers of argument i."""

    fn: str
    args: tuple[str, ...]
    call: t.Call


@dataclass
class BlockLoop(Node):
    var: str
    start: t.Expr
    stop: t.Expr
    step: t.Expr
    body: list[Node]
    dtype: DataType = dts.i32  # the counter's type


@dataclass
class BlockIf(Node):
    cond: t.Expr
    then: list[Node]
    orelse: list[Node]


@dataclass
class BlockForever(Node):
    body: list[Node]


@dataclass
class BlockBreak(Node):
    pass


@dataclass
class BlockProgram:
    body: list[Node]
    regions: list[Region]
    gathers: dict[str, DataType | None]  # gathered name -> value dtype (None: a pointer)
    uniform: set[str]  # loop variables of block-level loops: one value for all threads


# ----- generic rewriting of the frozen IR -------------------------------------------------------


def map_expr(e: t.Expr, fn: Callable[[t.Expr], t.Expr | None]) -> t.Expr:
    """Rebuild ``e`` bottom-up; ``fn`` may replace any node (None keeps it)."""
    changes = {}
    for f in dataclasses.fields(e):
        value = getattr(e, f.name)
        new = _map_value(value, fn)
        if new is not value:
            changes[f.name] = new
    node = dataclasses.replace(e, **changes) if changes else e
    out = fn(node)
    return node if out is None else out


def _map_value(value, fn):
    if isinstance(value, t.Expr):
        return map_expr(value, fn)
    if isinstance(value, t.Mem):
        offset = map_expr(value.offset, fn)
        return value if offset is value.offset else dataclasses.replace(value, offset=offset)
    if isinstance(value, tuple) and value and isinstance(value[0], t.Expr):
        items = tuple(map_expr(v, fn) for v in value)
        return value if all(a is b for a, b in zip(items, value)) else items
    return value


def walk_expr(e: t.Expr) -> Iterator[t.Expr]:
    yield e
    for f in dataclasses.fields(e):
        value = getattr(e, f.name)
        if isinstance(value, t.Expr):
            yield from walk_expr(value)
        elif isinstance(value, t.Mem):
            yield from walk_expr(value.offset)
        elif isinstance(value, tuple):
            for v in value:
                if isinstance(v, t.Expr):
                    yield from walk_expr(v)


def stmt_exprs(s: t.Stmt) -> list[t.Expr]:
    """The expressions a statement evaluates itself (not those of nested statements)."""
    if isinstance(s, t.Declare):
        return [s.init] if s.init is not None else []
    if isinstance(s, t.Set):
        return [s.target, s.value]
    if isinstance(s, t.Store):
        return [s.mem.offset, s.value]
    if isinstance(s, (t.VecLoad, t.VecStore)):
        return [s.index, s.mem.offset]
    if isinstance(s, t.Loop):
        return [s.start, s.stop, s.step]
    if isinstance(s, t.IfThen):
        return [s.cond]
    if isinstance(s, t.Effect):
        return [s.call]
    if isinstance(s, Gather):
        return [s.value]
    return []


def children(s: t.Stmt) -> list[tuple[t.Stmt, ...]]:
    if isinstance(s, t.Loop):
        return [s.body]
    if isinstance(s, t.IfThen):
        return [s.then, s.orelse]
    if isinstance(s, t.Forever):
        return [s.body]
    return []


# ----- unique names ----------------------------------------------------------------------------


class _Renamer:
    """C scoping made explicit: every declaration and loop variable gets a name of its own."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, str]] = [{}]
        self.counts: dict[str, int] = {}

    def fresh(self, name: str) -> str:
        n = self.counts.get(name, 0)
        self.counts[name] = n + 1
        unique = name if n == 0 else f"{name}_{n}"
        self.scopes[-1][name] = unique
        return unique

    def resolve(self, name: str) -> str:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return name  # a parameter, tid, a tensor

    def expr(self, e: t.Expr) -> t.Expr:
        def rename(node: t.Expr) -> t.Expr | None:
            if isinstance(node, t.Sym):
                return dataclasses.replace(node, name=self.resolve(node.name))
            if isinstance(node, (t.Elem, t.Ref)):
                return dataclasses.replace(node, array=self.resolve(node.array))
            return None

        return map_expr(e, rename)

    def mem(self, m: t.Mem) -> t.Mem:
        return dataclasses.replace(m, offset=self.expr(m.offset))

    def block(self, stmts: tuple[t.Stmt, ...]) -> tuple[t.Stmt, ...]:
        self.scopes.append({})
        out = tuple(self.stmt(s) for s in stmts)
        self.scopes.pop()
        return out

    def stmt(self, s: t.Stmt) -> t.Stmt:
        r = dataclasses.replace
        if isinstance(s, t.Declare):
            init = self.expr(s.init) if s.init is not None else None
            return r(s, name=self.fresh(s.name), init=init)
        if isinstance(s, t.Set):
            return r(s, target=self.expr(s.target), value=self.expr(s.value))
        if isinstance(s, t.Store):
            return r(s, mem=self.mem(s.mem), value=self.expr(s.value))
        if isinstance(s, (t.VecLoad, t.VecStore)):
            return r(s, array=self.resolve(s.array), index=self.expr(s.index), mem=self.mem(s.mem))
        if isinstance(s, t.Loop):
            start, stop, step = self.expr(s.start), self.expr(s.stop), self.expr(s.step)
            self.scopes.append({})
            var = self.fresh(s.var)
            body = self.block(s.body)
            self.scopes.pop()
            return r(s, var=var, start=start, stop=stop, step=step, body=body)
        if isinstance(s, t.IfThen):
            return r(s, cond=self.expr(s.cond), then=self.block(s.then),
                     orelse=self.block(s.orelse))  # fmt: skip
        if isinstance(s, t.Forever):
            return r(s, body=self.block(s.body))
        if isinstance(s, t.Effect):
            return r(s, call=self.expr(s.call))
        return s


def unique_names(body: tuple[t.Stmt, ...]) -> tuple[t.Stmt, ...]:
    return _Renamer().block(body)


# ----- cutting at barriers and collectives ----------------------------------------------------


def is_shuffle(e: t.Expr) -> bool:
    return isinstance(e, t.Call) and e.fn == "shfl_xor"


def warp_functions(target: Target) -> set[str]:
    """Intrinsics that read or write other lanes' registers: the target's matrix atoms and
    matrix loads."""
    names = {a.intrinsic for a in target.atoms}
    for load in target.matrix_loads:
        for count in (1, 2, 4):
            names.add(f"{load.intrinsic}{'_trans' if load.trans else ''}_x{count}")
    return names


class _Builder:
    def __init__(self, target: Target) -> None:
        self.warp_fns = warp_functions(target)
        self.regions: list[Region] = []
        self.gathers: dict[str, DataType | None] = {}
        self.uniform: set[str] = set()
        self.counter = itertools.count()

    def cuts(self, s: t.Stmt) -> bool:
        """Whether ``s`` holds a barrier or a collective (then it runs at block level)."""
        if isinstance(s, t.Barrier):
            return True
        if isinstance(s, t.Effect) and s.call.fn in self.warp_fns:
            return True
        if any(is_shuffle(x) for e in stmt_exprs(s) for x in walk_expr(e)):
            return True
        return any(self.cuts(c) for body in children(s) for c in body)

    def build(self, stmts: tuple[t.Stmt, ...], in_block_loop: bool = False) -> list[Node]:
        nodes: list[Node] = [Region()]
        for s in stmts:
            if not self.cuts(s) and not (in_block_loop and _breaks(s)):
                nodes[-1].stmts.append(s)  # type: ignore[union-attr]
                continue
            if isinstance(s, t.Barrier):
                nodes.append(Region())
            elif isinstance(s, t.Effect):
                self.warp_call(s.call, nodes)
            elif isinstance(s, t.Loop):
                self.uniform.add(s.var)
                nodes.append(
                    BlockLoop(s.var, s.start, s.stop, s.step, self.build(s.body), s.dtype)
                )
                nodes.append(Region())
            elif isinstance(s, t.IfThen):
                _check_uniform(s.cond)
                then = self.build(s.then, in_block_loop)
                orelse = self.build(s.orelse, in_block_loop)
                nodes += [BlockIf(s.cond, then, orelse), Region()]
            elif isinstance(s, t.Forever):
                nodes += [BlockForever(self.build(s.body, in_block_loop=True)), Region()]
            elif isinstance(s, t.Break):
                nodes += [BlockBreak(), Region()]
            else:
                self.split_shuffles(s, nodes)
        return [n for n in nodes if not (isinstance(n, Region) and not n.stmts)]

    def temp(self, dtype: DataType | None) -> str:
        name = f"tv_lane{next(self.counter)}"
        self.gathers[name] = dtype
        return name

    def warp_call(self, call: t.Call, nodes: list[Node]) -> None:
        names = []
        for arg in call.args:
            name = self.temp(None if isinstance(arg, (t.Ref, t.Addr)) else arg.dtype)
            nodes[-1].stmts.append(Gather(name, arg))  # type: ignore[union-attr]
            names.append(name)
        nodes += [WarpCall(call.fn, tuple(names), call), Region()]

    def split_shuffles(self, s: t.Stmt, nodes: list[Node]) -> None:
        """Innermost shuffles first: gather their values, cut, read the partner's value."""
        while True:
            inner: list[t.Call] = []
            for e in stmt_exprs(s):
                for x in walk_expr(e):
                    if is_shuffle(x) and not any(is_shuffle(y) for a in x.args[:1]
                                                 for y in walk_expr(a)):  # fmt: skip
                        inner.append(x)
            if not inner:
                break
            replaced: dict[int, t.Expr] = {}
            for call in inner:
                name = self.temp(call.dtype)
                nodes[-1].stmts.append(Gather(name, call.args[0]))  # type: ignore[union-attr]
                lane = t.Bin("xor", t.Sym("tid"), call.args[1], call.args[1].dtype)
                replaced[id(call)] = Peer(name, lane, call.dtype)
            nodes.append(Region())
            s = _replace_calls(s, replaced)
        nodes[-1].stmts.append(s)  # type: ignore[union-attr]


def _replace_calls(s: t.Stmt, replaced: dict[int, t.Expr]) -> t.Stmt:
    if isinstance(s, (t.Set, t.Store)):
        return dataclasses.replace(s, value=_swap(s.value, replaced))
    if isinstance(s, t.Declare) and s.init is not None:
        return dataclasses.replace(s, init=_swap(s.init, replaced))
    raise AssertionError(f"a shuffle in an unexpected statement: {s!r}")  # pragma: no cover


def _swap(e: t.Expr, replaced: dict[int, t.Expr]) -> t.Expr:
    """Replace the shuffles in ``replaced`` (by identity) top-down, leaving the rest intact."""
    if id(e) in replaced:
        return replaced[id(e)]
    changes = {}
    for f in dataclasses.fields(e):
        value = getattr(e, f.name)
        if isinstance(value, t.Expr):
            new = _swap(value, replaced)
        elif isinstance(value, tuple) and value and isinstance(value[0], t.Expr):
            new = tuple(_swap(v, replaced) for v in value)
        else:
            continue
        if new is not value:
            changes[f.name] = new
    return dataclasses.replace(e, **changes) if changes else e


def _check_uniform(cond: t.Expr) -> None:
    """A condition around a cut runs once per block, as thread 0: it must not depend on the
    thread (the VM's control flow is block-uniform; a lowering that broke that is a bug)."""
    if any(isinstance(x, t.Sym) and x.name == "tid" for x in walk_expr(cond)):
        raise AssertionError(f"a barrier or collective under a per-thread condition: {cond!r}")


def _breaks(s: t.Stmt) -> bool:
    """Whether ``s`` holds a break that leaves it (not one of an inner while loop)."""
    if isinstance(s, t.Break):
        return True
    if isinstance(s, t.Forever):
        return False
    return any(_breaks(c) for body in children(s) for c in body)


def block_program(kernel: t.ThreadKernel, target: Target) -> BlockProgram:
    builder = _Builder(target)
    body = builder.build(unique_names(kernel.body))
    regions: list[Region] = []

    def number(nodes: list[Node]) -> None:
        for n in nodes:
            if isinstance(n, Region):
                n.index = len(regions)
                regions.append(n)
            elif isinstance(n, (BlockLoop, BlockForever)):
                number(n.body)
            elif isinstance(n, BlockIf):
                number(n.then)
                number(n.orelse)

    number(body)
    return BlockProgram(body, regions, builder.gathers, builder.uniform)
