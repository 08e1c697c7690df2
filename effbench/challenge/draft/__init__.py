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

The package, one idea a module: :mod:`.values` (the abstract values of the walk), :mod:`.interpreter` (the abstract
interpreter), :mod:`.walk` (what ``select_model`` does for each ``model_id``), :mod:`.files` (the repository's
files, paired by team number), :mod:`.entries` (manifest entries from what was read); this module writes the
manifest.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field, replace
from pathlib import Path

from ...base.errors import UsageError
from ..manifest import Challenge, Entry, dump_manifest, known_years
from .entries import entry_from_branch, entry_from_files
from .files import checkpoint_files, model_files, module_file
from .values import Branch
from .walk import find_harness, model_ids, read_branch

__all__ = ["Draft", "draft_manifest"]


@dataclass(frozen=True)
class Draft:
    """A drafted manifest: the challenge it describes, its TOML text, and what the organiser must still decide."""

    challenge: Challenge
    text: str
    unresolved: list[str] = field(default_factory=list)


def _from_harness(
    root: Path, file: Path, func: ast.FunctionDef, module: ast.Module, models: dict[int, Path],
    ckpts: dict[int, list[Path]], unresolved: list[str],
) -> list[tuple[int, Entry]]:  # fmt: skip
    entries: list[tuple[int, Entry]] = []
    used: set[Path] = set()
    for n, line in model_ids(func, module).items():
        try:
            b = read_branch(func, n, line, module)
        except RecursionError:
            b = Branch(n, line, notes=["nested too deeply to read"])
        if b.model is not None:
            entries.append((n, entry_from_branch(root, file.name, b, unresolved)))
            f = module_file(root, b.model.module)
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
                    entry_from_files(
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
    models, ckpts = model_files(root), checkpoint_files(root)
    harness = find_harness(root)
    if harness is None:
        unresolved.append(
            f"no harness (a .py file defining select_model) in {root}; paired files by team number"
        )
        pairs: list[tuple[int, Entry]] = []
        for n in sorted(set(models) | set(ckpts)):
            if n in models:
                pairs.append(
                    (n, entry_from_files(root, n, models[n], ckpts.get(n, []), "no harness", unresolved))
                )
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
