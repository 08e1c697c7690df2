"""The built-in zoo as data: each model's scales, deploy-form parameters per scale, data range and official
checkpoints, committed in ``effbench/data/zoo_index.json`` so that listing the zoo needs no torch.

:func:`zoo_records` answers from the index while it can stand for the live registry (no plugin configured, nothing
registered in this process yet, every asked-for name in it) and from the live registry otherwise.
``python -m effbench.zoo.index`` rewrites the index from the registry; ``tests/test_zoo_index.py`` checks that the
committed one equals it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..base.plugins import plugin_names
from . import registry

if TYPE_CHECKING:
    from .info import ModelInfo

__all__ = ["INDEX_PATH", "build_index", "deploy_params", "read_index", "zoo_records", "write_index"]

INDEX_PATH = Path(__file__).resolve().parent.parent / "data" / "zoo_index.json"
_BUILT_IN = "effbench.zoo.models"


def deploy_params(info: ModelInfo, scale: int) -> int:
    """Parameters of the deploy form of a zoo model at ``scale``.

    Built on the CPU: cheaper than the meta device here, whose first use of ops like ``torch.eye`` imports
    torch's reference decompositions (seconds).
    """
    model = info.factory(scale=scale, deploy=True)
    return sum(p.numel() for p in model.parameters())


def _record(info: ModelInfo) -> dict[str, Any]:
    """One model's JSON-ready record (the checkpoints without their cache status, which is the host's)."""
    return {
        "name": info.name,
        "description": info.description,
        "scales": list(info.scales),
        "params": {str(s): deploy_params(info, s) for s in info.scales},
        "data_range": info.data_range,
        "has_deploy_form": info.has_deploy_form,
        "paper": info.paper,
        "checkpoints": {
            str(s): [
                {
                    "filename": c.filename,
                    "url": c.url,
                    "sha256": c.sha256,
                    "source": c.source,
                    "licence": c.licence,
                }
                for c in info.checkpoints(s)
            ]
            for s in info.scales
        },
    }


def build_index() -> list[dict[str, Any]]:
    """The records of every built-in zoo model (plugins left out), from the live registry (imports torch)."""
    names = registry.list_models()
    return [_record(i) for i in map(registry.model_info, names) if i.factory.__module__.startswith(_BUILT_IN)]


def read_index(path: Path = INDEX_PATH) -> list[dict[str, Any]]:
    """The committed records (empty when the file is absent)."""
    if not path.is_file():
        return []
    return list(json.loads(path.read_text(encoding="utf-8"))["models"])


def write_index(path: Path = INDEX_PATH) -> int:
    """Rewrite the index from the live registry; returns the number of models written."""
    records = build_index()
    path.write_text(json.dumps({"models": records}, indent=1) + "\n", encoding="utf-8")
    return len(records)


def zoo_records(names: list[str] | None = None) -> list[dict[str, Any]]:
    """The records of ``names`` (every model when ``None``), in the order asked (sorted by name for all).

    Unknown names raise :class:`~effbench.base.errors.UnknownModelError` naming the closest ones (from the live
    registry, which knows plugins).
    """
    if not registry.any_registered() and not plugin_names():
        indexed = {r["name"]: r for r in read_index()}
        if indexed and (names is None or all(n in indexed for n in names)):
            return [indexed[n] for n in (names or sorted(indexed))]
    infos = [registry.model_info(n) for n in (names or registry.list_models())]
    return [_record(i) for i in infos]


if __name__ == "__main__":  # pragma: no cover - the maintainer's command
    print(f"{write_index()} models written to {INDEX_PATH}", file=sys.stderr)
