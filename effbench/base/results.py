"""Results: one JSON document per measured cell, written atomically, and a pandas view over many.

Schema ``effbench.result/1`` (every producer writes it, every consumer reads it)::

    {
      "schema": "effbench.result/1",
      "model": "fmen_s",              # display name (zoo name or attribute)
      "spec": "fmen_s",               # the spec string as given
      "model_key": "336d0027088c",    # identity.key: what reports, gates and scores group by
      "identity": {"key", "name", "spec", "path", "module", "kwargs", "weights", "weights_sha256", "scale",
                   "form", "data_range"},  # effbench.base.identity.ModelIdentity.as_dict()
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
import logging
import os
import tempfile
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import UsageError, output_error

SCHEMA = "effbench.result/1"
_log = logging.getLogger("effbench.results")


def new_result(
    model: str, spec: str | None = None, *, identity: dict[str, Any] | None = None, **fields: Any
) -> dict[str, Any]:
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
    """Write JSON to a temporary file in the same folder, fsync, then rename: readers never see half a file. A full
    device raises :class:`~effbench.base.errors.OutputError` naming ``path``, the temporary file removed."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise output_error(exc, path) or exc from None
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
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and (full := output_error(exc, path)) is not None:
            raise full from None
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


class UnreadableResultError(UsageError):
    """A results file that cannot be read as result documents (raised by ``load_results(strict=True)``)."""


def validate_result(doc: Any) -> str | None:
    """Why ``doc`` is not a valid result document (schema ``effbench.result/1``), or None when it is."""
    if not isinstance(doc, dict):
        return f"not a result document (a JSON {type(doc).__name__}, expected an object)"
    if not doc:
        return "an empty document ({})"
    if "schema" not in doc:
        return "no 'schema' field"
    if doc["schema"] != SCHEMA:
        return f"schema {doc['schema']!r}, expected {SCHEMA!r}"
    for key, kind in (("model", str), ("status", str), ("metrics", dict)):
        if key not in doc:
            return f"no {key!r} field"
        if not isinstance(doc[key], kind):
            return f"{key!r} is a {type(doc[key]).__name__}, expected a {kind.__name__}"
    return _impossible_metric(doc["metrics"])


def _impossible_metric(stored: dict[str, Any]) -> str | None:
    """Why a metric value cannot be a measurement (a negative or infinite cost, an infinite figure that is better
    higher but not a PSNR/SSIM-like bound), or None. Costs are the catalogue's ``better="lower"`` metrics."""
    import math

    from .catalogue import _REGISTRY, number

    for key, value in stored.items():
        m = _REGISTRY.get(key)
        v = number(value)
        if m is None or v is None:
            continue
        what = f"{key}.median" if isinstance(value, dict) else key
        if m.better == "lower" and (v < 0 or math.isinf(v)):
            return f"metric {what} is {v!r}: {m.label} cannot be {'negative' if v < 0 else 'infinite'}"
        if m.better is None and math.isinf(v):
            return f"metric {what} is {v!r}, not a finite number"
    return None


def _foreign(doc: Any) -> bool:
    """True for another kind of effbench document (a report, a study): not a result, and not a broken one."""
    schema = doc.get("schema") if isinstance(doc, dict) else None
    return isinstance(schema, str) and not schema.startswith("effbench.result/")


def _read_json(path: Path) -> tuple[Any, str | None]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"cannot be read ({exc})"
    if not text.strip():
        return None, "is empty"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return (
            None,
            f"is not valid JSON (truncated or corrupt: {exc.msg} at line {exc.lineno} column {exc.colno})",
        )


def load_results(paths: Iterable[str | os.PathLike[str]], *, strict: bool = False) -> list[dict[str, Any]]:
    """Read result documents from files and folders (folders: every ``*.json`` below, temporary files skipped).

    A file may hold one document or a list of them; other effbench documents (a report, a study: another
    ``schema``) are passed over. A file that does not parse, or a document that fails :func:`validate_result`,
    is skipped with a warning naming the file (logger ``effbench.results``), or, with ``strict``, raises
    :class:`UnreadableResultError` naming it. A file reached twice is read once; of two documents of the same
    ``cell_id`` only the newer is kept (warned).
    """
    docs: list[dict[str, Any]] = []
    seen: set[Path] = set()
    by_cell: dict[str, tuple[int, str]] = {}

    def bad(where: str, reason: str) -> None:
        if strict:
            raise UnreadableResultError(f"unreadable results file {where}: {reason}")
        _log.warning("effbench: skipping unreadable results file %s: %s", where, reason)

    for p in paths:
        p = Path(p)
        if not p.exists():
            raise FileNotFoundError(f"results not found: {p}")
        files = sorted(p.rglob("*.json")) if p.is_dir() else [p]
        for f in files:
            if f.name.startswith(".") or f.resolve() in seen:
                continue
            seen.add(f.resolve())
            data, problem = _read_json(f)
            if problem:
                bad(str(f), problem)
                continue
            items = data if isinstance(data, list) else [data]
            for i, item in enumerate(items):
                if _foreign(item):
                    continue
                where = f"{f} (entry {i})" if isinstance(data, list) else str(f)
                if (problem := validate_result(item)) is not None:
                    bad(where, problem)
                    continue
                cell_id = item.get("cell_id")
                if isinstance(cell_id, str) and cell_id in by_cell:
                    j, other = by_cell[cell_id]
                    keep_new = str(item.get("created") or "") >= str(docs[j].get("created") or "")
                    _log.warning(
                        "effbench: cell %s appears twice (%s and %s); keeping the one from %s",
                        cell_id,
                        other,
                        where,
                        where if keep_new else other,
                    )
                    if keep_new:
                        docs[j], by_cell[cell_id] = item, (j, where)
                    continue
                if isinstance(cell_id, str):
                    by_cell[cell_id] = (len(docs), where)
                docs.append(item)
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
