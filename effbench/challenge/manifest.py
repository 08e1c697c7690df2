"""The challenge manifest: a TOML file listing a challenge's entries.

```toml
[challenge]
name = "NTIRE 2024 ESR"
year = 2024
root = "."                      # import root, relative to this file; put on sys.path while importing entries
baseline = "00_RLFN_baseline"   # optional: the entry scores are relative to
scale = 4                       # optional, 4 by default

[[entry]]
name = "00_RLFN_baseline"
model = "models/team00_RLFN.py:RLFN_Prune"   # any effbench spec; a file spec relative to root
args = []                                    # positional constructor args
kwargs = {}
weights = "model_zoo/team00_rlfn.pth"        # relative to root
weights_key = "params_ema"                   # optional: the checkpoint entry holding the state dict, or a list
                                             #   of entries of which the first the file has is taken
strict = true                                # optional: false loads like load_state_dict(strict=False)
own_load_state_dict = true                   # optional: load through the model's own load_state_dict (default:
                                             #   whenever its class overrides it)
load_method = "load_weights"                 # optional: the model loads its checkpoint itself: model.load_weights(path)
after_load = [{ call = "repa" }, { call = "switch_deploy", each_module = true }]
                                             # optional: method calls after loading (args = [], kwargs = {})
data_range = 255.0                           # optional: the model's own data_range attribute, else 255
tile = 256                                   # optional: tiled inference
skip = "reason"                              # optional: listed, not measured
note = "..."                                 # optional: what `challenge init` guessed, shown in the leaderboard
```

A ``weights`` file that does not exist is no error: counting and memory prediction need no weights, so the
entry's static and memory parts are measured with the constructor's weights and its runtime and quality parts are
skipped with the reason (:attr:`Entry.weights_missing`).

:func:`load_manifest` checks everything and raises a :class:`UsageError` naming the file, the entry and the key;
:func:`dump_manifest` writes TOML that loads back to the same :class:`Challenge`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..base.errors import UsageError
from ..zoo.spec import AfterLoad, ModelSpec

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

__all__ = ["Challenge", "Entry", "dump_manifest", "known_years", "load_manifest"]


@dataclass(frozen=True)
class Entry:
    """One challenge entry. ``model`` and ``weights`` are absolute where they name files; ``root`` is the
    challenge's import root (absolute)."""

    name: str
    model: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None
    weights_key: str | tuple[str, ...] | None = None
    strict: bool = True
    data_range: float | None = None
    tile: int | None = None
    skip: str | None = None
    root: str | None = None
    own_load_state_dict: bool | None = None
    load_method: str | None = None
    after_load: tuple[AfterLoad, ...] = ()
    note: str | None = None

    @property
    def weights_missing(self) -> bool:
        """A checkpoint is named but its file does not exist (static and memory are measured without it)."""
        return self.weights is not None and not Path(self.weights).is_file()

    def spec(self, *, with_weights: bool = True) -> ModelSpec:
        """The entry's model spec (absolute paths, the import root set); ``with_weights=False``: built with the
        constructor's weights (the after-load calls still run)."""
        return ModelSpec(
            self.model,
            dict(self.kwargs),
            self.weights if with_weights else None,
            tuple(self.args),
            self.root,
            self.weights_key,
            self.strict,
            self.data_range,
            self.own_load_state_dict,
            self.load_method,
            tuple(self.after_load),
        )


@dataclass(frozen=True)
class Challenge:
    """A challenge: its year's rules apply to every entry. ``path`` is the manifest file it was loaded from."""

    name: str
    year: int
    root: str
    entries: tuple[Entry, ...] = ()
    baseline: str | None = None
    scale: int = 4
    path: str | None = None

    def entry(self, name: str) -> Entry:
        """The entry called ``name``."""
        for e in self.entries:
            if e.name == name:
                return e
        raise UsageError(f"challenge {self.name!r} has no entry {name!r}")


# --- loading ---------------------------------------------------------------------------------------------------------

