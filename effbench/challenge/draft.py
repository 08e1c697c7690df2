"""Draft a challenge manifest from a repository laid out like the NTIRE ESR organisers' (``effbench challenge init``).

The organisers' harness (``test_demo.py``, or any top-level file defining ``select_model``) is read with :mod:`ast`,
never run: each ``if/elif model_id == N:`` branch of ``select_model`` gives one entry:

- the class from ``from models.teamNN_X import Class`` (or ``importlib.import_module(f"models.team{model_id:02}_X")``
  then ``getattr(module, "Class")``), and its positional and keyword constructor arguments (literals);
- ``name, data_range = f"{model_id:02}_X", 1.0`` with ``model_id`` substituted;
- ``model_path = os.path.join("model_zoo", "...")`` and the ``load_state_dict`` call: its ``["params_ema"]``-style
  entry and its ``strict`` flag.

Where the harness is absent or a branch cannot be read, ``models/teamNN_*.py`` files (or ``teamNN_*`` packages) are
paired with ``model_zoo/teamNN_*`` checkpoints by team number, the class guessed as the last ``nn.Module`` subclass
the file defines. Whatever the draft could not decide is listed in :attr:`Draft.unresolved` for the organiser (and
as comments at the top of the TOML); an entry whose checkpoint is absent gets ``skip = "checkpoint ... not found"``.
Model ``0`` / ``team00`` is the baseline.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..base.errors import UsageError
from .manifest import Challenge, Entry, dump_manifest, known_years

__all__ = ["Draft", "draft_manifest"]

_TEAM = re.compile(r"team(\d+)", re.IGNORECASE)
_CHECKPOINT_SUFFIXES = (".pth", ".pt", ".pkl", ".ckpt", ".bin", ".safetensors")
_PASS_THROUGH = {"eval", "to", "cuda", "cpu", "float", "train", "requires_grad_"}  # model-returning methods


@dataclass(frozen=True)
class Draft:
    """A drafted manifest: the challenge it describes, its TOML text, and what the organiser must still decide."""

    challenge: Challenge
    text: str
    unresolved: list[str] = field(default_factory=list)


class _Unreadable(Exception):
    """A harness construct the draft does not understand."""


@dataclass
class _Branch:
    """What one ``model_id == N`` branch says (``None``: it does not say)."""

    model_id: int
    name: str | None = None
    data_range: float | None = None
    module: str | None = None
    cls: str | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    model_path: str | None = None
    weights_key: str | None = None
    strict: bool = True
    notes: list[str] = field(default_factory=list)


# --- reading the harness ---------------------------------------------------------------------------------------------


def _is_model_id(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id == "model_id") or (
        isinstance(node, ast.Attribute) and node.attr == "model_id"
    )


def _literal(node: ast.AST, model_id: int) -> Any:
    """A literal's value (tuples as lists, so the manifest reads back equal), f-strings formatted with
    ``model_id``, ``os.path.join`` of literals joined with ``/``."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.JoinedStr):
        out = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                out.append(str(part.value))
            elif isinstance(part, ast.FormattedValue) and _is_model_id(part.value) and part.conversion == -1:
                spec = _literal(part.format_spec, model_id) if part.format_spec is not None else ""
                out.append(format(model_id, spec))
            else:
                raise _Unreadable(f"f-string {ast.unparse(node)}")
        return "".join(out)
    if isinstance(node, (ast.Tuple, ast.List)):
        return [_literal(e, model_id) for e in node.elts]
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_literal(k, model_id): _literal(v, model_id) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _literal(node.operand, model_id)
        if isinstance(value, (int, float)):
            return -value
    if isinstance(node, ast.Call) and ast.unparse(node.func) == "os.path.join" and not node.keywords:
        return "/".join(str(_literal(a, model_id)) for a in node.args)
    if _is_model_id(node):
        return model_id
    raise _Unreadable(ast.unparse(node))


def _strip_chain(call: ast.AST) -> ast.AST:
    """``Class(...).eval().to(device)`` -> ``Class(...)``."""
    while (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr in _PASS_THROUGH
        and isinstance(call.func.value, ast.Call)
    ):
        call = call.func.value
    return call


