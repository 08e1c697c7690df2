"""Reading the organisers' ``select_model``: the ``model_id`` values it tells apart (:func:`model_ids`) and one
walk of the function per id (:func:`read_branch`) that records the class constructed, its arguments, the
checkpoint load and the calls made on the model after it (:class:`Walk`)."""

from __future__ import annotations

import ast
import contextlib
from pathlib import Path
from typing import Any

from ...zoo.spec import AfterLoad
from .interpreter import Evaluator
from .values import (
    CHECKPOINT_SUFFIXES,
    Branch,
    Checkpoint,
    Choice,
    Imported,
    ModelValue,
    ModuleValue,
    Opaque,
    Stop,
    Unreadable,
    is_model_id,
    known,
    shown,
)

__all__ = ["Walk", "find_harness", "model_ids", "read_branch"]

# methods that return the model itself (or a copy of it on another device) and change nothing a count sees
_PASS_THROUGH = {"eval", "to", "cuda", "cpu", "float", "train", "requires_grad_", "share_memory"}
# methods that change the model's dtype: kept as after-load calls (the harness measures the model so)
_DTYPE_CALLS = {"half", "bfloat16", "double"}


class Walk(Evaluator):
    """One walk of ``select_model`` for one ``model_id``: the interpreter plus what a harness's calls mean."""

    def __init__(self, model_id: int, module: ast.Module | None = None) -> None:
        super().__init__(model_id)
        self.models: list[ModelValue] = []
        self.problems: list[str] = []  # why a constructor call was not drafted
        self.functions: dict[str, ast.FunctionDef] = {}  # the harness file's own functions (helpers it calls)
        self.depth = 0
        if module is not None:  # the harness file's imports, constants and registries, as at its import
            self.functions = {n.name: n for n in module.body if isinstance(n, ast.FunctionDef)}
            for stmt in module.body:
                if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign)):
                    self.stmt(stmt)
        self.globals = dict(self.env)

    # calls -----------------------------------------------------------------------------------------------------------

    def call(self, node: ast.Call) -> Any:
        func = ast.unparse(node.func)
        args = [self.value(a) for a in node.args]
        kwargs = {k.arg: self.value(k.value) for k in node.keywords if k.arg is not None}
        if func in ("os.path.join", "osp.join", "join", "Path", "pathlib.Path") and args:
            if all(isinstance(a, str) for a in args):
                return "/".join(a.rstrip("/") for a in args[:-1]) + ("/" if len(args) > 1 else "") + args[-1]
            return Opaque(ast.unparse(node))
        if func in ("os.path.abspath", "os.path.normpath", "os.path.expanduser", "str") and len(args) == 1:
            return args[0]
        if func == "torch.load" and args:
            return Checkpoint(args[0])
        if func in ("importlib.import_module", "import_module") and args and isinstance(args[0], str):
            return ModuleValue(args[0])
        if func == "getattr" and len(args) >= 2 and isinstance(args[1], str):
            holder = args[0]
            if isinstance(holder, ModuleValue):
                return Imported(holder.module, args[1])
            if isinstance(holder, Imported):
                return Imported(f"{holder.module}.{holder.name}", args[1])
            return Opaque(ast.unparse(node))
        if func in ("dict", "OrderedDict", "collections.OrderedDict") and len(args) == 1:
            return args[
                0
            ]  # a copy of a checkpoint (its keys possibly renamed afterwards, which effbench undoes)
        callee: Any = None
        if isinstance(node.func, ast.Attribute):
            holder = self.value(node.func.value)
            method = node.func.attr
            if isinstance(holder, Checkpoint) and method == "get" and args:
                key = args[0]
                if len(args) > 1 and args[1] == holder and isinstance(key, str):  # ckpt.get("params", ckpt)
                    return Checkpoint(holder.path, (*holder.keys, Choice((key, None))))
                return Checkpoint(holder.path, (*holder.keys, key)) if isinstance(key, str) else Opaque(func)
            if isinstance(holder, ModelValue):
                return self.model_call(holder, method, args, kwargs, node)
            if isinstance(holder, ModuleValue):
                callee = Imported(holder.module, method)
            elif isinstance(holder, Imported):  # `from models import team07` then team07.Net(...)
                callee = Imported(f"{holder.module}.{holder.name}", method)
        elif isinstance(node.func, ast.Name):
            callee = self.env.get(node.func.id)
            if callee is None and node.func.id in self.functions:  # a helper of the harness file
                return self.inline(self.functions[node.func.id], node, args, kwargs)
            if callee is None and self.star:  # `from models.x import *` then Net(...)
                callee = Imported(self.star[-1], node.func.id)
        else:
            callee = self.value(node.func)
        if isinstance(callee, Imported):
            try:
                return self.construct(callee, node, args, kwargs)
            except Unreadable as exc:
                self.problems.append(f"line {node.lineno}: {exc}")
        return Opaque(ast.unparse(node))

    def inline(self, fn: ast.FunctionDef, node: ast.Call, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Walk a helper function of the harness file called with these arguments; its return value."""
        if self.depth >= 4 or any(isinstance(a, ast.Starred) for a in node.args):
            return Opaque(ast.unparse(node))
        sub = Walk(self.model_id)
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
        except Stop:
            pass
        return sub.returned if sub.returned is not None else Opaque(ast.unparse(node))

    def construct(self, callee: Imported, node: ast.Call, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise Unreadable(f"{ast.unparse(node)} unpacks its positional arguments")
        notes = []
        for k in node.keywords:
            if k.arg is None:  # Class(**cfg)
                cfg = self.value(k.value)
                if isinstance(cfg, dict) and all(isinstance(x, str) for x in cfg):
                    kwargs.update(cfg)
                else:
                    raise Unreadable(
                        f"{ast.unparse(node)}: the keyword arguments {shown(cfg)} are not a literal"
                    )
        if (
            callee.name in ("DataParallel", "DistributedDataParallel")
            and args
            and isinstance(args[0], ModelValue)
        ):
            return args[0]  # the same network (effbench drops the wrapper's 'module.' key prefix)
        if any(isinstance(a, ModelValue) for a in [*args, *kwargs.values()]):
            raise Unreadable(f"{ast.unparse(node)} wraps another model")
        for i, a in enumerate(args):
            if not known(a):
                raise Unreadable(
                    f"constructor argument {i + 1} of {ast.unparse(node)} is not a literal ({a.text})"
                )
        for k, v in list(kwargs.items()):
            if not known(v):
                text = v.text if isinstance(v, Opaque) else repr(v)
                notes.append(
                    f"constructor argument {k}={text} is not a literal: left out (the default is used)"
                )
                del kwargs[k]
        model = ModelValue(callee.module, callee.name, tuple(args), kwargs, node.lineno, notes=notes)
        self.models.append(model)
        return model

    def model_call(
        self, model: ModelValue, method: str, args: list[Any], kwargs: dict[str, Any], node: ast.Call
    ) -> Any:
        if method in _PASS_THROUGH:
            return model
        if method == "load_state_dict":
            self.load(model, node, args, kwargs)
            return Opaque(ast.unparse(node))
        path = model.load["path"] if model.load else self.env.get("model_path")
        if (
            args
            and isinstance(args[0], str)
            and (args[0] == path or args[0].lower().endswith(CHECKPOINT_SUFFIXES))
        ):
            model.load = {"method": method, "path": args[0], "line": node.lineno}
            return Opaque(ast.unparse(node))
        if not all(known(a) for a in args) or not all(known(v) for v in kwargs.values()):
            model.notes.append(
                f"line {node.lineno}: {ast.unparse(node)} has arguments that are not literals; left out"
            )
            return Opaque(ast.unparse(node))
        model.after_load.append(AfterLoad(method, tuple(args), dict(kwargs)))
        return model if method in _DTYPE_CALLS else Opaque(ast.unparse(node))

    def load(self, model: ModelValue, node: ast.Call, args: list[Any], kwargs: dict[str, Any]) -> None:
        strict = kwargs.get("strict", args[1] if len(args) > 1 else True)
        if not args:
            model.notes.append(f"line {node.lineno}: {ast.unparse(node)} gives no state dict")
            return
        sd = args[0]
        if not isinstance(sd, Checkpoint):  # built from a checkpoint by code the draft does not follow
            loaded = [v for v in self.env.values() if isinstance(v, Checkpoint)]
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

    def assign(self, target: ast.AST, value: Any, node: ast.AST) -> None:
        super().assign(target, value, node)
        if isinstance(target, ast.Name):
            receiver = (
                node.func.value
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                else None
            )
            rebinds = (
                isinstance(receiver, ast.Name) and receiver.id == "model"
            )  # model = model.to(...) on nothing
            if target.id == "model" and isinstance(value, Opaque) and not self.problems and not rebinds:
                self.problems.append(
                    f"line {node.lineno}: model = {value.text} is no constructor the draft can read"
                )

    def for_(self, stmt: ast.For) -> None:
        it = stmt.iter
        if (
            isinstance(it, ast.Call)
            and isinstance(it.func, ast.Attribute)
            and it.func.attr in ("modules", "children", "named_modules", "named_children")
            and isinstance(self.value(it.func.value), ModelValue)
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
                    if all(known(a) for a in [*args, *kwargs.values()]):
                        model.after_load.append(
                            AfterLoad(node.func.attr, tuple(args), kwargs, each_module=True)
                        )
                    else:
                        model.notes.append(f"line {node.lineno}: {ast.unparse(node)} (per module) not read")
            return
        # other loops (renaming checkpoint keys, freezing parameters) bind nothing the draft reads


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


def model_ids(func: ast.FunctionDef, module: ast.Module | None = None) -> dict[int, int]:
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
        if isinstance(node, ast.Subscript) and is_model_id(node.slice):
            table = dicts.get(node.value.id) if isinstance(node.value, ast.Name) else node.value
            for k in _int_keys(table) if table is not None else []:
                ids.setdefault(k, node.lineno)
        if isinstance(node, ast.Match) and is_model_id(node.subject):
            for case in node.cases:
                pats = case.pattern.patterns if isinstance(case.pattern, ast.MatchOr) else [case.pattern]
                for pat in pats:
                    if isinstance(pat, ast.MatchValue):
                        with contextlib.suppress(ValueError, TypeError, SyntaxError):
                            v = ast.literal_eval(pat.value)
                            if isinstance(v, int) and not isinstance(v, bool):
                                ids.setdefault(v, pat.lineno)
        if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and is_model_id(node.left)):
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


def read_branch(func: ast.FunctionDef, model_id: int, line: int, module: ast.Module | None = None) -> Branch:
    """Walk ``select_model`` for ``model_id`` (``module``: the harness file, for its imports and helpers)."""
    walk = Walk(model_id, module)
    try:
        walk.run(func.body)
    except Stop:
        pass
    b = Branch(model_id, walk.branch_line or line, notes=walk.problems)
    model = walk.env.get("model")
    if not isinstance(model, ModelValue):
        # the harness returns another variable, or binds `model` to something opaque after constructing
        model = walk.models[-1] if walk.models else None
    b.model = model
    b.name = walk.env.get("name")
    b.data_range = walk.env.get("data_range")
    b.tile = walk.env.get("tile")
    return b


def find_harness(repo: Path) -> tuple[Path, ast.FunctionDef, ast.Module] | None:
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