_CHALLENGE_KEYS = {"name": str, "year": int, "root": str, "baseline": str, "scale": int}
_ENTRY_KEYS = {
    "name": str,
    "model": str,
    "args": list,
    "kwargs": dict,
    "weights": str,
    "weights_key": (str, list),
    "strict": bool,
    "data_range": float,
    "tile": int,
    "skip": str,
    "own_load_state_dict": bool,
    "load_method": str,
    "after_load": list,
    "note": str,
}


def known_years() -> tuple[int, ...]:
    """The challenge years with rules (:mod:`.years` when present, else 2022-2026)."""
    try:
        from .years import challenge_years
    except ImportError:
        return tuple(range(2022, 2027))
    return challenge_years()


def _typed(where: str, key: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    """``value`` checked against ``kind`` (``float`` accepts integers; ``int`` refuses booleans; a tuple: any of
    them)."""
    if isinstance(kind, tuple):
        if not isinstance(value, kind):
            raise UsageError(f"{where}: {key} must be a string or an array of strings, got {value!r}")
        return value
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok:
        names = {
            str: "a string",
            int: "an integer",
            float: "a number",
            bool: "true or false",
            list: "an array",
        }
        raise UsageError(f"{where}: {key} must be {names.get(kind, 'a table')}, got {value!r}")
    return float(value) if kind is float else value


def _table(
    where: str, table: Any, keys: Mapping[str, type | tuple[type, ...]], required: tuple[str, ...]
) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise UsageError(f"{where} must be a table, got {table!r}")
    unknown = sorted(set(table) - set(keys))
    if unknown:
        raise UsageError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
    missing = [k for k in required if k not in table]
    if missing:
        raise UsageError(f"{where}: missing key {', '.join(missing)}")
    return {k: _typed(where, k, v, keys[k]) for k, v in table.items()}


def _under(root: Path, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else root / p


def _entry(where: str, raw: Any, root: Path) -> Entry:
    name = raw.get("name") if isinstance(raw, dict) else None
    if isinstance(name, str):
        where = f"{where} ({name!r})"
    t = _table(where, raw, _ENTRY_KEYS, ("name", "model"))
    if not t["name"].strip():
        raise UsageError(f"{where}: name is empty; every entry needs a name (it names the entry's results)")
    skip = t.get("skip")
    spec = ModelSpec(t["model"])
    if not t["model"] or (not spec.is_zoo and not (spec.location and spec.attr)):
        raise UsageError(f"{where}: model must be a zoo name, path/file.py:Name or package.module:Name")
    model = t["model"]
    if spec.is_file:
        file = _under(root, spec.location).resolve()
        if not file.is_file() and not skip:
            raise UsageError(f"{where}: model file not found: {file}")
        model = f"{file}:{spec.attr}"
    weights = None
    if "weights" in t:
        weights = str(_under(root, t["weights"]).resolve())  # may be missing: static and memory need none
    for key in ("data_range", "tile"):
        if key in t and not (t[key] > 0 and math.isfinite(t[key])):
            raise UsageError(f"{where}: {key} must be positive, got {t[key]!r}")
    try:
        spec = ModelSpec(
            model,
            weights_key=t.get("weights_key"),
            load_method=t.get("load_method"),
            after_load=tuple(t.get("after_load", ())),
        )
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
    harness = {
        "weights_key": spec.weights_key,
        "load_method": spec.load_method,
        "after_load": spec.after_load,
    }
    if "load_method" in t and ("own_load_state_dict" in t or "weights_key" in t):
        raise UsageError(
            f"{where}: load_method loads the checkpoint itself; drop own_load_state_dict/weights_key"
        )
    return Entry(
        name=t["name"],
        model=model,
        args=tuple(t.get("args", ())),
        kwargs=dict(t.get("kwargs", {})),
        weights=weights,
        strict=t.get("strict", True),
        data_range=t.get("data_range"),
        tile=t.get("tile"),
        skip=skip,
        root=str(root),
        own_load_state_dict=t.get("own_load_state_dict"),
        note=t.get("note"),
        **harness,
    )


def load_manifest(path: str | Path) -> Challenge:
    """Read and check a manifest; paths are made absolute (``root`` relative to the manifest's folder, weights
    and file specs relative to ``root``). Every problem is a :class:`UsageError` naming the file, the entry and
    the key."""
    path = Path(path).expanduser().resolve()
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read the manifest {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"the manifest {path} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"challenge", "entry"})
    if unknown:
        raise UsageError(
            f"{path}: unknown top-level key {', '.join(unknown)} (expected [challenge], [[entry]])"
        )
    if "challenge" not in data:
        raise UsageError(f"{path}: no [challenge] table")
    c = _table(f"{path}: [challenge]", data["challenge"], _CHALLENGE_KEYS, ("name", "year"))
    years = known_years()
    if c["year"] not in years:
        raise UsageError(
            f"{path}: [challenge] year {c['year']} has no rules; known years: {', '.join(map(str, years))}"
        )
    scale = c.get("scale", 4)
    if scale < 1:
        raise UsageError(f"{path}: [challenge] scale must be positive, got {scale}")
    root = _under(path.parent, c.get("root", ".")).resolve()
    if not root.is_dir():
        raise UsageError(f"{path}: [challenge] root is not a folder: {root}")
    raw = data.get("entry", [])
    if not isinstance(raw, list):
        raise UsageError(f"{path}: entry must be an array of tables ([[entry]])")
    entries = tuple(_entry(f"{path}: entry {i + 1}", e, root) for i, e in enumerate(raw))
    names = [e.name for e in entries]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"{path}: duplicate entry name {', '.join(map(repr, twice))}")
    baseline = c.get("baseline")
    if baseline is not None and baseline not in names:
        raise UsageError(f"{path}: [challenge] baseline {baseline!r} is not an entry name")
    return Challenge(c["name"], c["year"], str(root), entries, baseline, scale, str(path))


# --- writing ---------------------------------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _string(s: str) -> str:
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _key(k: str) -> str:
    return k if _BARE_KEY.fullmatch(k) else _string(k)


def _value(v: Any) -> str:
    """One TOML value (string, boolean, number, array or inline table)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        if not v:
            return "{}"
        return "{ " + ", ".join(f"{_key(str(k))} = {_value(x)}" for k, x in v.items()) + " }"
    raise UsageError(f"cannot write {v!r} ({type(v).__name__}) to TOML")


def _relative(path: str, folder: Path) -> str:
    p = Path(path)
    return p.relative_to(folder).as_posix() if p.is_relative_to(folder) else str(p)


def dump_manifest(challenge: Challenge) -> str:
    """The manifest as TOML: paths under the root written relative to it, the root relative to the manifest's
    folder when the challenge was loaded from a file (else absolute)."""
    root = Path(challenge.root)
    where = Path(challenge.path).parent if challenge.path else None
    shown_root = str(root)
    if where is not None and root.is_relative_to(where):
        shown_root = root.relative_to(where).as_posix() or "."
    head: dict[str, Any] = {"name": challenge.name, "year": challenge.year, "root": shown_root}
    if challenge.baseline is not None:
        head["baseline"] = challenge.baseline
    if challenge.scale != 4:
        head["scale"] = challenge.scale
    lines = ["[challenge]", *(f"{k} = {_value(v)}" for k, v in head.items())]
    for e in challenge.entries:
        spec = ModelSpec(e.model)
        model = f"{_relative(spec.location, root)}:{spec.attr}" if spec.is_file else e.model
        fields: dict[str, Any] = {"name": e.name, "model": model, "args": list(e.args), "kwargs": e.kwargs}
        if e.weights is not None:
            fields["weights"] = _relative(e.weights, root)
        optional = {
            "weights_key": e.weights_key,
            "own_load_state_dict": e.own_load_state_dict,
            "load_method": e.load_method,
            "data_range": e.data_range,
            "tile": e.tile,
            "skip": e.skip,
            "note": e.note,
        }
        fields.update({k: v for k, v in optional.items() if v is not None})
        if not e.strict:
            fields["strict"] = False
        if e.after_load:
            fields["after_load"] = [a.to_dict() for a in e.after_load]
        lines += ["", "[[entry]]", *(f"{k} = {_value(v)}" for k, v in fields.items())]
    return "\n".join(lines) + "\n"