def _checkpoint_key(node: ast.AST, env: dict[str, Any], model_id: int) -> tuple[bool, str | None]:
    """Whether ``node`` (a ``load_state_dict`` argument) is the loaded checkpoint, and the entry it takes."""
    if isinstance(node, ast.Subscript):
        loaded, key = _checkpoint_key(node.value, env, model_id)
        if not loaded or key is not None:
            raise _Unreadable(f"checkpoint {ast.unparse(node)}")
        try:
            value = _literal(node.slice, model_id)
        except _Unreadable:
            raise _Unreadable(f"the checkpoint key {ast.unparse(node.slice)} is chosen at run time") from None
        if not isinstance(value, str):
            raise _Unreadable(f"checkpoint key {ast.unparse(node.slice)}")
        return True, value
    if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load":
        return True, None
    if isinstance(node, ast.Name) and env.get(node.id) == ("checkpoint",):
        return True, None
    raise _Unreadable(f"checkpoint {ast.unparse(node)}")


def _read_branch(model_id: int, body: list[ast.stmt]) -> _Branch:
    """One branch of ``select_model`` -> what it says; :class:`_Unreadable` for what it cannot read."""
    b = _Branch(model_id)
    env: dict[str, Any] = {}  # name -> ("class", module, cls) | ("module", module) | ("checkpoint",) | value

    def assign(target: ast.AST, value: ast.AST) -> None:
        if (
            isinstance(target, ast.Tuple)
            and isinstance(value, ast.Tuple)
            and len(target.elts) == len(value.elts)
        ):
            for t, v in zip(target.elts, value.elts):
                assign(t, v)
            return
        if not isinstance(target, ast.Name):
            return
        var = target.id
        call = _strip_chain(value)
        if var == "model" and isinstance(call, ast.Call):
            constructor(call)
        elif isinstance(call, ast.Call) and ast.unparse(call.func) == "importlib.import_module":
            env[var] = ("module", _literal(call.args[0], model_id))
        elif isinstance(call, ast.Call) and ast.unparse(call.func) == "torch.load":
            env[var] = ("checkpoint",)
        elif var in ("name", "data_range", "model_path"):
            setattr(b, var, _literal(value, model_id))

    def constructor(call: ast.Call) -> None:
        func = call.func
        if isinstance(func, ast.Name) and isinstance(env.get(func.id), tuple) and env[func.id][0] == "class":
            _, b.module, b.cls = env[func.id]
        elif isinstance(func, ast.Call) and ast.unparse(func.func) == "getattr" and len(func.args) == 2:
            holder = env.get(func.args[0].id) if isinstance(func.args[0], ast.Name) else None
            if not (isinstance(holder, tuple) and holder[0] == "module"):
                raise _Unreadable(f"constructor {ast.unparse(func)}")
            b.module, b.cls = holder[1], _literal(func.args[1], model_id)
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            holder = env.get(func.value.id)
            if not (isinstance(holder, tuple) and holder[0] == "module"):
                raise _Unreadable(f"constructor {ast.unparse(func)}")
            b.module, b.cls = holder[1], func.attr
        else:
            raise _Unreadable(f"constructor {ast.unparse(func)}")
        if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
            raise _Unreadable(f"constructor call {ast.unparse(call)}")
        b.args = tuple(_literal(a, model_id) for a in call.args)
        b.kwargs = {str(k.arg): _literal(k.value, model_id) for k in call.keywords}

    def load(call: ast.Call) -> None:
        if not call.args:
            raise _Unreadable(ast.unparse(call))
        strict = [k.value for k in call.keywords if k.arg == "strict"] + call.args[1:2]
        b.strict = bool(_literal(strict[0], model_id)) if strict else True  # torch's default: strict
        _, b.weights_key = _checkpoint_key(call.args[0], env, model_id)

    for stmt in body:
        if isinstance(stmt, ast.ImportFrom) and stmt.module:
            for alias in stmt.names:
                env[alias.asname or alias.name] = ("class", stmt.module, alias.name)
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.asname:
                    env[alias.asname] = ("module", alias.name)
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            assign(stmt.targets[0], stmt.value)
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            call = stmt.value
            if isinstance(call.func, ast.Attribute) and call.func.attr == "load_state_dict":
                try:
                    load(call)
                except _Unreadable as exc:
                    if "run time" not in str(exc):
                        raise
                    b.notes.append(f"{exc}; left to effbench's unwrapping (params_ema before params)")
        elif isinstance(stmt, ast.If):  # e.g. choosing the checkpoint key at run time; read what follows
            continue
    if b.cls is None:
        raise _Unreadable("no `model = Class(...)` constructor")
    return b


