"""Draft a challenge manifest from a repository laid out like the NTIRE ESR organisers' (``effbench challenge init``).

The organisers' harness (``test_demo.py``, or any top-level file defining ``select_model``) is read with :mod:`ast`,
never run. Every ``model_id`` the function compares against (``model_id == N``, ``model_id in (N, M)``) is one
candidate entry, and the whole function is *walked* once per id by a small abstract interpreter: ``if`` tests on
``model_id`` are decided, names are bound to what they hold (an imported class, a module from
``importlib.import_module``, a loaded checkpoint and the entries taken from it, the model, literals), and what the
harness does to the model is recorded. So the draft reads what organisers write, wherever in the function it is:

- the class (``from models.teamNN_X import Class [as Alias]``, ``importlib.import_module(...)`` then
  ``getattr(module, "Class")`` or ``module.Class``) and its positional and keyword constructor arguments (literals,
  f-strings, ``os.path.join``, names bound earlier such as ``img_range=data_range``);
- ``name, data_range = f"{model_id:02}_X", 1.0`` and ``model_path = ...``;
- the load: ``model.load_state_dict(torch.load(p)["params_ema"], strict=...)`` with the checkpoint held in a
  variable or not, an entry chosen at run time (``if "params_ema" in ckpt: key = ...`` or ``a if c else b``: the
  alternatives, in the harness's order), ``torch.load(p, map_location=...)``; a class that overrides
  ``load_state_dict`` is loaded through it; ``model.load_weights(model_path)`` (the model loads itself);
- calls after loading: ``model.repa()``, ``model.switch_deploy()``, ``for m in model.modules(): if hasattr(m,
  "switch_deploy"): m.switch_deploy()``, and model-returning calls (``model = model.cuda()``, ``.to(device)``,
  ``.eval()``) passed through;
- statements after the ``if`` chain that apply to every entry (``tile = 256 if model_id == 2 else None``).

Every branch becomes an entry or is listed with its line and why. A branch that constructs no model it can read
(``pass``, a helper the draft cannot follow) falls back to pairing ``models/teamNN_*`` with ``model_zoo/teamNN_*``
by team number, the entry marked with a ``note`` saying what was guessed; without files to pair it is listed only.
Without a harness, files are paired by team number. Whatever the draft could not decide is listed in
:attr:`Draft.unresolved` (and as comments at the top of the TOML). A checkpoint missing from the repository does not
skip the entry: its static and memory parts need no weights. Model ``0`` / ``team00`` is the baseline.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..base.errors import UsageError
from ..zoo.spec import AfterLoad
from .manifest import Challenge, Entry, dump_manifest, known_years

__all__ = ["Draft", "draft_manifest"]

_TEAM = re.compile(r"team(\d+)", re.IGNORECASE)
_CHECKPOINT_SUFFIXES = (".pth", ".pt", ".pkl", ".ckpt", ".bin", ".safetensors")
# methods that return the model itself (or a copy of it on another device) and change nothing a count sees
_PASS_THROUGH = {"eval", "to", "cuda", "cpu", "float", "train", "requires_grad_", "share_memory"}
# methods that change the model's dtype: kept as after-load calls (the harness measures the model so)
_DTYPE_CALLS = {"half", "bfloat16", "double"}
# calls made for their output or logging only
_IGNORED_CALLS = {"print", "torch.save", "logger.info", "logging.info", "pprint"}
# what the effbench loader unwraps by itself (weights.WRAPPER_KEYS' commonest): no key needed
_UNWRAPPED = {"state_dict", "params_ema", "params", "model", "net"}


@dataclass(frozen=True)
class Draft:
    """A drafted manifest: the challenge it describes, its TOML text, and what the organiser must still decide."""

    challenge: Challenge
    text: str
    unresolved: list[str] = field(default_factory=list)


class _Unreadable(Exception):
    """A harness construct the draft does not understand."""


class _Stop(Exception):
    """The walk reached ``raise`` or ``return``: nothing after it runs for this id."""


# --- abstract values -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Opaque:
    """A value the draft cannot know (its source text)."""

    text: str


@dataclass(frozen=True)
class _Imported:
    """A name imported from a module: a class, a factory, or a submodule."""

    module: str
    name: str


@dataclass(frozen=True)
class _Module:
    module: str


@dataclass(frozen=True)
class _Choice:
    """A value chosen at run time among literals (in the harness's order)."""

    options: tuple[Any, ...]


@dataclass(frozen=True)
class _Checkpoint:
    """``torch.load(path)`` with the entries taken from it (each a key or a :class:`_Choice` of keys)."""

    path: Any
    keys: tuple[Any, ...] = ()


@dataclass
class _Model:
    """A model object the harness constructed, and what was done to it."""

    module: str
    cls: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    line: int
    load: dict[str, Any] | None = None  # checkpoint path, keys, strict, method
    after_load: list[AfterLoad] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class _Branch:
    """What the harness does for one ``model_id``."""

    model_id: int
    line: int
    model: _Model | None = None
    name: Any = None
    data_range: Any = None
    tile: Any = None
    notes: list[str] = field(default_factory=list)


def _is_model_id(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id == "model_id") or (
        isinstance(node, ast.Attribute) and node.attr == "model_id"
    )


def _known(value: Any) -> bool:
    """A plain literal (nothing opaque inside)."""
    if isinstance(value, (list, tuple)):
        return all(_known(v) for v in value)
    if isinstance(value, dict):
        return all(_known(v) for v in value.values())
    return value is None or isinstance(value, (str, int, float, bool))


class _Walk:
    """One walk of ``select_model`` for one ``model_id``: an abstract interpreter over the statements it knows."""

    def __init__(self, model_id: int, module: ast.Module | None = None) -> None:
        self.model_id = model_id
        self.env: dict[str, Any] = {"model_id": model_id}
        self.star: list[str] = []  # modules imported with `from m import *`
        self.models: list[_Model] = []
        self.branch_line: int | None = None
        self.problems: list[str] = []  # why a constructor call was not drafted
        self.functions: dict[str, ast.FunctionDef] = {}  # the harness file's own functions (helpers it calls)
        self.returned: Any = None
        self.depth = 0
        if module is not None:  # the harness file's imports, constants and registries, as at its import
            self.functions = {n.name: n for n in module.body if isinstance(n, ast.FunctionDef)}
            for stmt in module.body:
                if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign)):
                    self.stmt(stmt)
        self.globals = dict(self.env)

    # expressions -----------------------------------------------------------------------------------------------------

    def value(self, node: ast.AST | None) -> Any:
        if node is None:
            return None
        try:
            return self._value(node)
        except _Unreadable:
            return _Opaque(ast.unparse(node))

    def _value(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if _is_model_id(node):
            return self.model_id
        if isinstance(node, ast.Name):
            return self.env.get(node.id, _Opaque(node.id))
        if isinstance(node, ast.JoinedStr):
            return self._fstring(node)
        if isinstance(node, (ast.Tuple, ast.List)):
            return [self.value(e) for e in node.elts]
        if isinstance(node, ast.Dict) and None not in node.keys:
            return {self.value(k): self.value(v) for k, v in zip(node.keys, node.values)}  # type: ignore[arg-type]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            v = self.value(node.operand)
            return (
                -v if isinstance(v, (int, float)) and not isinstance(v, bool) else _Opaque(ast.unparse(node))
            )
        if isinstance(node, ast.BinOp):
            return self._binop(node)
        if isinstance(node, ast.IfExp):
            test = self.truth(node.test)
            if test is not None:
                return self.value(node.body if test else node.orelse)
            return _merge(self.value(node.body), self.value(node.orelse))
        if isinstance(node, ast.Attribute):
            holder = self.value(node.value)
            if isinstance(holder, _Module):
                return _Imported(holder.module, node.attr)
            if isinstance(holder, _Imported):  # `from models import team07` then team07.Net
                return _Imported(f"{holder.module}.{holder.name}", node.attr)
            return _Opaque(ast.unparse(node))
        if isinstance(node, ast.Subscript):
            return self._subscript(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        return _Opaque(ast.unparse(node))

    def _fstring(self, node: ast.JoinedStr) -> Any:
        out = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                out.append(str(part.value))
                continue
            if not isinstance(part, ast.FormattedValue):
                return _Opaque(ast.unparse(node))
            v = self.value(part.value)
            spec = self.value(part.format_spec) if part.format_spec is not None else ""
            if not _known(v) or not isinstance(spec, str):
                return _Opaque(ast.unparse(node))
            conv = {ord("r"): repr, ord("s"): str, ord("a"): ascii}.get(part.conversion)
            out.append(format(conv(v) if conv else v, spec))
        return "".join(out)

    def _binop(self, node: ast.BinOp) -> Any:
        a, b = self.value(node.left), self.value(node.right)
        if isinstance(node.op, ast.Add) and isinstance(a, str) and isinstance(b, str):
            return a + b
        if isinstance(node.op, ast.Div) and isinstance(a, str) and isinstance(b, str):  # pathlib's /
            return f"{a.rstrip('/')}/{b}"
        if isinstance(node.op, ast.Mod) and isinstance(a, str) and _known(b):
            try:
                return a % (tuple(b) if isinstance(b, list) else b)
            except (TypeError, ValueError):
                return _Opaque(ast.unparse(node))
        if (
            isinstance(node.op, (ast.Add, ast.Sub, ast.Mult))
            and isinstance(a, (int, float))
            and isinstance(b, (int, float))
        ):
            return {ast.Add: a + b, ast.Sub: a - b, ast.Mult: a * b}[type(node.op)]
        return _Opaque(ast.unparse(node))

    def _subscript(self, node: ast.Subscript) -> Any:
        holder = self.value(node.value)
        key = self.value(node.slice)
        if isinstance(holder, _Checkpoint):
            if isinstance(key, str) or isinstance(key, _Choice):
                return _Checkpoint(holder.path, (*holder.keys, key))
            return _Opaque(ast.unparse(node))
        if isinstance(holder, (list, dict)) and _known(key):
            try:
                return holder[key]
            except (KeyError, IndexError, TypeError):
                return _Opaque(ast.unparse(node))
        return _Opaque(ast.unparse(node))

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
            if not (_known(a) and _known(b)):
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
        func = ast.unparse(node.func)
        args = [self.value(a) for a in node.args]
        kwargs = {k.arg: self.value(k.value) for k in node.keywords if k.arg is not None}
        if func in ("os.path.join", "osp.join", "join", "Path", "pathlib.Path") and args:
            if all(isinstance(a, str) for a in args):
                return "/".join(a.rstrip("/") for a in args[:-1]) + ("/" if len(args) > 1 else "") + args[-1]
            return _Opaque(ast.unparse(node))
        if func in ("os.path.abspath", "os.path.normpath", "os.path.expanduser", "str") and len(args) == 1:
            return args[0]
        if func == "torch.load" and args:
            return _Checkpoint(args[0])
        if func in ("importlib.import_module", "import_module") and args and isinstance(args[0], str):
            return _Module(args[0])
        if func == "getattr" and len(args) >= 2 and isinstance(args[1], str):
            holder = args[0]
            if isinstance(holder, _Module):
                return _Imported(holder.module, args[1])
            if isinstance(holder, _Imported):
                return _Imported(f"{holder.module}.{holder.name}", args[1])
            return _Opaque(ast.unparse(node))
        if func in ("dict", "OrderedDict", "collections.OrderedDict") and len(args) == 1:
            return args[
                0
            ]  # a copy of a checkpoint (its keys possibly renamed afterwards, which effbench undoes)
        callee: Any = None
        if isinstance(node.func, ast.Attribute):
            holder = self.value(node.func.value)
            method = node.func.attr
            if isinstance(holder, _Checkpoint) and method == "get" and args:
                key = args[0]
                if len(args) > 1 and args[1] == holder and isinstance(key, str):  # ckpt.get("params", ckpt)
                    return _Checkpoint(holder.path, (*holder.keys, _Choice((key, None))))
                return (
                    _Checkpoint(holder.path, (*holder.keys, key)) if isinstance(key, str) else _Opaque(func)
                )
            if isinstance(holder, _Model):
                return self.model_call(holder, method, args, kwargs, node)
            if isinstance(holder, _Module):
                callee = _Imported(holder.module, method)
            elif isinstance(holder, _Imported):  # `from models import team07` then team07.Net(...)
                callee = _Imported(f"{holder.module}.{holder.name}", method)
        elif isinstance(node.func, ast.Name):
            callee = self.env.get(node.func.id)
            if callee is None and node.func.id in self.functions:  # a helper of the harness file
                return self.inline(self.functions[node.func.id], node, args, kwargs)
            if callee is None and self.star:  # `from models.x import *` then Net(...)
                callee = _Imported(self.star[-1], node.func.id)
        else:
            callee = self.value(node.func)
        if isinstance(callee, _Imported):
            try:
                return self.construct(callee, node, args, kwargs)
            except _Unreadable as exc:
                self.problems.append(f"line {node.lineno}: {exc}")
        return _Opaque(ast.unparse(node))

    def inline(self, fn: ast.FunctionDef, node: ast.Call, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Walk a helper function of the harness file called with these arguments; its return value."""
        if self.depth >= 4 or any(isinstance(a, ast.Starred) for a in node.args):
            return _Opaque(ast.unparse(node))
        sub = _Walk(self.model_id)
        sub.functions, sub.models, sub.problems, sub.star = (
            self.functions,
            self.models,
            self.problems,
            self.star,
        )
        sub.depth = self.depth + 1
        sub.env = dict(self.globals)
        sub.globals = self.globals
        a = fn.args
        params = [*a.posonlyargs, *a.args]
        defaults = dict(zip([p.arg for p in params[len(params) - len(a.defaults) :]], a.defaults))
        defaults.update({p.arg: d for p, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None})
        for p, v in zip(params, args):
            sub.env[p.arg] = v
        for p in [*params[len(args) :], *a.kwonlyargs]:
            if p.arg in kwargs:
                sub.env[p.arg] = kwargs[p.arg]
            elif p.arg in defaults:
                sub.env[p.arg] = self.value(defaults[p.arg])
        try:
            sub.run(fn.body)
        except _Stop:
            pass
        return sub.returned if sub.returned is not None else _Opaque(ast.unparse(node))

    def construct(self, callee: _Imported, node: ast.Call, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise _Unreadable(f"{ast.unparse(node)} unpacks its positional arguments")
        notes = []
        for k in node.keywords:
            if k.arg is None:  # Class(**cfg)
                cfg = self.value(k.value)
                if isinstance(cfg, dict) and all(isinstance(x, str) for x in cfg):
                    kwargs.update(cfg)
                else:
                    raise _Unreadable(
                        f"{ast.unparse(node)}: the keyword arguments {_shown(cfg)} are not a literal"
                    )
        if (
            callee.name in ("DataParallel", "DistributedDataParallel")
            and args
            and isinstance(args[0], _Model)
        ):
            return args[0]  # the same network (effbench drops the wrapper's 'module.' key prefix)
        if any(isinstance(a, _Model) for a in [*args, *kwargs.values()]):
            raise _Unreadable(f"{ast.unparse(node)} wraps another model")
        for i, a in enumerate(args):
            if not _known(a):
                raise _Unreadable(
                    f"constructor argument {i + 1} of {ast.unparse(node)} is not a literal ({a.text})"
                )
        for k, v in list(kwargs.items()):
            if not _known(v):
                text = v.text if isinstance(v, _Opaque) else repr(v)
                notes.append(
                    f"constructor argument {k}={text} is not a literal: left out (the default is used)"
                )
                del kwargs[k]
        model = _Model(callee.module, callee.name, tuple(args), kwargs, node.lineno, notes=notes)
        self.models.append(model)
        return model

    def model_call(
        self, model: _Model, method: str, args: list[Any], kwargs: dict[str, Any], node: ast.Call
    ) -> Any:
        if method in _PASS_THROUGH:
            return model
        if method == "load_state_dict":
            self.load(model, node, args, kwargs)
            return _Opaque(ast.unparse(node))
        path = model.load["path"] if model.load else self.env.get("model_path")
        if (
            args
            and isinstance(args[0], str)
            and (args[0] == path or args[0].lower().endswith(_CHECKPOINT_SUFFIXES))
        ):
            model.load = {"method": method, "path": args[0], "line": node.lineno}
            return _Opaque(ast.unparse(node))
        if not all(_known(a) for a in args) or not all(_known(v) for v in kwargs.values()):
            model.notes.append(
                f"line {node.lineno}: {ast.unparse(node)} has arguments that are not literals; left out"
            )
            return _Opaque(ast.unparse(node))
        model.after_load.append(AfterLoad(method, tuple(args), dict(kwargs)))
        return model if method in _DTYPE_CALLS else _Opaque(ast.unparse(node))

    def load(self, model: _Model, node: ast.Call, args: list[Any], kwargs: dict[str, Any]) -> None:
        strict = kwargs.get("strict", args[1] if len(args) > 1 else True)
        if not args:
            model.notes.append(f"line {node.lineno}: {ast.unparse(node)} gives no state dict")
            return
        sd = args[0]
        if not isinstance(sd, _Checkpoint):  # built from a checkpoint by code the draft does not follow
            loaded = [v for v in self.env.values() if isinstance(v, _Checkpoint)]
            if not loaded:
                model.notes.append(f"line {node.lineno}: the state dict of {ast.unparse(node)} is not read")
                return
            sd = loaded[-1]
            model.notes.append(
                f"line {node.lineno}: the harness rewrites the checkpoint before loading it; effbench loads "
                "the checkpoint with its own key matching (a 'module.' prefix dropped)"
            )
        model.load = {
            "path": sd.path,
            "keys": sd.keys,
            "strict": strict if isinstance(strict, bool) else True,
            "line": node.lineno,
        }
        if not isinstance(strict, bool):
            model.notes.append(
                f"line {node.lineno}: strict={strict} is not a literal; strict loading assumed"
            )

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
                    self.env[alias.asname or alias.name] = _Imported(stmt.module, alias.name)
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                name = alias.asname or alias.name.partition(".")[0]
                self.env[name] = _Module(alias.name if alias.asname else name)
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
            raise _Stop
        elif isinstance(stmt, ast.Raise):
            raise _Stop
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
                    self.assign(t, _Opaque(ast.unparse(node)), t)
        elif isinstance(target, ast.Name):
            self.env[target.id] = value
            receiver = (
                node.func.value
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                else None
            )
            rebinds = (
                isinstance(receiver, ast.Name) and receiver.id == "model"
            )  # model = model.to(...) on nothing
            if target.id == "model" and isinstance(value, _Opaque) and not self.problems and not rebinds:
                self.problems.append(
                    f"line {node.lineno}: model = {value.text} is no constructor the draft can read"
                )

    def if_(self, stmt: ast.If) -> None:
        test = self.truth(stmt.test)
        if _compares_model_id(stmt.test) and test is True and self.branch_line is None:
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
            except _Stop:
                pass
            arms.append(self.env)
        self.env = {
            k: _merge(arms[0].get(k, before.get(k)), arms[1].get(k, before.get(k)))
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
                if _is_model_id(stmt.subject) and self.branch_line is None:
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
            return v == subject if _known(v) and _known(subject) else None
        if isinstance(pattern, ast.MatchSingleton):
            return pattern.value is subject if _known(subject) else None
        return None

    def for_(self, stmt: ast.For) -> None:
        it = stmt.iter
        if (
            isinstance(it, ast.Call)
            and isinstance(it.func, ast.Attribute)
            and it.func.attr in ("modules", "children", "named_modules", "named_children")
            and isinstance(self.value(it.func.value), _Model)
        ):
            model = self.value(it.func.value)
            var = stmt.target.elts[-1] if isinstance(stmt.target, ast.Tuple) else stmt.target
            name = var.id if isinstance(var, ast.Name) else None
            for node in ast.walk(ast.Module(body=stmt.body, type_ignores=[])):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == name
                ):
                    args = [self.value(a) for a in node.args]
                    kwargs = {k.arg: self.value(k.value) for k in node.keywords if k.arg}
                    if all(_known(a) for a in [*args, *kwargs.values()]):
                        model.after_load.append(
                            AfterLoad(node.func.attr, tuple(args), kwargs, each_module=True)
                        )
                    else:
                        model.notes.append(f"line {node.lineno}: {ast.unparse(node)} (per module) not read")
            return
        # other loops (renaming checkpoint keys, freezing parameters) bind nothing the draft reads


def _merge(a: Any, b: Any) -> Any:
    """The value of a name an undecided ``if`` binds differently in its two arms."""
    if a == b:
        return a
    if isinstance(a, _Checkpoint) and isinstance(b, _Checkpoint) and a.path == b.path:
        n = max(len(a.keys), len(b.keys))
        ka, kb = (*a.keys, *([None] * (n - len(a.keys)))), (*b.keys, *([None] * (n - len(b.keys))))
        keys = tuple(x if x == y else _choice(x, y) for x, y in zip(ka, kb))
        return _Checkpoint(a.path, keys)
    if _known(a) and _known(b) and not isinstance(a, (list, dict)) and not isinstance(b, (list, dict)):
        return _choice(a, b)
    if isinstance(a, _Choice) or isinstance(b, _Choice):
        return _choice(a, b)
    if isinstance(a, _Model) or a is not None and b is None:
        return a
    return b if a is None else a


def _choice(a: Any, b: Any) -> _Choice:
    options: list[Any] = []
    for v in (a, b):
        for o in v.options if isinstance(v, _Choice) else (v,):
            if o not in options:
                options.append(o)
    return _Choice(tuple(options))


def _compares_model_id(test: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Compare) and (_is_model_id(n.left) or any(_is_model_id(c) for c in n.comparators))
        for n in ast.walk(test)
    )


def _int_keys(node: ast.AST) -> list[int]:
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return []
    return (
        [k for k in value if isinstance(k, int) and not isinstance(k, bool)]
        if isinstance(value, dict)
        else []
    )


def _model_ids(func: ast.FunctionDef, module: ast.Module | None = None) -> dict[int, int]:
    """Every ``model_id`` ``select_model`` tells apart, with the line where it does: compared against (``==``,
    ``in``), a ``case`` of ``match model_id``, a key of a dict literal indexed with ``model_id`` (a registry in the
    function or the harness file)."""
    ids: dict[int, int] = {}
    dicts: dict[str, ast.AST] = {}
    for scope in (module, func):
        for node in ast.walk(scope) if scope is not None else ():
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                if isinstance(node.value, ast.Dict):
                    dicts[node.targets[0].id] = node.value
    for node in ast.walk(func):
        if isinstance(node, ast.Subscript) and _is_model_id(node.slice):
            table = dicts.get(node.value.id) if isinstance(node.value, ast.Name) else node.value
            for k in _int_keys(table) if table is not None else []:
                ids.setdefault(k, node.lineno)
        if isinstance(node, ast.Match) and _is_model_id(node.subject):
            for case in node.cases:
                pats = case.pattern.patterns if isinstance(case.pattern, ast.MatchOr) else [case.pattern]
                for pat in pats:
                    if isinstance(pat, ast.MatchValue):
                        with contextlib.suppress(ValueError, TypeError, SyntaxError):
                            v = ast.literal_eval(pat.value)
                            if isinstance(v, int) and not isinstance(v, bool):
                                ids.setdefault(v, pat.lineno)
        if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and _is_model_id(node.left)):
            continue
        op = node.ops[0]
        try:
            right = ast.literal_eval(node.comparators[0])
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        values: list[Any] = []
        if isinstance(op, ast.Eq):
            values = [right]
        elif isinstance(op, ast.In) and isinstance(right, (tuple, list, set, frozenset)):
            values = sorted(v for v in right if isinstance(v, int))
        for v in values:
            if isinstance(v, int) and not isinstance(v, bool):
                ids.setdefault(v, node.lineno)
    return dict(sorted(ids.items()))


def _read_branch(
    func: ast.FunctionDef, model_id: int, line: int, module: ast.Module | None = None
) -> _Branch:
    """Walk ``select_model`` for ``model_id`` (``module``: the harness file, for its imports and helpers)."""
    walk = _Walk(model_id, module)
    try:
        walk.run(func.body)
    except _Stop:
        pass
    b = _Branch(model_id, walk.branch_line or line, notes=walk.problems)
    model = walk.env.get("model")
    if not isinstance(model, _Model):
        # the harness returns another variable, or binds `model` to something opaque after constructing
        model = walk.models[-1] if walk.models else None
    b.model = model
    b.name = walk.env.get("name")
    b.data_range = walk.env.get("data_range")
    b.tile = walk.env.get("tile")
    return b


def _harness(repo: Path) -> tuple[Path, ast.FunctionDef, ast.Module] | None:
    """The repository's harness file, its ``select_model`` and the file's tree (``test_demo.py`` first)."""
    files = sorted(repo.glob("*.py"), key=lambda p: (p.name != "test_demo.py", p.name))
    for file in files:
        try:
            tree = ast.parse(file.read_text(encoding="utf-8", errors="replace"), str(file))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == "select_model":
                return file, node, tree
    return None


# --- pairing files by team number ------------------------------------------------------------------------------------


def _team(path: Path) -> int | None:
    m = _TEAM.match(path.name)
    return int(m.group(1)) if m else None


def _model_files(repo: Path) -> dict[int, Path]:
    """``models/teamNN_*.py`` (or a ``teamNN_*`` package's ``__init__.py``) by team number (the first by name)."""
    out: dict[int, Path] = {}
    for p in sorted((repo / "models").glob("team*")):
        file = p / "__init__.py" if p.is_dir() else p
        n = _team(p)
        if n is not None and file.suffix == ".py" and file.is_file():
            out.setdefault(n, file)
    return out


def _checkpoints(repo: Path) -> dict[int, list[Path]]:
    out: dict[int, list[Path]] = {}
    for p in sorted((repo / "model_zoo").glob("team*")):
        n = _team(p)
        if n is not None and p.is_file() and p.suffix.lower() in _CHECKPOINT_SUFFIXES:
            out.setdefault(n, []).append(p)
    return out


def _classes(file: Path) -> dict[str, ast.ClassDef]:
    try:
        tree = ast.parse(file.read_text(encoding="utf-8", errors="replace"), str(file))
    except SyntaxError:
        return {}
    return {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}


def _last_module_class(file: Path) -> str | None:
    """The last class in ``file`` deriving (directly or through classes defined there) from a ``torch.nn`` class."""
    modules: list[str] = []
    for node in _classes(file).values():
        bases = [ast.unparse(b) for b in node.bases]
        if any(b in modules or b.startswith(("nn.", "torch.nn.")) or b == "Module" for b in bases):
            modules.append(node.name)
    return modules[-1] if modules else None


def _method_defined(file: Path, cls: str, method: str) -> bool:
    """Whether class ``cls`` of ``file`` (or a base class defined in the same file) defines ``method``."""
    classes = _classes(file)
    seen: set[str] = set()
    todo = [cls]
    while todo:
        name = todo.pop()
        node = classes.get(name)
        if node is None or name in seen:
            continue
        seen.add(name)
        if any(isinstance(f, ast.FunctionDef) and f.name == method for f in node.body):
            return True
        todo += [ast.unparse(b) for b in node.bases]
    return False


def _none_defaults(file: Path, cls: str) -> set[str]:
    """The ``__init__`` parameters of class ``cls`` in ``file`` whose default is ``None``."""
    node = _classes(file).get(cls)
    for f in node.body if node is not None else []:
        if isinstance(f, ast.FunctionDef) and f.name == "__init__":
            a = f.args
            pos = [*a.posonlyargs, *a.args]
            pairs = [*zip(pos[len(pos) - len(a.defaults) :], a.defaults), *zip(a.kwonlyargs, a.kw_defaults)]
            return {p.arg for p, d in pairs if isinstance(d, ast.Constant) and d.value is None}
    return set()


def _module_file(repo: Path, module: str) -> Path | None:
    base = repo.joinpath(*module.split("."))
    for file in (base.with_suffix(".py"), base / "__init__.py"):
        if file.is_file():
            return file
    return None


# --- drafting --------------------------------------------------------------------------------------------------------


def _shown(value: Any) -> str:
    if isinstance(value, _Opaque):
        return value.text
    if isinstance(value, _Choice):
        return " or ".join(map(repr, value.options))
    return repr(value)


def _weights_key(keys: tuple[Any, ...], where: str, unresolved: list[str]) -> str | list[str] | None:
    """The manifest's ``weights_key`` for the entries a harness takes from its checkpoint."""
    if not keys:
        return None
    first = keys[0]
    if len(keys) > 1:
        unresolved.append(
            f"{where}: the harness takes the nested entry {' -> '.join(map(_shown, keys))}; the draft names the "
            "first level (effbench unwraps one more level of state_dict/params/params_ema by itself)"
        )
    if isinstance(first, str):
        return first
    if isinstance(first, _Choice):
        named = [o for o in first.options if isinstance(o, str)]
        if None in first.options:  # `ckpt.get("params", ckpt)`: the entry when present, else the whole file
            if set(named) <= _UNWRAPPED:
                return None  # effbench's own unwrapping does just that
            unresolved.append(
                f"{where}: the checkpoint entry is {_shown(first)} (the whole file); drafted as {named}"
            )
        return named[0] if len(named) == 1 else named or None
    return None


def _from_branch(repo: Path, file_name: str, b: _Branch, unresolved: list[str]) -> Entry:
    m = b.model
    assert m is not None
    name = b.name if isinstance(b.name, str) and b.name else f"team{b.model_id:02}"
    where = f"{name} (model_id {b.model_id}, {file_name} line {b.line})"
    if not (isinstance(b.name, str) and b.name):
        unresolved.append(f"{where}: the harness gives no readable name ({_shown(b.name)}); named {name!r}")
    unresolved.extend(f"{where}: {n}" for n in [*b.notes, *m.notes])
    notes: list[str] = []
    skip = None
    file = _module_file(repo, m.module)
    if file is None:
        unresolved.append(f"{where}: module {m.module!r} not found under {repo}")
        skip = f"model module {m.module} not found"
        model = f"{repo / Path(*m.module.split('.'))}.py:{m.cls}"
    else:
        model = f"{file}:{m.cls}"
    kwargs = {k: v for k, v in m.kwargs.items() if v is not None}  # TOML has no null
    dropped = sorted(set(m.kwargs) - set(kwargs))
    if dropped:
        defaults = _none_defaults(file, m.cls) if file is not None else set()
        unclear = [k for k in dropped if k not in defaults]
        if unclear:
            unresolved.append(
                f"{where}: {', '.join(unclear)}=None left out (TOML has no null); check the default"
            )
    if any(v is None for v in m.args):
        skip = skip or "a positional constructor argument is None (TOML has no null)"
        unresolved.append(
            f"{where}: a positional constructor argument is None (TOML has no null); entry skipped"
        )
    load = m.load or {}
    weights = weights_key = load_method = None
    own = None
    strict = bool(load.get("strict", True))
    path = load.get("path")
    if not load:
        unresolved.append(
            f"{where}: the harness loads no checkpoint; measured with the constructor's weights"
        )
    elif not isinstance(path, str):
        unresolved.append(f"{where}: the checkpoint path {_shown(path)} is not a literal; give weights")
        notes.append("checkpoint path not read from the harness")
    else:
        p = Path(path)
        weights = str((p if p.is_absolute() else repo / p).resolve())
        if not Path(weights).is_file():
            unresolved.append(
                f"{where}: checkpoint {path} not found: static and memory are measured with the constructor's "
                "weights, runtime and quality are skipped"
            )
    if load.get("method"):
        load_method = str(load["method"])
    elif load:
        weights_key = _weights_key(tuple(load.get("keys", ())), where, unresolved)
        if file is not None and _method_defined(file, m.cls, "load_state_dict"):
            own = True
            unresolved.append(
                f"{where}: {m.cls} overrides load_state_dict: loaded through it, as the harness does"
            )
    rng = b.data_range
    if isinstance(rng, (int, float)) and not isinstance(rng, bool) and rng > 0:
        data_range: float | None = float(rng)
    else:
        data_range = None
        unresolved.append(
            f"{where}: the data range {_shown(rng)} is not a literal (the model's attribute is used, else 255)"
        )
    tile = b.tile if isinstance(b.tile, int) and not isinstance(b.tile, bool) and b.tile > 0 else None
    if b.tile is not None and tile is None:
        unresolved.append(f"{where}: the tile {_shown(b.tile)} is not a literal; measured whole")
    return Entry(
        name=name,
        model=model,
        args=m.args,
        kwargs=kwargs,
        weights=weights,
        weights_key=tuple(weights_key) if isinstance(weights_key, list) else weights_key,
        strict=strict,
        data_range=data_range,
        tile=tile,
        skip=skip,
        root=str(repo),
        own_load_state_dict=own,
        load_method=load_method,
        after_load=tuple(m.after_load),
        note="; ".join(notes) or None,
    )


def _from_files(repo: Path, n: int, file: Path, ckpts: list[Path], why: str, unresolved: list[str]) -> Entry:
    """An entry paired by team number, marked with a ``note`` saying what was guessed."""
    stem = file.parent.name if file.name == "__init__.py" else file.stem
    guessed = [why]
    cls = _last_module_class(file)
    if cls is None:
        unresolved.append(f"{stem}: no nn.Module subclass found in {file.relative_to(repo)}; give the class")
        cls = "Model"
        guessed.append("no class found")
    else:
        unresolved.append(f"{stem}: class guessed as {cls} (the last nn.Module subclass in the file)")
        guessed.append(f"class {cls} guessed")
    weights = None
    if not ckpts:
        unresolved.append(
            f"{stem}: no model_zoo/team{n:02}_* checkpoint; measured with the constructor's weights"
        )
        guessed.append("no checkpoint")
    else:
        weights = str(ckpts[0])
        if len(ckpts) > 1:
            others = ", ".join(p.name for p in ckpts[1:])
            unresolved.append(f"{stem}: several checkpoints; took {ckpts[0].name} (also: {others})")
        guessed.append(f"checkpoint {ckpts[0].name} guessed")
    unresolved.append(f"{stem}: constructor arguments, checkpoint key and data range unknown (defaults used)")
    guessed.append("constructor defaults, data range unknown")
    return Entry(
        name=stem,
        model=f"{file}:{cls}",
        weights=weights,
        root=str(repo),
        note=f"guessed by challenge init: {'; '.join(guessed)}",
    )


def _from_harness(
    root: Path, file: Path, func: ast.FunctionDef, module: ast.Module, models: dict[int, Path],
    ckpts: dict[int, list[Path]], unresolved: list[str],
) -> list[tuple[int, Entry]]:  # fmt: skip
    entries: list[tuple[int, Entry]] = []
    used: set[Path] = set()
    for n, line in _model_ids(func, module).items():
        try:
            b = _read_branch(func, n, line, module)
        except RecursionError:
            b = _Branch(n, line, notes=["nested too deeply to read"])
        if b.model is not None:
            entries.append((n, _from_branch(root, file.name, b, unresolved)))
            f = _module_file(root, b.model.module)
            if f is not None:
                used.add(f)
            continue
        why = "constructs no model the draft can read" + (f" ({'; '.join(b.notes)})" if b.notes else "")
        where = f"model_id {n} ({file.name} line {b.line})"
        if n in models:
            unresolved.append(f"{where}: {why}; paired files by team number")
            entries.append(
                (
                    n,
                    _from_files(
                        root, n, models[n], ckpts.get(n, []), f"{file.name} line {b.line} {why}", unresolved
                    ),
                )
            )
            used.add(models[n])
        else:
            unresolved.append(f"{where}: {why}, and no models/team{n:02}_* file to pair; not listed")
    ids = {n for n, _ in entries}
    for n, f in models.items():
        if f not in used and n not in ids:
            unresolved.append(f"{f.relative_to(root)} is not used by {file.name}; not listed")
    return entries


def draft_manifest(repo: str | Path, year: int) -> Draft:
    """Draft the manifest of the organisers' repository ``repo`` for challenge ``year`` (see the module doc)."""
    root = Path(repo).expanduser().resolve()
    if not root.is_dir():
        raise UsageError(f"challenge repository not found: {root}")
    years = known_years()
    if year not in years:
        raise UsageError(f"no NTIRE ESR rules for year {year!r}; known years: {', '.join(map(str, years))}")
    unresolved: list[str] = []
    models, ckpts = _model_files(root), _checkpoints(root)
    harness = _harness(root)
    if harness is None:
        unresolved.append(
            f"no harness (a .py file defining select_model) in {root}; paired files by team number"
        )
        pairs: list[tuple[int, Entry]] = []
        for n in sorted(set(models) | set(ckpts)):
            if n in models:
                pairs.append((n, _from_files(root, n, models[n], ckpts.get(n, []), "no harness", unresolved)))
            else:
                unresolved.append(
                    f"team{n:02}: checkpoint {ckpts[n][0].relative_to(root)} has no model file; not listed"
                )
    else:
        pairs = _from_harness(root, *harness, models, ckpts, unresolved)
    entries: list[Entry] = []
    baseline = None
    seen: set[str] = set()
    for n, entry in pairs:
        if entry.name in seen:
            new = f"{entry.name}_{n}"
            unresolved.append(f"entry name {entry.name!r} is used twice; model_id {n} renamed {new!r}")
            entry = replace(entry, name=new)
        seen.add(entry.name)
        entries.append(entry)
        if n == 0:
            baseline = entry.name
    challenge = Challenge(f"NTIRE {year} ESR", year, str(root), tuple(entries), baseline)
    head = [f"# drafted by effbench challenge init from {root}"]
    head += [f"# to fill in: {' '.join(note.split())}" for note in unresolved]
    return Draft(challenge, "\n".join(head) + "\n\n" + dump_manifest(challenge), unresolved)
