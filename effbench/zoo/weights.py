"""Checkpoints: the weights cache, download with SHA-256 check, key-layout mapping and strict loading.

Key layouts are a table: ``KEY_LAYOUTS[name]`` is a pure function mapping a checkpoint's state dict onto the
model's key names. Architecture files register their own with :func:`register_key_layout`.

* Cache folder: ``$EFFBENCH_WEIGHTS_DIR``, else ``$XDG_CACHE_HOME/effbench/weights``, else
  ``~/.cache/effbench/weights`` (:func:`weights_dir`).
* :func:`load_pretrained` (used by ``create_model(pretrained=True)`` and ``create_model(weights=...)``) resolves
  the official file of a zoo model, checks its SHA-256, maps its key layout and loads it strictly.
* :func:`load_checkpoint` loads any file into any model: it unwraps the usual containers (``state_dict``,
  ``params``, ``params_ema``, ``model``, ...), drops ``module.`` prefixes, and when the keys still do not match
  tries every registered key layout; :func:`load_checkpoint_loose` loads non-strictly and reports the keys left
  out (:class:`LooseLoad`).

Official checkpoints of re-parameterisable models (FMEN-S) hold the *deploy* form. Loading one into the train-time
form (``deploy=False``) is refused with a :class:`CheckpointError` that says so: a fused 3x3 kernel does not
determine the 1x1-3x3-1x1 weights and BN statistics it came from. Load it with ``deploy=True``; a train-form
checkpoint (e.g. from the authors' training code) loads into ``deploy=False`` given as ``weights=PATH``.
"""

from __future__ import annotations

import io
import os
import pickletools
import tempfile
import urllib.error
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..base.errors import CheckpointError
from .cache import checkpoint_status, sha256_of, weights_dir  # noqa: F401 (the cache queries, reached here too)

if TYPE_CHECKING:
    from .info import ModelInfo, PretrainedCfg

StateDict = dict[str, torch.Tensor]
KeyLayout = Callable[[StateDict], StateDict]

KEY_LAYOUTS: dict[str, KeyLayout] = {}

#: container keys under which training frameworks store the state dict (BasicSR, EDSR, KAIR, timm, ...)
WRAPPER_KEYS = (
    "state_dict",
    "params_ema",
    "params",
    "model",
    "model_state_dict",
    "net",
    "network",
    "generator",
)


def register_key_layout(name: str) -> Callable[[KeyLayout], KeyLayout]:
    """Register a state-dict key mapping under ``name`` (referenced by ``PretrainedCfg.key_layout``)."""

    def wrap(fn: KeyLayout) -> KeyLayout:
        KEY_LAYOUTS[name] = fn
        return fn

    return wrap


@register_key_layout("module_prefix")
def strip_module_prefix(sd: StateDict) -> StateDict:
    """DataParallel checkpoints: drop the leading ``module.`` of every key."""
    return {k.removeprefix("module."): v for k, v in sd.items()}


# --- the cache ------------------------------------------------------------------------------------------------------


def _download(url: str, dst: str) -> None:
    """Fetch ``url`` into the file ``dst`` (torch.hub's downloader: streams to a temp file, then renames)."""
    torch.hub.download_url_to_file(url, dst, progress=False)