def _branches(func: ast.FunctionDef) -> tuple[list[_Branch], list[tuple[int, str]]]:
    """The ``model_id == N`` branches of ``select_model``: those read, and (N, why) for those that could not be."""
    read: list[_Branch] = []
    failed: list[tuple[int, str]] = []
    for stmt in ast.walk(func):
        if not isinstance(stmt, ast.If):
            continue
        test = stmt.test
        if (
            isinstance(test, ast.Compare)
            and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)
            and _is_model_id(test.left)
            and isinstance(test.comparators[0], ast.Constant)
            and isinstance(test.comparators[0].value, int)
        ):
            n = test.comparators[0].value
            try:
                read.append(_read_branch(n, stmt.body))
            except (_Unreadable, IndexError) as exc:
                failed.append((n, str(exc)))
    return read, failed


def _harness(repo: Path) -> tuple[Path, ast.FunctionDef] | None:
    """The repository's harness file and its ``select_model`` (``test_demo.py`` first)."""
    files = sorted(repo.glob("*.py"), key=lambda p: (p.name != "test_demo.py", p.name))
    for file in files:
        try:
            tree = ast.parse(file.read_text(encoding="utf-8", errors="replace"), str(file))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == "select_model":
                return file, node
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


def _last_module_class(file: Path) -> str | None:
    """The last class in ``file`` deriving (directly or through classes defined there) from a ``torch.nn`` class."""
    try:
        tree = ast.parse(file.read_text(encoding="utf-8", errors="replace"), str(file))
    except SyntaxError:
        return None
    modules: list[str] = []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        bases = [ast.unparse(b) for b in node.bases]
        if any(b in modules or b.startswith(("nn.", "torch.nn.")) or b == "Module" for b in bases):
            modules.append(node.name)
    return modules[-1] if modules else None


def _none_defaults(file: Path, cls: str) -> set[str]:
    """The ``__init__`` parameters of class ``cls`` in ``file`` whose default is ``None``."""
    try:
        tree = ast.parse(file.read_text(encoding="utf-8", errors="replace"), str(file))
    except SyntaxError:
        return set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for f in node.body:
                if isinstance(f, ast.FunctionDef) and f.name == "__init__":
                    a = f.args
                    pos = [*a.posonlyargs, *a.args]
                    pairs = [
                        *zip(pos[len(pos) - len(a.defaults) :], a.defaults),
                        *zip(a.kwonlyargs, a.kw_defaults),
                    ]
                    return {p.arg for p, d in pairs if isinstance(d, ast.Constant) and d.value is None}
    return set()


def _module_file(repo: Path, module: str) -> Path | None:
    base = repo.joinpath(*module.split("."))
    for file in (base.with_suffix(".py"), base / "__init__.py"):
        if file.is_file():
            return file
    return None


# --- drafting --------------------------------------------------------------------------------------------------------


