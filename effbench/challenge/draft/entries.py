"""Manifest entries from what the draft read: one from a ``select_model`` branch (:func:`entry_from_branch`), or
one guessed from files paired by team number (:func:`entry_from_files`), each adding to ``unresolved`` what the
organiser must still decide."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..manifest import Entry
from .files import last_module_class, method_defined, module_file, none_defaults
from .values import Branch, Choice, shown

__all__ = ["entry_from_branch", "entry_from_files"]

# what the effbench loader unwraps by itself (weights.WRAPPER_KEYS' commonest): no key needed
_UNWRAPPED = {"state_dict", "params_ema", "params", "model", "net"}


def _weights_key(keys: tuple[Any, ...], where: str, unresolved: list[str]) -> str | list[str] | None:
    """The manifest's ``weights_key`` for the entries a harness takes from its checkpoint."""
    if not keys:
        return None
    first = keys[0]
    if len(keys) > 1:
        unresolved.append(
            f"{where}: the harness takes the nested entry {' -> '.join(map(shown, keys))}; the draft names the "
            "first level (effbench unwraps one more level of state_dict/params/params_ema by itself)"
        )
    if isinstance(first, str):
        return first
    if isinstance(first, Choice):
        named = [o for o in first.options if isinstance(o, str)]
        if None in first.options:  # `ckpt.get("params", ckpt)`: the entry when present, else the whole file
            if set(named) <= _UNWRAPPED:
                return None  # effbench's own unwrapping does just that
            unresolved.append(
                f"{where}: the checkpoint entry is {shown(first)} (the whole file); drafted as {named}"
            )
        return named[0] if len(named) == 1 else named or None
    return None


def entry_from_branch(repo: Path, file_name: str, b: Branch, unresolved: list[str]) -> Entry:
    m = b.model
    assert m is not None
    name = b.name if isinstance(b.name, str) and b.name else f"team{b.model_id:02}"
    where = f"{name} (model_id {b.model_id}, {file_name} line {b.line})"
    if not (isinstance(b.name, str) and b.name):
        unresolved.append(f"{where}: the harness gives no readable name ({shown(b.name)}); named {name!r}")
    unresolved.extend(f"{where}: {n}" for n in [*b.notes, *m.notes])
    notes: list[str] = []
    skip = None
    file = module_file(repo, m.module)
    if file is None:
        unresolved.append(f"{where}: module {m.module!r} not found under {repo}")
        skip = f"model module {m.module} not found"
        model = f"{repo / Path(*m.module.split('.'))}.py:{m.cls}"
    else:
        model = f"{file}:{m.cls}"
    kwargs = {k: v for k, v in m.kwargs.items() if v is not None}  # TOML has no null
    dropped = sorted(set(m.kwargs) - set(kwargs))
    if dropped:
        defaults = none_defaults(file, m.cls) if file is not None else set()
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
        unresolved.append(f"{where}: the checkpoint path {shown(path)} is not a literal; give weights")
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
        if file is not None and method_defined(file, m.cls, "load_state_dict"):
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
            f"{where}: the data range {shown(rng)} is not a literal (the model's attribute is used, else 255)"
        )
    tile = b.tile if isinstance(b.tile, int) and not isinstance(b.tile, bool) and b.tile > 0 else None
    if b.tile is not None and tile is None:
        unresolved.append(f"{where}: the tile {shown(b.tile)} is not a literal; measured whole")
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


def entry_from_files(
    repo: Path, n: int, file: Path, ckpts: list[Path], why: str, unresolved: list[str]
) -> Entry:
    """An entry paired by team number, marked with a ``note`` saying what was guessed."""
    stem = file.parent.name if file.name == "__init__.py" else file.stem
    guessed = [why]
    cls = last_module_class(file)
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