def fetch(cfg: PretrainedCfg) -> Path:
    """Path of an official checkpoint in the cache, downloading it (and checking its SHA-256) if absent.

    Raises :class:`CheckpointError` naming the file when it cannot be fetched (offline, no address, read-only
    cache) or when its hash is wrong (cached or downloaded).
    """
    folder = weights_dir()
    path = folder / cfg.filename
    if path.is_file():
        verify_sha256(path, cfg.sha256)
        return path
    if not cfg.url:
        raise CheckpointError(
            f"checkpoint {cfg.filename} is not in the weights cache and has no download address; "
            f"put it in {folder} (or set EFFBENCH_WEIGHTS_DIR), or give weights=PATH"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{cfg.filename}.", suffix=".part", dir=folder)
        os.close(fd)
    except OSError as exc:
        raise CheckpointError(
            f"cannot download {cfg.filename}: the weights cache {folder} is not writable ({exc}); "
            f"download {cfg.url} yourself and put it in a writable folder named by EFFBENCH_WEIGHTS_DIR"
        ) from None
    try:
        try:
            _download(cfg.url, tmp)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise CheckpointError(
                f"cannot download {cfg.filename} from {cfg.url} ({type(exc).__name__}: {exc}); when offline, "
                f"put the file in {folder} (or point EFFBENCH_WEIGHTS_DIR at a folder holding it)"
            ) from None
        verify_sha256(tmp, cfg.sha256, name=cfg.filename)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def verify_sha256(path: str | os.PathLike[str], expected: str | None, name: str | None = None) -> None:
    """Raise :class:`CheckpointError` naming the file, the expected and the actual hash when they differ."""
    if not expected:
        return
    actual = sha256_of(path)
    if actual.lower() != expected.lower():
        raise CheckpointError(
            f"checkpoint {name or Path(path).name} ({path}) has the wrong SHA-256: expected {expected.lower()}, "
            f"got {actual}; the file is corrupt or not the official one (delete it to download it again)"
        )


# --- loading --------------------------------------------------------------------------------------------------------


def read_state_dict(path: str | os.PathLike[str], entry: str | Sequence[str] | None = None) -> StateDict:
    """Load a checkpoint file (``weights_only=True``: no code runs) and unwrap it to a flat ``{key: tensor}`` dict.

    ``entry`` names the item of the file's top-level dict that holds the state dict (``"params_ema"``, as a
    harness's ``torch.load(path)["params_ema"]``), or a sequence of such names of which the first the file has is
    taken (a key the harness chooses at run time); ``None`` unwraps the usual containers (:data:`WRAPPER_KEYS`).
    A file that cannot be read is refused with a :class:`CheckpointError` saying what it is (not a checkpoint, a
    truncated archive, or a pickle that names code to run on loading) and why it is refused; so is a missing
    ``entry``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated files, non-allow-listed globals
        raise CheckpointError(_unreadable(path, exc)) from None
    if entry is not None:
        wanted = (entry,) if isinstance(entry, str) else tuple(entry)
        found = next((e for e in wanted if isinstance(obj, Mapping) and e in obj), None)
        if found is None:
            have = list(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
            named = repr(wanted[0]) if len(wanted) == 1 else f"among {', '.join(map(repr, wanted))}"
            raise CheckpointError(f"checkpoint {path.name} ({path}) has no entry {named} (top level: {have})")
        obj = obj[found]
    return _unwrap(obj, path)


def _pickle_bytes(path: Path) -> bytes | None:
    """The pickle stream of a checkpoint: ``*/data.pkl`` of a torch zip archive or the whole file; None if neither."""
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if n.endswith("data.pkl")]
                return zf.read(names[0]) if names else None
        except (zipfile.BadZipFile, OSError, KeyError):
            return None
    data = path.read_bytes()
    return data if data[:1] == b"\x80" else None  # a pickle of protocol 2 or newer starts with PROTO


def _pickle_globals(data: bytes) -> list[str]:
    """The ``module.name`` globals a pickle stream refers to, read without unpickling (no code runs). Every
    pickle of the stream is read: a legacy (pre-zip) ``torch.save`` file is several pickles in a row (magic
    number, protocol, system info, the object, its storage keys) followed by the raw storages."""
    found: list[str] = []
    stream = io.BytesIO(data)
    while stream.tell() < len(data) and data[stream.tell()] == 0x80:  # another pickle (PROTO) follows
        strings: list[str] = []
        try:
            for op, arg, _ in pickletools.genops(stream):
                if isinstance(arg, str):
                    strings.append(arg)
                if op.name in ("GLOBAL", "INST") and isinstance(arg, str):
                    found.append(arg.replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]}.{strings[-1]}")
        except Exception:  # a truncated or malformed stream (or the raw storages): what was seen up to there
            break
    return list(dict.fromkeys(found))


#: globals a plain tensor checkpoint refers to; anything else means loading it would run other code
_TENSOR_GLOBALS = (
    "torch.",
    "collections.OrderedDict",
    "_codecs.encode",
    "numpy.core.multiarray._reconstruct",
    "numpy.dtype",
    "numpy.ndarray",
    "builtins.set",
    "__builtin__.set",
)


def _unreadable(path: Path, exc: Exception) -> str:
    """Why ``path`` is refused, in effbench's words (torch's advice to disable ``weights_only`` is left out)."""
    where = f"checkpoint {path.name} ({path})"
    data = _pickle_bytes(path)
    if data is None:
        head = path.read_bytes()[:8]
        return (
            f"{where} is not a PyTorch checkpoint: neither a torch zip archive nor a pickle "
            f"(first bytes {head!r}); give a file written by torch.save"
        )
    code = [g for g in _pickle_globals(data) if not g.startswith(_TENSOR_GLOBALS)]
    if code:
        return (
            f"{where} is a pickle whose loading would import and run code (it refers to {', '.join(code[:5])}"
            f"{', ...' if len(code) > 5 else ''}), not a plain state dict; effbench reads checkpoints with "
            f"torch.load(weights_only=True), which runs no code, so it is refused. Re-save the weights alone with "
            f"torch.save(model.state_dict(), PATH) from the code that made it, if you trust that code"
        )
    reason = str(exc).splitlines()[-1] if str(exc).strip() else type(exc).__name__
    if "weights_only" in reason:
        reason = type(exc).__name__
    return f"{where} is damaged or truncated: torch cannot read it ({type(exc).__name__}: {reason})"


def _is_state_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def _unwrap(obj: Any, path: Path) -> StateDict:
    if _is_state_dict(obj):
        return dict(obj)
    if isinstance(obj, Mapping):
        for key in WRAPPER_KEYS:
            inner = obj.get(key)
            if _is_state_dict(inner):
                return dict(inner)
            if isinstance(inner, Mapping):  # one more level, e.g. {'model': {'state_dict': ...}}
                for key2 in WRAPPER_KEYS:
                    if _is_state_dict(inner.get(key2)):
                        return dict(inner[key2])
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if (
            tensors and len(tensors) >= len(obj) - 2
        ):  # a state dict plus a few scalars (e.g. an epoch counter)
            return tensors
        raise CheckpointError(
            f"checkpoint {path.name} ({path}) holds no state dict: top-level keys {list(obj)[:8]} "
            f"(looked under {', '.join(WRAPPER_KEYS)})"
        )
    raise CheckpointError(f"checkpoint {path.name} ({path}) holds a {type(obj).__name__}, not a state dict")


def _mismatches(model: nn.Module, sd: Mapping[str, torch.Tensor]) -> tuple[list[str], list[str], list[str]]:
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [
        f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)
    ]
    return missing, unexpected, shapes


def _fits(model: nn.Module, sd: Mapping[str, torch.Tensor]) -> bool:
    return not any(_mismatches(model, sd))


def _describe(
    path: Path, model: nn.Module, missing: list[str], unexpected: list[str], shapes: list[str], n: int = 5
) -> str:
    parts = []
    for label, items in (
        ("wrong shapes", shapes),
        ("missing keys", missing),
        ("unexpected keys", unexpected),
    ):
        if items:
            more = f" (+{len(items) - n} more)" if len(items) > n else ""
            parts.append(f"{label}: {', '.join(items[:n])}{more}")
    return (
        f"checkpoint {path.name} ({path}) is a state dict whose keys do not fit {type(model).__name__}: "
        + "; ".join(parts)
    )


def apply_key_layout(sd: StateDict, key_layout: str | None) -> StateDict:
    """Map ``sd`` through the named layout (``None``: unchanged). Unknown names raise ``ValueError``."""
    if key_layout is None:
        return sd
    try:
        fn = KEY_LAYOUTS[key_layout]
    except KeyError:
        raise ValueError(
            f"unknown key layout {key_layout!r}; known: {', '.join(sorted(KEY_LAYOUTS))}"
        ) from None
    return fn(sd)


def load_checkpoint(
    model: nn.Module,
    path: str | os.PathLike[str],
    key_layout: str | None = None,
    *,
    entry: str | Sequence[str] | None = None,
) -> nn.Module:
    """Load a checkpoint file into ``model`` with strict key and shape matching; returns ``model``.

    ``key_layout`` names a registered mapping (see :data:`KEY_LAYOUTS`). Without one, the state dict is unwrapped
    from common containers (or taken from ``entry``, see :func:`read_state_dict`), a ``module.`` prefix is
    dropped, and if the keys still do not match every registered layout is tried. Raises
    :class:`CheckpointError` naming the file and the first offending keys.
    """
    path = Path(path)
    raw = read_state_dict(path, entry)
    sd = _match(model, raw, key_layout)
    if sd is None:
        raise _misfit(path, model, raw, key_layout)
    return _load_strict(model, sd, path)


@dataclass(frozen=True)
class LooseLoad:
    """What a non-strict load (:func:`load_checkpoint_loose`) left out: model keys the file lacks, file keys the
    model lacks."""

    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()


def load_checkpoint_loose(
    model: nn.Module, path: str | os.PathLike[str], entry: str | Sequence[str] | None = None
) -> LooseLoad:
    """Load a checkpoint non-strictly, as a harness's ``load_state_dict(sd, strict=False)``: the keys as the file
    has them (no prefix stripping, no layouts), matching keys copied, the rest reported. A matching key whose
    shape differs is still refused with a :class:`CheckpointError` (torch refuses it too)."""
    path = Path(path)
    sd = read_state_dict(path, entry)
    missing, unexpected, shapes = _mismatches(model, sd)
    if shapes:
        raise CheckpointError(_describe(path, model, [], [], shapes))
    try:
        model.load_state_dict(sd, strict=False)
    except RuntimeError as exc:  # e.g. a dtype that cannot be copied
        raise CheckpointError(f"loading checkpoint {path.name} ({path}) failed: {exc}") from None
    return LooseLoad(tuple(missing), tuple(unexpected))


def _misfit(path: Path, model: nn.Module, raw: StateDict, key_layout: str | None) -> CheckpointError:
    """The error naming the keys of ``raw`` (mapped as the loader mapped them) that do not fit ``model``."""
    sd = apply_key_layout(raw, key_layout) if key_layout else _strip_prefix(raw)
    return CheckpointError(_describe(path, model, *_mismatches(model, sd)))


def _load_strict(model: nn.Module, sd: StateDict, path: Path) -> nn.Module:
    """Copy a state dict that fits ``model`` (keys and shapes checked) into it."""
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:  # e.g. dtype that cannot be copied; shapes were already checked
        raise CheckpointError(f"loading checkpoint {path.name} ({path}) failed: {exc}") from None
    return model


def _strip_prefix(sd: StateDict) -> StateDict:
    if sd and all(k.startswith("module.") for k in sd):
        return strip_module_prefix(sd)
    return sd


def _match_official(model: nn.Module, raw: StateDict, key_layout: str | None) -> StateDict | None:
    """:func:`_match` with an official file's layout, else with any layout (a file named like an official one
    may be a re-save in another layout)."""
    return _match(model, raw, key_layout) or (_match(model, raw, None) if key_layout else None)


def _match(model: nn.Module, raw: StateDict, key_layout: str | None) -> StateDict | None:
    """The state dict mapped so that it fits ``model`` exactly, or ``None``."""
    if key_layout is not None:
        sd = apply_key_layout(raw, key_layout)
        return sd if _fits(model, sd) else None
    sd = _strip_prefix(raw)
    if _fits(model, sd):
        return sd
    for fn in KEY_LAYOUTS.values():
        try:
            cand = fn(sd)
        except Exception:  # a layout written for another architecture may choke on these keys
            continue
        if _fits(model, cand):
            return cand
    return None


def _official_cfg(info: ModelInfo, filename: str) -> PretrainedCfg | None:
    for cfgs in info.pretrained.values():
        for cfg in cfgs:
            if cfg.filename == filename:
                return cfg
    return None


def resolve_checkpoint(
    info: ModelInfo, scale: int, path: str | os.PathLike[str] | None = None
) -> tuple[Path, PretrainedCfg | None]:
    """Where the weights of ``info`` at ``scale`` come from, and the official entry describing them (if any).

    ``path=None``: the model's first official checkpoint for that scale (fetched into the cache if needed).
    ``path`` an existing file: that file, not hash-checked (its official entry, when its name is one, gives the
    key layout).
    ``path`` the bare name of one of the model's official files: that file from the cache or its address.
    """
    if path is None:
        cfgs = info.checkpoints(scale)
        if not cfgs:
            have = ", ".join(f"x{s}" for s in sorted(info.pretrained)) or "none"
            raise CheckpointError(
                f"no official checkpoint for {info.name} x{scale} (official checkpoints: {have}); "
                f"give one with weights=PATH"
            )
        return fetch(cfgs[0]), cfgs[0]
    p = Path(path).expanduser()
    cfg = _official_cfg(info, p.name)
    if p.is_file():
        return p, cfg
    if cfg is not None and p.name == str(path):
        return fetch(cfg), cfg
    raise CheckpointError(f"checkpoint file not found: {p}")


def load_pretrained(
    model: nn.Module,
    info: ModelInfo,
    scale: int,
    path: str | os.PathLike[str] | None = None,
    deploy: bool = True,
) -> nn.Module:
    """Load the official checkpoint of a zoo model (or ``path``) strictly into ``model``; returns ``model``.

    Official files are found in the cache (:func:`weights_dir`) or downloaded, and their SHA-256 is checked.
    ``path`` may be any checkpoint file or the bare name of one of the model's official files (for models with
    several, e.g. ``"FMEN_test_weights.pt"`` for ``fmen_s``).
    """
    file, cfg = resolve_checkpoint(info, scale, path)
    raw = read_state_dict(file)
    layout = cfg.key_layout if cfg is not None else None
    sd = _match_official(model, raw, layout)
    if sd is not None:
        return _load_strict(model, sd, file)
    if (
        not deploy
        and info.has_deploy_form
        and _match_official(info.factory(scale=scale, deploy=True), raw, layout) is not None
    ):
        raise CheckpointError(
            f"checkpoint {file.name} ({file}) holds the deploy (re-parameterised) form of {info.name}; "
            f"it cannot initialise the train-time form (deploy=False), whose 1x1-3x3-1x1 convolutions and "
            f"BatchNorm statistics are not determined by the fused kernels. Load it with deploy=True, or "
            f"give a train-form checkpoint with weights=PATH"
        )
    raise _misfit(file, model, raw, layout)
