"""The generated C codecs (``tilevm.backends.codecs``) as ``llvmlite.ir`` functions.

The C text stays the single source of truth for every backend, so the CPU backend translates it
rather than generating the codecs a second time. The translator knows exactly the C subset that
the generator emits -- straight-line code over ``uint32_t``, ``int32_t`` and ``float`` -- and
gives it C's meaning: literal typing, the usual arithmetic conversions, ``int`` comparison
results, logical shifts of unsigned and arithmetic shifts of signed values. Anything else means
the generator has grown a construct this file has not followed, so it raises ``CompileError``
(code ``cfunction-subset``) naming the construct and its line instead of guessing.

The body is straight-line, so a variable is just its current SSA value (no allocas). ``?:`` and
``&&``/``||`` become ``select``: the operands have no side effects, and ``select`` keeps the
poison of the unused operand (a shift by 32 or more, undefined in C as well) out of the result,
as C's lazy evaluation does.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np
from llvmlite import ir

from tilevm.backends.codecs import CFunction
from tilevm.errors import CompileError

__all__ = ["define"]

I32, F32 = ir.IntType(32), ir.FloatType()
_FALSE, _TRUE = ir.Constant(ir.IntType(1), 0), ir.Constant(ir.IntType(1), 1)
_TYPES = {"uint32_t": "u", "int32_t": "i", "float": "f"}  # C type -> kind of value
_IR_TYPE = {"u": I32, "i": I32, "f": F32}
# C's binary operators, loosest first: the index is the precedence.
_LEVELS = ["||", "&&", "|", "^", "&", "== !=", "< <= > >=", "<< >>", "+ -", "*"]
_BINARY = {op: prec for prec, level in enumerate(_LEVELS) for op in level.split()}
_ARITH = {"*": "mul fmul", "+": "add fadd", "-": "sub fsub", "&": "and_", "^": "xor", "|": "or_"}
_COMPARE = {"==", "!=", "<", "<=", ">", ">="}
_ASSIGN = {"=", "|=", "&=", "^=", "+=", "-=", "*=", "<<=", ">>="}
_TOKEN = re.compile(
    r"(?P<space>\s+|//[^\n]*|/\*.*?\*/)"
    r"|(?P<float>(?:\d+\.\d*|\.\d+|\d+(?=[eE]))(?:[eE][+-]?\d+)?\w*)"
    r"|(?P<int>\d\w*)|(?P<name>[A-Za-z_]\w*)"
    r"|(?P<op><<=|>>=|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&|^]=|\+\+|--|->"
    r"|[-+*/%&|^~!<>=?:;,(){}\[\].])"
    r"|(?P<other>.)",
    re.S,
)


class _Tok(NamedTuple):
    kind: str
    text: str
    line: int


class _Val(NamedTuple):
    value: ir.Value
    kind: str  # "u", "i" or "f": the C type; comparisons are "i" as in C


def define(module: ir.Module, fn: CFunction) -> ir.Function:
    """Define the generated C function ``fn`` in ``module`` (internal, always inlined) and return
    it; a function of that name already defined there is returned as it is. Raises
    ``CompileError`` for C outside the subset, or a name that the module uses otherwise."""
    existing = module.globals.get(fn.name)
    if isinstance(existing, ir.Function) and not existing.is_declaration:
        return existing
    if existing is not None:
        raise CompileError(
            f"{fn.name} is already declared in the module but not defined by the generator",
            hint="let define() create the codec functions",
            code="cfunction-name",
        )
    return _Translator(module, fn).function


class _Translator:
    def __init__(self, module: ir.Module, fn: CFunction) -> None:
        self.fn = fn
        self.tokens = [
            _Tok(m.lastgroup, m.group(), fn.source.count("\n", 0, m.start()) + 1)
            for m in _TOKEN.finditer(fn.source)
            if m.lastgroup != "space"
        ]
        self.tokens.append(_Tok("end", "end of text", fn.source.count("\n") + 1))
        self.pos = 0
        # TV_INLINE <ret> <name>(<type> <param>, ...) {
        self.expect("TV_INLINE")
        ret = self.type_name()
        if self.next().text != fn.name:
            raise self.error(f"a function not named {fn.name}", self.tokens[self.pos - 1])
        self.expect("(")
        params = [(self.type_name(), self.name())]
        while self.accept(","):
            params.append((self.type_name(), self.name()))
        self.expect(")")
        self.expect("{")
        fnty = ir.FunctionType(_IR_TYPE[ret], [_IR_TYPE[kind] for kind, _ in params])
        self.function = ir.Function(module, fnty, fn.name)
        self.function.linkage = "internal"
        self.function.attributes.add("alwaysinline")
        self.b = ir.IRBuilder(self.function.append_basic_block("entry"))
        self.vars: dict[str, _Val] = {}
        for arg, (kind, name) in zip(self.function.args, params):
            arg.name = name
            self.vars[name] = _Val(arg, kind)
        self.body(ret)

    # ----- tokens and errors -------------------------------------------------------------------

    def error(self, what: str, tok: _Tok | None = None) -> CompileError:
        tok = tok or self.tokens[self.pos]
        lines = self.fn.source.splitlines() + [""]
        return CompileError(
            f"{self.fn.name}: {what} is outside the C subset that the CPU backend translates",
            found=f"line {tok.line}: {lines[tok.line - 1].strip()}",
            hint="the codec generator and backends/cpu/cfunctions.py must change together",
            code="cfunction-subset",
        )

    def next(self) -> _Tok:
        tok = self.tokens[self.pos]
        self.pos += tok.kind != "end"
        return tok

    def accept(self, text: str) -> bool:
        if self.tokens[self.pos].text == text:
            self.pos += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            raise self.error(f"{self.tokens[self.pos].text!r} where {text!r} belongs")

    def name(self) -> str:
        if self.tokens[self.pos].kind != "name":
            raise self.error(f"{self.tokens[self.pos].text!r} where a name belongs")
        return self.next().text

    def type_name(self) -> str:
        if self.tokens[self.pos].text not in _TYPES:
            raise self.error(f"the type {self.tokens[self.pos].text!r}")
        return _TYPES[self.next().text]

    # ----- statements -----------------------------------------------------------------------

    def body(self, ret: str) -> None:
        while True:
            tok = self.next()
            if tok.text == "}" or tok.kind == "end":
                raise self.error("a function that does not end in a return", tok)
            if tok.text == "return":
                self.b.ret(self.convert(self.expr(), ret))
                self.expect(";")
                self.expect("}")
                if self.tokens[self.pos].kind != "end":
                    raise self.error(f"{self.tokens[self.pos].text!r} after the function")
                return
            if tok.text in _TYPES:
                name = self.name()
                if name in self.vars:
                    raise self.error(f"a second declaration of {name!r}", tok)
                self.expect("=")
                kind = _TYPES[tok.text]
                self.vars[name] = _Val(self.convert(self.expr(), kind), kind)
            elif tok.text in self.vars and self.tokens[self.pos].text in _ASSIGN:
                op, old = self.next().text, self.vars[tok.text]
                value = self.expr() if op == "=" else self.binary(op[:-1], old, self.expr())
                self.vars[tok.text] = _Val(self.convert(value, old.kind), old.kind)
            else:
                raise self.error(f"the statement starting with {tok.text!r}", tok)
            self.expect(";")

    # ----- expressions: precedence climbing -------------------------------------------------

    def expr(self) -> _Val:
        cond = self.binary_expr(0)
        if not self.accept("?"):
            return cond
        then = self.expr()
        self.expect(":")
        other = self.expr()
        kind = _common(then, other)
        value = self.b.select(self.truth(cond), self.convert(then, kind), self.convert(other, kind))
        return _Val(value, kind)

    def binary_expr(self, min_prec: int) -> _Val:
        lhs = self.unary()
        while _BINARY.get((tok := self.tokens[self.pos]).text, -1) >= min_prec:
            self.next()
            lhs = self.binary(tok.text, lhs, self.binary_expr(_BINARY[tok.text] + 1))
        return lhs

    def unary(self) -> _Val:
        tok, b = self.tokens[self.pos], self.b
        if tok.text in ("-", "~", "!"):
            self.next()
            v = self.unary()
            if tok.text == "!":
                zero = ir.Constant(_IR_TYPE[v.kind], 0)
                cmp = b.fcmp_ordered if v.kind == "f" else b.icmp_unsigned
                return _Val(b.zext(cmp("==", v.value, zero), I32), "i")
            if v.kind == "f":
                if tok.text == "~":
                    raise self.error("'~' of a float", tok)
                return _Val(b.fneg(v.value), "f")
            return _Val(b.neg(v.value) if tok.text == "-" else b.not_(v.value), v.kind)
        if tok.text == "(" and self.tokens[self.pos + 1].text in _TYPES:
            self.next()
            kind = self.type_name()
            self.expect(")")
            return _Val(self.convert(self.unary(), kind), kind)
        return self.primary()

    def primary(self) -> _Val:
        tok = self.next()
        if tok.kind == "int":
            literal = _int_literal(tok.text)
            if literal is None:
                raise self.error(f"the integer literal {tok.text!r}", tok)
            return literal
        if tok.kind == "float":
            # Only float (f) literals that float32 holds exactly: no double, no double rounding.
            m = re.fullmatch(r"((?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)[fF]", tok.text)
            if m is None or float(np.float32(float(m[1]))) != float(m[1]):
                raise self.error(f"the float literal {tok.text!r}", tok)
            return _Val(ir.Constant(F32, float(m[1])), "f")
        if tok.text == "(":
            v = self.expr()
            self.expect(")")
            return v
        if tok.text in ("TV_BITS_TO_FLOAT", "TV_FLOAT_TO_BITS"):
            self.expect("(")
            to_float = tok.text == "TV_BITS_TO_FLOAT"
            # Both are functions of one typed parameter: the argument converts to it first.
            arg = self.convert(self.expr(), "u" if to_float else "f")
            self.expect(")")
            return _Val(self.b.bitcast(arg, F32 if to_float else I32), "f" if to_float else "u")
        if tok.kind == "name" and self.tokens[self.pos].text == "(":
            raise self.error(f"the call {tok.text}()", tok)
        if tok.kind == "name" and tok.text in self.vars:
            return self.vars[tok.text]
        raise self.error(f"{tok.text!r}" + (" (undeclared)" if tok.kind == "name" else ""), tok)

    def binary(self, op: str, x: _Val, y: _Val) -> _Val:
        b = self.b
        if op in ("&&", "||"):
            p, q = self.truth(x), self.truth(y)
            r = b.select(p, q, _FALSE) if op == "&&" else b.select(p, _TRUE, q)
            return _Val(b.zext(r, I32), "i")
        if op in ("<<", ">>", "&", "^", "|") and "f" in (x.kind, y.kind):
            raise self.error(f"{op!r} on a float")
        if op in ("<<", ">>"):  # the type is the left operand's, not the common one
            shift = b.shl if op == "<<" else b.lshr if x.kind == "u" else b.ashr
            return _Val(shift(x.value, y.value), x.kind)
        kind = _common(x, y)
        p, q = self.convert(x, kind), self.convert(y, kind)
        if op in _COMPARE:
            if kind == "f":  # ordered, but != is true for NaN
                r = b.fcmp_unordered(op, p, q) if op == "!=" else b.fcmp_ordered(op, p, q)
            else:
                r = (b.icmp_unsigned if kind == "u" else b.icmp_signed)(op, p, q)
            return _Val(b.zext(r, I32), "i")
        return _Val(getattr(b, _ARITH[op].split()[kind == "f"])(p, q), kind)

    def truth(self, v: _Val) -> ir.Value:
        """C's test of a scalar against zero (a NaN is true)."""
        if v.kind == "f":
            return self.b.fcmp_unordered("!=", v.value, ir.Constant(F32, 0))
        return self.b.icmp_unsigned("!=", v.value, ir.Constant(I32, 0))

    def convert(self, v: _Val, kind: str) -> ir.Value:
        """The value of ``v`` as the C type ``kind``: int <-> unsigned keep the bits."""
        b = self.b
        if kind == v.kind or "f" not in (kind, v.kind):
            return v.value
        if kind == "f":
            return (b.uitofp if v.kind == "u" else b.sitofp)(v.value, F32)
        return (b.fptoui if kind == "u" else b.fptosi)(v.value, I32)


def _common(x: _Val, y: _Val) -> str:
    """C's usual arithmetic conversions, with every integer type 32 bits wide."""
    return "f" if "f" in (x.kind, y.kind) else "u" if "u" in (x.kind, y.kind) else "i"


def _int_literal(text: str) -> _Val | None:
    """C's literal typing: the first of its candidate types that holds the value; octal, long
    and long long literals are outside the subset."""
    m = re.fullmatch(r"(0[xX][0-9a-fA-F]+|0|[1-9]\d*)([uU]?)", text)
    if m is None:
        return None
    value = int(m[1], 0)
    kinds = "u" if m[2] else "iu" if m[1][:2] in ("0x", "0X") else "i"
    for kind in kinds:
        if value < 2 ** (31 if kind == "i" else 32):
            return _Val(ir.Constant(I32, value), kind)
    return None