def _from_branch(repo: Path, b: _Branch, unresolved: list[str]) -> Entry:
    name = b.name or f"team{b.model_id:02}"
    where = f"{name} (model_id {b.model_id})"
    if b.name is None:
        unresolved.append(f"{where}: the harness gives no name; named {name!r}")
    unresolved.extend(f"{where}: {n}" for n in b.notes)
    skip = None
    file = _module_file(repo, b.module or "")
    if file is None:
        unresolved.append(f"{where}: module {b.module!r} not found under {repo}")
        skip = f"model module {b.module} not found"
        model = f"{repo / Path(*(b.module or 'unknown').split('.'))}.py:{b.cls}"
    else:
        model = f"{file}:{b.cls}"
    kwargs = {k: v for k, v in b.kwargs.items() if v is not None}  # TOML has no null
    dropped = sorted(set(b.kwargs) - set(kwargs))
    if dropped:
        defaults = _none_defaults(file, b.cls or "") if file is not None else set()
        unclear = [k for k in dropped if k not in defaults]
        if unclear:
            unresolved.append(
                f"{where}: {', '.join(unclear)}=None left out (TOML has no null); check the default"
            )
    weights = None
    if b.model_path is None:
        unresolved.append(f"{where}: no checkpoint path in the harness; measured with random weights")
    else:
        path = Path(b.model_path)
        weights = str(path if path.is_absolute() else repo / path)
        if not Path(weights).is_file():
            unresolved.append(f"{where}: checkpoint {b.model_path} not found; entry skipped")
            skip = skip or f"checkpoint {b.model_path} not found"
    if b.data_range is None:
        unresolved.append(f"{where}: no data range in the harness (the model's attribute, else 255)")
    return Entry(
        name=name,
        model=model,
        args=b.args,
        kwargs=kwargs,
        weights=weights,
        weights_key=b.weights_key,
        strict=b.strict,
        data_range=None if b.data_range is None else float(b.data_range),
        skip=skip,
        root=str(repo),
    )


def _from_files(
    repo: Path, n: int, file: Path | None, ckpts: list[Path], unresolved: list[str]
) -> Entry | None:
    """An entry paired by team number (``None`` when there is no model file)."""
    if file is None:
        what = f"checkpoint {ckpts[0].relative_to(repo)} has" if ckpts else "no checkpoint and"
        unresolved.append(f"team{n:02}: {what} no model file; not listed")
        return None
    stem = file.parent.name if file.name == "__init__.py" else file.stem
    where = f"{stem}"
    cls = _last_module_class(file)
    if cls is None:
        unresolved.append(f"{where}: no nn.Module subclass found in {file.relative_to(repo)}; give the class")
        cls = "Model"
    else:
        unresolved.append(f"{where}: class guessed as {cls} (the last nn.Module subclass in the file)")
    skip = None
    weights = None
    if not ckpts:
        unresolved.append(f"{where}: no model_zoo/team{n:02}_* checkpoint; entry skipped")
        skip = f"checkpoint model_zoo/team{n:02}_* not found"
    else:
        weights = str(ckpts[0])
        if len(ckpts) > 1:
            others = ", ".join(p.name for p in ckpts[1:])
            unresolved.append(f"{where}: several checkpoints; took {ckpts[0].name} (also: {others})")
    unresolved.append(
        f"{where}: constructor arguments, checkpoint key and data range unknown (defaults used)"
    )
    return Entry(name=stem, model=f"{file}:{cls}", weights=weights, skip=skip, root=str(repo))


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
    entries: list[Entry] = []
    baseline = None
    harness = _harness(root)
    if harness is None:
        unresolved.append(
            f"no harness (a .py file defining select_model) in {root}; paired files by team number"
        )
        teams: dict[int, _Branch | None] = dict.fromkeys(sorted(set(models) | set(ckpts)))
    else:
        file, func = harness
        read, failed = _branches(func)
        teams = {b.model_id: b for b in read}
        for n, why in failed:
            unresolved.append(
                f"model_id {n}: {file.name} branch not read ({why}); paired files by team number"
            )
            teams[n] = None
        used = {b.module for b in read}
        for n, f in models.items():
            dotted = ".".join(f.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
            if n not in teams and dotted not in used:
                unresolved.append(f"{f.relative_to(root)} is not used by {file.name}; not listed")
    for n in sorted(teams):
        b = teams[n]
        entry = (
            _from_branch(root, b, unresolved)
            if b is not None
            else _from_files(root, n, models.get(n), ckpts.get(n, []), unresolved)
        )
        if entry is None:
            continue
        entries.append(entry)
        if n == 0:
            baseline = entry.name
    names = [e.name for e in entries]
    for dup in sorted({x for x in names if names.count(x) > 1}):
        unresolved.append(f"entry name {dup!r} is used twice; rename one")
    challenge = Challenge(f"NTIRE {year} ESR", year, str(root), tuple(entries), baseline)
    head = [f"# drafted by effbench challenge init from {root}"]
    head += [f"# to fill in: {' '.join(note.split())}" for note in unresolved]
    return Draft(challenge, "\n".join(head) + "\n\n" + dump_manifest(challenge), unresolved)
