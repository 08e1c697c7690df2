"""Results: one JSON document per measured cell, written atomically, and a pandas view over many.

Schema ``effbench.result/1`` (every producer writes it, every consumer reads it)::

    {
      "schema": "effbench.result/1",
      "model": "fmen_s",              # display name (zoo name or attribute)
      "spec": "fmen_s",               # the spec string as given
      "model_key": "336d0027088c",    # identity.key: what reports, gates and scores group by
      "identity": {"key", "name", "spec", "path", "module", "kwargs", "weights", "weights_sha256", "scale",
                   "form", "data_range"},  # effbench.zoo.ModelIdentity.as_dict()
      "scale": 4,
      "input_shape": [1, 3, 256, 256],
      "device": "cpu" | "cuda",
      "dtype": "fp32",
      "protocol": "steady" | "ntire" | null,
      "convention": "full" | "ntire2022" | "fvcore" | null,
      "status": "ok" | "error" | "timeout" | "oom" | "bad_output" | "nan_output",
      "error": null | "message",
      "metrics": {                    # any subset; a missing metric is absent (never 0)
        "params", "flops", "macs", "activations", "convs",
        "peak_memory_predicted_bytes", "peak_memory_measured_bytes",
        "runtime_ms": {"median", "mean", "std", "cv", "min", "iqr", "first_call", "repeats", "samples": [...]},
        "psnr", "ssim", "energy_j_per_image", ...
      },
      "env": {...},                   # torch/CUDA/GPU/CPU description
      "created": "ISO-8601 time",
      "effbench_version": "0.1.0"
    }
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCHEMA = "effbench.result/1"


def new_result(model: str, spec: str | None = None, *, identity: dict[str, Any] | None = None,
               **fields: Any) -> dict[str, Any]:
    """A result document with the schema's bookkeeping fields filled in.

    ``identity`` is the model's ``ModelIdentity.as_dict()``; it is stored with its key as ``model_key``, which
    reports, gates and scores group by (documents without one are grouped by ``model``).
    """
    from .. import __version__

    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "model": model,
        "spec": spec or model,
        "model_key": identity["key"] if identity else None,
        "identity": identity,
        "status": "ok",
        "error": None,
        "metrics": {},
        "env": {},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "effbench_version": __version__,
    }
    doc.update(fields)
    return doc


def write_json_atomic(path: str | os.PathLike[str], doc: Any) -> Path:
    """Write JSON to a temporary file in the same folder, fsync, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=False, default=_json_default)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def load_results(paths: Iterable[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """Read result documents from files and folders (folders: every ``*.json`` below, temporary files skipped).

    A file may hold one document or a list of them.
    """
    docs: list[dict[str, Any]] = []
    for p in paths:
        p = Path(p)
        files = sorted(p.rglob("*.json")) if p.is_dir() else [p]
        if not p.exists():
            raise FileNotFoundError(f"results not found: {p}")
        for f in files:
            if f.name.startswith("."):
                continue
            data = json.loads(f.read_text())
            items = data if isinstance(data, list) else [data]
            docs.extend(d for d in items if isinstance(d, dict) and d.get("schema") == SCHEMA)
    return docs


def results_frame(docs: Iterable[dict[str, Any]]):
    """A flat pandas DataFrame: one row per result, metrics flattened (``runtime_ms.median`` etc.)."""
    import pandas as pd

    rows = []
    for d in docs:
        row = {k: v for k, v in d.items() if k not in ("metrics", "env")}
        row["input_shape"] = "x".join(map(str, d.get("input_shape") or [])) or None
        for k, v in (d.get("metrics") or {}).items():
            if isinstance(v, dict):
                for kk, vv in v.items():
                    if not isinstance(vv, (list, dict)):
                        row[f"{k}.{kk}"] = vv
            elif not isinstance(v, list):
                row[k] = v
        env = d.get("env") or {}
        row["device_name"] = env.get("gpu_name") or env.get("cpu_model")
        rows.append(row)
    return pd.DataFrame(rows)
