"""The weights cache: where checkpoints live and whether one is there (torch-free, so listing the zoo needs no
torch)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol

__all__ = ["checkpoint_status", "sha256_of", "weights_dir"]


class _Checkpoint(Protocol):
    filename: str
    url: str | None


def weights_dir() -> Path:
    """The weights cache folder (not created): ``$EFFBENCH_WEIGHTS_DIR`` or the user cache folder."""
    env = os.environ.get("EFFBENCH_WEIGHTS_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "effbench" / "weights"


def sha256_of(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def checkpoint_status(cfg: _Checkpoint) -> str:
    """``"cached"`` when the file is in the cache, ``"downloadable"`` when it has an official address, else
    ``"none"`` (the hash is not checked here; it is at load time)."""
    if (weights_dir() / cfg.filename).is_file():
        return "cached"
    return "downloadable" if cfg.url else "none"
