"""A small abstract interpreter over the statements and expressions of one ``select_model`` walk: names bound to
abstract values (:mod:`.values`), ``if``/``match`` tests on ``model_id`` decided, both arms of an undecided test
walked and merged. Calls are opaque here; :class:`~.walk.Walk` says what the calls a harness makes mean."""

from __future__ import annotations

import ast
import copy
from typing import Any

from .values import (
    Checkpoint,
    Choice,
    Imported,
    ModuleValue,
    Opaque,
    Stop,
    Unreadable,
    is_model_id,
    known,
    merge,
)

__all__ = ["Evaluator", "compares_model_id"]

# calls made for their output or logging only
_IGNORED_CALLS = {"print", "torch.save", "logger.info", "logging.info", "pprint"}


class Evaluator:
    """The walk's state (``env``: name -> abstract value) and the interpretation of what it knows."""

    def __init__(self, model_id: int) -> None:
        self.model_id = model_id
        self.env: dict[str, Any] = {"model_id": model_id}
        self.star: list[str] = []  # modules imported with `from m import *`
        self.branch_line: int | None = None
        self.returned: Any = None

    # expressions -----------------------------------------------------------------------------------------------------

    def value(self, node: ast.AST | None) -> Any:
        if node is None:
            return None
        try:
            return self._value(node)
        except Unreadable:
            return Opaque(ast.unparse(node))

    def _value(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if is_model_id(node):
            return self.model_id
        if isinstance(node, ast.Name):
            return self.env.get(node.id, Opaque(node.id))
        if isinstance(node, ast.JoinedStr):
            return self._fstring(node)
        if isinstance(node, (ast.Tuple, ast.List)):
            return [self.value(e) for e in node.elts]
        if isinstance(node, ast.Dict) and None not in node.keys:
            return {self.value(k): self.value(v) for k, v in zip(node.keys, node.values)}  # type: ignore[arg-type]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            v = self.value(node.operand)
            return (
                -v if isinstance(v, (int, float)) and not isinstance(v, bool) else Opaque(ast.unparse(node))
            )
        if isinstance(node, ast.BinOp):
            return self._binop(node)
        if isinstance(node, ast.IfExp):
            test = self.truth(node.test)
            if test is not None:
                return self.value(node.body if test else node.orelse)
            return merge(self.value(node.body), self.value(node.orelse))
        if isinstance(node, ast.Attribute):
            holder = self.value(node.value)
            if isinstance(holder, ModuleValue):
                return Imported(holder.module, node.attr)
            if isinstance(holder, Imported):  # `from models import team07` then team07.Net
                return Imported(f"{holder.module}.{holder.name}", node.attr)
            return Opaque(ast.unparse(node))
        if isinstance(node, ast.Subscript):
            return self._subscript(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        return Opaque(ast.unparse(node))

    def _fstring(self, node: ast.JoinedStr) -> Any:
        out = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                out.append(str(part.value))
                continue
            if not isinstance(part, ast.FormattedValue):
                return Opaque(ast.unparse(node))
            v = self.value(part.value)
            spec = self.value(part.format_spec) if part.format_spec is not None else ""
            if not known(v) or not isinstance(spec, str):
                return Opaque(ast.unparse(node))
            conv = {ord("r"): repr, ord("s"): str, ord("a"): ascii}.get(part.conversion)
            out.append(format(conv(v) if conv else v, spec))
        return "".join(out)

    def _binop(self, node: ast.BinOp) -> Any:
        a, b = self.value(node.left), self.value(node.right)
        if isinstance(node.op, ast.Add) and isinstance(a, str) and isinstance(b, str):
            return a + b
        if isinstance(node.op, ast.Div) and isinstance(a, str) and isinstance(b, str):  # pathlib's /
            return f"{a.rstrip('/')}/{b}"
        if isinstance(node.op, ast.Mod) and isinstance(a, str) and known(b):
            try:
                return a % (tuple(b) if isinstance(b, list) else b)
            except (TypeError, ValueError):
                return Opaque(ast.unparse(node))
        if (
            isinstance(node.op, (ast.Add, ast.Sub, ast.Mult))
            and isinstance(a, (int, float))
            and isinstance(b, (int, float))
        ):
            return {ast.Add: a + b, ast.Sub: a - b, ast.Mult: a * b}[type(node.op)]
        return Opaque(ast.unparse(node))

    def _subscript(self, node: ast.Subscript) -> Any:
        holder = self.value(node.value)
        key = self.value(node.slice)
        if isinstance(holder, Checkpoint):
            if isinstance(key, str) or isinstance(key, Choice):
                return Checkpoint(holder.path, (*holder.keys, key))
            return Opaque(ast.unparse(node))
        if isinstance(holder, (list, dict)) and known(key):
            try:
                return holder[key]
            except (KeyError, IndexError, TypeError):
                return Opaque(ast.unparse(node))
        return Opaque(ast.unparse(node))

    def truth(self, test: ast.AST) -> bool | None:
        """A test's value when it depends only on what the walk knows (``model_id`` comparisons, literals)."""
        if isinstance(test, ast.BoolOp):
            values = [self.truth(v) for v in test.values]
            if isinstance(test.op, ast.And):
                return False if False in values else (True if all(v is True for v in values) else None)
            return True if True in values else (False if all(v is False for v in values) else None)
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            v = self.truth(test.operand)
            return None if v is None else not v
        if isinstance(test, ast.Compare) and len(test.ops) == 1:
            a, b = self.value(test.left), self.value(test.comparators[0])
            if not (known(a) and known(b)):
                return None
            op = test.ops[0]
            try:
                if isinstance(op, ast.Eq):
                    return a == b
                if isinstance(op, ast.NotEq):
                    return a != b
                if isinstance(op, ast.In):
                    return a in b
                if isinstance(op, ast.NotIn):
                    return a not in b
                if isinstance(op, (ast.Lt, ast.LtE, ast.Gt, ast.GtE)):
                    return {ast.Lt: a < b, ast.LtE: a <= b, ast.Gt: a > b, ast.GtE: a >= b}[type(op)]
            except TypeError:
                return None
            return None
        if isinstance(test, ast.Constant):
            return bool(test.value)
        return None

    def call(self, node: ast.Call) -> Any:
        """A call's value: opaque here (:class:`~.walk.Walk` reads the calls a harness makes)."""
        return Opaque(ast.unparse(node))

    # statements ------------------------------------------------------------------------------------------------------

    def run(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            self.stmt(stmt)

    def stmt(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.ImportFrom) and stmt.module and not stmt.level:
            for alias in stmt.names:
                if alias.name == "*":
                    self.star.append(stmt.module)
                else:
                    self.env[alias.asname or alias.name] = Imported(stmt.module, alias.name)
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                name = alias.asname or alias.name.partition(".")[0]
                self.env[name] = ModuleValue(alias.name if alias.asname else name)
        elif isinstance(stmt, ast.Assign):
            value = self.value(stmt.value)
            for target in stmt.targets:
                self.assign(target, value, stmt.value)
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            self.assign(stmt.target, self.value(stmt.value), stmt.value)
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            if ast.unparse(stmt.value.func) not in _IGNORED_CALLS:
                self.value(stmt.value)
        elif isinstance(stmt, ast.If):
            self.if_(stmt)
        elif isinstance(stmt, ast.For):
            self.for_(stmt)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            self.run(stmt.body)
        elif isinstance(stmt, ast.Try):
            self.run(stmt.body)
            self.run(stmt.orelse)
            self.run(stmt.finalbody)
        elif isinstance(stmt, ast.Match):
            self.match(stmt)
        elif isinstance(stmt, ast.Return):
            self.returned = self.value(stmt.value)
            raise Stop
        elif isinstance(stmt, ast.Raise):
            raise Stop
        # anything else (pass, del, assert, nested defs, while loops) changes nothing the draft reads

    def assign(self, target: ast.AST, value: Any, node: ast.AST) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            if isinstance(node, (ast.Tuple, ast.List)) and len(node.elts) == len(target.elts):
                for t, v in zip(target.elts, node.elts):
                    self.assign(t, self.value(v), v)
            elif isinstance(value, list) and len(value) == len(target.elts):
                for t, v in zip(target.elts, value):
                    self.assign(t, v, t)
            else:
                for t in target.elts:
                    self.assign(t, Opaque(ast.unparse(node)), t)
        elif isinstance(target, ast.Name):
            self.env[target.id] = value

    def if_(self, stmt: ast.If) -> None:
        test = self.truth(stmt.test)
        if compares_model_id(stmt.test) and test is True and self.branch_line is None:
            self.branch_line = stmt.lineno
        if test is not None:
            self.run(stmt.body if test else stmt.orelse)
            return
        # decided at run time (e.g. which checkpoint entry exists): walk both arms, merge what they bind
        before = copy.copy(self.env)
        arms = []
        for body in (stmt.body, stmt.orelse):
            self.env = copy.copy(before)
            try:
                self.run(body)
            except Stop:
                pass
            arms.append(self.env)
        self.env = {
            k: merge(arms[0].get(k, before.get(k)), arms[1].get(k, before.get(k)))
            for k in {*arms[0], *arms[1]}
        }

    def match(self, stmt: ast.Match) -> None:
        """``match model_id: case 3: ...``: the first case that matches what the walk knows."""
        subject = self.value(stmt.subject)
        for case in stmt.cases:
            hit = self.matches(case.pattern, subject)
            if hit and case.guard is not None:
                hit = self.truth(case.guard)
            if hit is None:
                return  # decided at run time: nothing the draft can follow
            if hit:
                if is_model_id(stmt.subject) and self.branch_line is None:
                    self.branch_line = case.pattern.lineno
                self.run(case.body)
                return

    def matches(self, pattern: ast.pattern, subject: Any) -> bool | None:
        if isinstance(pattern, ast.MatchAs) and pattern.pattern is None:
            return True  # `case _:` / `case x:`
        if isinstance(pattern, ast.MatchAs):
            return self.matches(pattern.pattern, subject)
        if isinstance(pattern, ast.MatchOr):
            hits = [self.matches(p, subject) for p in pattern.patterns]
            return True if True in hits else (None if None in hits else False)
        if isinstance(pattern, ast.MatchValue):
            v = self.value(pattern.value)
            return v == subject if known(v) and known(subject) else None
        if isinstance(pattern, ast.MatchSingleton):
            return pattern.value is subject if known(subject) else None
        return None

    def for_(self, stmt: ast.For) -> None:
        """Loops bind nothing the interpreter reads (:class:`~.walk.Walk` reads the per-module calls)."""


def compares_model_id(test: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Compare) and (is_model_id(n.left) or any(is_model_id(c) for c in n.comparators))
        for n in ast.walk(test)
    )
