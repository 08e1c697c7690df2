"""The Table 4-style comparison: one row per model, the paper's units and rounding, best/second-best marks.

Table 4 of the FMEN paper reports Params in K, FLOPs in G, Runtime in ms, Memory in MiB (from
``torch.cuda.max_memory_allocated``), Activations in M, Convs as a count and PSNR in dB; the best value of each
column is red and the second best blue. Here best is **bold** and second best *italic*. The columns, their units,
rounding and directions come from the metric catalogue (:mod:`effbench.base.catalogue`): Table 4's columns are in
every table, any other catalogued column appears when a result of the table carries it. A metric that is missing
is a dash with a footnote, never 0.

Units policy: counts take decimal prefixes (K = 1e3, M = 1e6, G = 1e9), bytes are binary (MiB = 2**20 bytes).
A measured value is the median of its samples, shown with its spread as it is (:class:`Spread`: the 95 % interval
of the median, or the interquartile range when the samples are too few for one; ``47.4ms [46.7, 48.9]``, never a
symmetric ``±`` around an interval that is not), rounded to two significant digits of the spread's half-width.
In such a column best and second best are given only where intervals separate: best to a lead whose interval
overlaps no other, second to the next one where its interval overlaps none of the slower ones. A value whose
timing stayed wider than its target is marked ``(noisy)`` and counted in the header.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..base.catalogue import Metric, columns, interval, lookup
from ..base.identity import ModelIdentity, display_names, result_key
from ..base.stats import MIN_CI_SAMPLES, median_ci, quartiles

MIB = 2**20


@dataclass(frozen=True)
class Spread:
    """The spread of a measured value, in table units: ``kind`` ``"95% CI"`` (of the median) or ``"IQR"``, and
    ``n``, the number of samples (``None`` when the result does not say)."""

    low: float
    high: float
    kind: str = "95% CI"
    n: int | None = None

    def half(self) -> float:
        return (self.high - self.low) / 2

    def overlaps(self, other: Spread) -> bool:
        return self.low <= other.high and self.high >= other.low


def spread_of(value: Any, scale: float = 1.0) -> Spread | None:
    """The spread of a stored statistics dict in units of ``value / scale``: its recorded 95 % interval, else the
    interval of the median from its ``samples`` (6 or more), else their interquartile range (2 or more); None when
    it has none of these (a plain number)."""
    if not isinstance(value, dict):
        return None
    samples = [float(x) for x in value.get("samples") or [] if isinstance(x, (int, float))]
    n = value.get("repeats") or len(samples) or None
    iv = interval(value)
    kind = "95% CI"
    if iv is None and len(samples) >= MIN_CI_SAMPLES:
        iv = median_ci(samples)
    if iv is None and len(samples) >= 2:
        iv, kind = quartiles(samples), "IQR"
    if iv is None:
        return None
    return Spread(iv[0] / scale, iv[1] / scale, kind, int(n) if n else None)


def significant(value: float, half: float, max_decimals: int) -> tuple[float, int]:
    """``value`` rounded to two significant digits of ``half`` (a spread's half-width) and the decimals to print,
    never more than ``max_decimals``: 1134.25 with half 153 is (1130, 0), 100.0 with half 2.0 is (100.0, 1)."""
    if half <= 0:
        return value, max_decimals
    digits = 1 - math.floor(math.log10(half))
    digits = min(digits, max_decimals)
    return round(value, digits), max(digits, 0)


# Fields that make two results comparable in one table.
GROUP_FIELDS = ("device", "input_shape", "scale", "dtype", "protocol", "convention")


@dataclass
class TableRow:
    """One model's row: values in table units (``None`` when missing) and the footnotes attached to cells."""

    model: str
    values: dict[str, float | None]  # column key -> value in the column's unit
    notes: dict[str, list[str]] = field(default_factory=dict)  # column key ("" = the row) -> footnote texts
    # column filled from one of several metrics -> its origin
    sources: dict[str, str] = field(default_factory=dict)
    status: str = "ok"
    # column -> spread of a measured value, table units
    intervals: dict[str, Spread] = field(default_factory=dict)
    # column -> why its measured value is flagged noisy (its interval stayed wider than its target)
    noisy: dict[str, str] = field(default_factory=dict)


@dataclass
class Table:
    """A comparison table of results measured under one set of conditions."""

    rows: list[TableRow]
    meta: dict[str, Any]  # device, device_name, input_shape, scale, protocol, convention, dtype
    columns: tuple[Metric, ...]  # the catalogue metrics shown, in column order

    def has_intervals(self, col: Metric) -> bool:
        """True when every row with a value in ``col`` also has its spread (a measured metric)."""
        valued = [r for r in self.rows if r.values.get(col.column) is not None]
        return bool(valued) and all(col.column in r.intervals for r in valued)

    def cell_text(self, row: TableRow, col: Metric) -> str:
        """The displayed cell: the value, and where it has a spread the value rounded to it with the interval as
        it is, ``47.4ms [46.7, 48.9]`` (95 % interval of the median) or ``47.4ms (IQR 46.7-48.9)``, then
        ``(noisy)`` where the timing stayed wider than its target."""
        v = row.values.get(col.column)
        sp = row.intervals.get(col.column)
        if not v or sp is None:
            return col.display(v) + (" (noisy)" if col.column in row.noisy and v else "")
        shown, decimals = significant(v, sp.half(), col.decimals)

        def num(x: float) -> str:
            return f"{x:,.{decimals}f}" if "," in col.fmt else f"{x:.{decimals}f}"

        lo, hi = (num(significant(x, sp.half(), col.decimals)[0]) for x in (sp.low, sp.high))
        text = num(shown) + col.cell_suffix
        text += f" [{lo}, {hi}]" if sp.kind == "95% CI" else f" (IQR {lo}-{hi})"
        return text + (" (noisy)" if col.column in row.noisy else "")

    def noisy_count(self, col: Metric) -> tuple[int, int]:
        """How many rows of ``col`` are flagged noisy, out of the rows with a value."""
        valued = [r for r in self.rows if r.values.get(col.column) is not None]
        return sum(col.column in r.noisy for r in valued), len(valued)

    def spread_text(self, row: TableRow, col: Metric) -> str | None:
        """The spread in words for a hover or a caption: ``median 1134.2 ms, 95% CI [1061.8, 1367.3], n = 7``."""
        v, sp = row.values.get(col.column), row.intervals.get(col.column)
        if v is None or sp is None:
            return None
        unit = f" {col.unit}" if col.unit else ""
        n = f", n = {sp.n}" if sp.n else ""
        noisy = f"; noisy: {row.noisy[col.column]}" if col.column in row.noisy else ""
        return f"median {v:.6g}{unit}, {sp.kind} [{sp.low:.6g}, {sp.high:.6g}]{n}{noisy}"

    def spread_kinds(self, col: Metric) -> tuple[set[str], set[int]]:
        """The kinds of spread (``"95% CI"``, ``"IQR"``) and the sample counts the rows of ``col`` have."""
        sps = [r.intervals[col.column] for r in self.rows if col.column in r.intervals]
        return {s.kind for s in sps}, {s.n for s in sps if s.n}

    def _interval_ranks(self, col: Metric) -> dict[str, int]:
        """Best (1) and second (2) by spread, only where intervals separate: best to the lead when its interval
        overlaps no other model's, second to the next when best was given and its interval overlaps none of the
        models after it. Overlapping intervals cannot be told apart, so they get no mark."""
        rows = sorted(
            (r for r in self.rows if r.values.get(col.column) is not None),
            key=lambda r: r.values[col.column],
            reverse=col.better == "higher",
        )
        marks: dict[str, int] = {}
        for place in (1, 2):
            i = place - 1
            if i >= len(rows):
                break
            lead = rows[i].intervals[col.column]
            if any(r.intervals[col.column].overlaps(lead) for r in rows[i + 1 :]):
                break
            marks[rows[i].model] = place
        return marks

    def ranks(self) -> dict[str, dict[str, int]]:
        """Per column, model -> 1 (best) or 2 (second best): by spread where the column has them (overlapping
        spreads share a place), otherwise compared at the displayed rounding."""
        out: dict[str, dict[str, int]] = {}
        for col in self.columns:
            if col.better is None:
                continue
            if self.has_intervals(col):
                if len(self.rows) >= 2:
                    out[col.column] = self._interval_ranks(col)
                continue
            vals = {
                r.model: round(v, col.decimals)
                for r in self.rows
                if (v := r.values.get(col.column)) is not None
            }
            distinct = sorted(set(vals.values()), reverse=col.better == "higher")
            marks: dict[str, int] = {}
            for place, target in enumerate(distinct[:2], start=1):
                for m, v in vals.items():
                    if v == target:
                        marks[m] = place
            # A single model (or all equal) is trivially "best": do not decorate a column without a contest.
            if len(distinct) >= 2:
                out[col.column] = marks
        return out

    def frame(self):
        """The table as a pandas DataFrame in the paper's units (NaN where missing)."""
        import pandas as pd

        sourced = [c for c in self.columns if c.sources]
        names = ["method", *[c.column for c in self.columns], *[source_field(c) for c in sourced], "status"]
        records = []
        for r in self.rows:
            rec: dict[str, Any] = {"method": r.model}
            for col in self.columns:
                v = r.values.get(col.column)
                rec[col.column] = float("nan") if v is None else v
            for col in sourced:
                rec[source_field(col)] = r.sources.get(col.column)
            rec["status"] = r.status
            records.append(rec)
        return pd.DataFrame(records, columns=names)


def source_field(col: Metric) -> str:
    """The frame field naming where a column with several sources took each value (``memory_source``)."""
    return f"{col.label.lower()}_source"


def _shape_key(doc: dict[str, Any]) -> tuple | None:
    s = doc.get("input_shape")
    return tuple(s) if s else None


def group_key(doc: dict[str, Any]) -> tuple:
    """The measurement conditions of a result; results with equal keys go into one table. A deployment backend
    other than eager (:mod:`effbench.backends`) is one more condition; eager results keep their key as before."""
    key = tuple(_shape_key(doc) if f == "input_shape" else doc.get(f) for f in GROUP_FIELDS)
    backend = doc.get("backend")
    return key if backend in (None, "eager") else (*key, backend)


def _device_name(doc: dict[str, Any]) -> str | None:
    env = doc.get("env") or {}
    return env.get("gpu_name") or env.get("cpu_model") or env.get("device_name")


def _one_or_range(values: Sequence[Any], fmt: str = "{}") -> str | None:
    """One value when all agree, ``a-b`` for numbers that differ, ``a / b`` for texts; None when there is none."""
    vals = [v for v in values if v is not None and v != ""]
    if not vals:
        return None
    distinct = sorted(set(vals), key=str)
    if len(distinct) == 1:
        return fmt.format(distinct[0])
    if all(isinstance(v, (int, float)) for v in distinct):
        return f"{fmt.format(min(distinct))}-{fmt.format(max(distinct))}"
    return " / ".join(fmt.format(v) for v in distinct)


def _parts(*pairs: tuple[str, str | None]) -> str | None:
    """``"CUDA 12.4, cuDNN 9"`` from ``(template, value)`` pairs, leaving out those whose value is None."""
    out = [t.format(v) for t, v in pairs if v is not None]
    return ", ".join(out) if out else None


def environment(docs: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """The environment block: ``(label, text)`` for device, driver, CUDA/cuDNN, torch, threads and cores, clocks
    and load, effbench version and the models' git commit, from the results' ``env``; a field no result records
    is left out, one the results disagree on shows its range."""
    envs = [d.get("env") or {} for d in docs]
    loads = [e.get("load") or {} for e in envs]

    def env(key: str, fmt: str = "{}") -> str | None:
        return _one_or_range([e.get(key) for e in envs], fmt)

    def load(key: str, fmt: str) -> str | None:
        return _one_or_range([ld.get(key) for ld in loads], fmt)

    name = env("gpu_name") or env("cpu_model") or env("device_name")
    kind = _one_or_range([d.get("device") for d in docs])
    gib = [e["gpu_memory_total_bytes"] / 2**30 for e in envs if e.get("gpu_memory_total_bytes")]
    threads, cores = env("torch_threads"), env("cpu_count")
    versions = [e.get("effbench_version") or d.get("effbench_version") for e, d in zip(envs, docs)]
    rows = [
        ("Device", f"{kind} ({name})" if name and kind else name or kind),
        ("GPU memory", _one_or_range(gib, "{:.1f} GiB")),
        ("Driver", env("gpu_driver")),
        ("CUDA", _parts(("CUDA {}", env("cuda_version")), ("cuDNN {}", env("cudnn_version")))),
        ("torch", env("torch_version")),
        (
            "Threads / cores",
            f"{threads or '?'} torch threads / {cores or '?'} cores" if threads or cores else None,
        ),
        (
            "Clocks",
            _parts(
                ("SM {} MHz", env("gpu_clock_sm_mhz")),
                ("memory {} MHz", env("gpu_clock_mem_mhz")),
                ("CPU {} MHz", load("cpu_freq_mhz", "{:.0f}")),
            ),
        ),
        (
            "Load",
            _parts(
                ("other processes used {} of the CPUs", load("other_cpu_share", "{:.0%}")),
                ("load average {}", load("loadavg_1m", "{:.2f}")),
                ("GPU at {} C", env("gpu_temperature_c")),
                ("drawing {} W", env("gpu_power_w", "{:.0f}")),
            ),
        ),
        ("Python", env("python")),
        ("effbench", _one_or_range(versions)),
        ("Models' git commit", env("git_commit") or "not recorded in these results"),
    ]
    return [(k, v) for k, v in rows if v]


def timing_settings(docs: Sequence[dict[str, Any]]) -> str | None:
    """How the runtimes were timed, from the results' settings: ``until the median's 95% interval is within 2%
    of it, at most 4 s of timed runs per model`` or ``100 timed runs``; None when no result says."""
    targets, fixed = set(), set()
    for d in docs:
        st = d.get("settings") or {}
        if st.get("repeats"):
            fixed.add(int(st["repeats"]))
        elif isinstance(t := st.get("timing_target"), dict) and t.get("budget_s"):
            targets.add((float(t.get("ci_rel") or 0), float(t["budget_s"])))
    parts = []
    if targets:
        rel = _one_or_range([100 * r for r, _ in targets], "{:g}")
        budget = _one_or_range([b for _, b in targets], "{:g}")
        parts.append(
            f"timed until the median's 95% interval is within {rel}% of it, at most {budget} s of timed runs "
            "per model"
        )
    if fixed:
        parts.append(f"{_one_or_range(sorted(fixed))} timed runs per model")
    return "; ".join(parts) or None


def merge_by_model(docs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge the results of one model measured under the same conditions (later documents win per metric).

    Sweeps may write a cell per metric family; the table wants one row per model.
    """
    merged: dict[tuple, dict[str, Any]] = {}
    for d in sorted(docs, key=lambda d: str(d.get("created") or "")):
        key = (result_key(d), group_key(d))
        if key not in merged:
            merged[key] = {**d, "metrics": dict(d.get("metrics") or {})}
            continue
        cur = merged[key]
        if d.get("status", "ok") == "ok" or cur.get("status", "ok") != "ok":
            cur["metrics"].update(d.get("metrics") or {})
            if d.get("status", "ok") != "ok" and not cur["metrics"]:
                cur["status"], cur["error"] = d.get("status"), d.get("error")
        else:  # a failed cell next to a good one: keep the good metrics, remember the failure
            cur.setdefault("_failures", []).append(f"{d.get('status')}: {d.get('error') or 'no message'}")
    return list(merged.values())


def split_groups(docs: Iterable[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Results split by measurement conditions. Documents without an input shape (e.g. quality-only cells,
    measured on whole images) are folded into every group holding the same model and scale."""
    docs = list(docs)
    shaped = [d for d in docs if _shape_key(d) is not None]
    loose = [d for d in docs if _shape_key(d) is None]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for d in shaped:
        groups.setdefault(group_key(d), []).append(d)
    if not groups and loose:
        return [loose]
    out = []
    for key, members in groups.items():
        extra = []
        models = {(result_key(m), m.get("scale")) for m in members}
        for d in loose:
            if (result_key(d), d.get("scale")) in models:
                # take on the group's conditions so that merging puts it on the same row
                extra.append({**d, **dict(zip((*GROUP_FIELDS, "backend"), key)), "input_shape": list(key[1])})
        out.append(members + extra)
    return out


def build_table(docs: Sequence[dict[str, Any]], order: Sequence[str] | None = None) -> Table:
    """Build the table of results measured under one set of conditions (see :func:`split_groups`)."""
    docs = merge_by_model(docs)
    names = display_names(ModelIdentity.of_result(d) for d in docs)
    shown = [
        c
        for c in columns()
        if c.always_shown or any(lookup(d.get("metrics") or {}, c)[0] is not None for d in docs)
    ]
    rows: list[TableRow] = []
    origins: dict[str, set[str]] = {c.column: set() for c in shown if c.sources}
    fallbacks: list[tuple[TableRow, str, str]] = []  # a cell filled by a later source: row, column, its note
    for d in docs:
        m = d.get("metrics") or {}
        status = d.get("status", "ok")
        notes: dict[str, list[str]] = {}
        values: dict[str, float | None] = {}
        sources: dict[str, str] = {}
        row = TableRow(names[result_key(d)], values, notes, sources, status)
        for col in shown:
            v, source = lookup(m, col)
            values[col.column] = None if v is None else v / col.scale
            stats = m.get(source.key) if source is not None else None
            sp = spread_of(stats, col.scale)
            if sp is not None:
                row.intervals[col.column] = sp
            if isinstance(stats, dict) and stats.get("noisy"):
                row.noisy[col.column] = str(stats.get("noisy_reason") or "flagged noisy")
            if col.sources and source is not None and source.origin:
                sources[col.column] = source.origin
                origins[col.column].add(source.origin)
                if source.key != col.sources[0] and source.fallback_note:
                    fallbacks.append((row, col.column, source.fallback_note))
            if v is None and status == "ok":
                notes.setdefault(col.column, []).append(col.missing_note)
        if status != "ok":
            notes.setdefault("", []).append(f"{status}: {d.get('error') or 'no message'}")
        for fail in d.get("_failures", []):
            notes.setdefault("", []).append(f"a cell failed ({fail})")
        rows.append(row)
    if order:
        pos = {name: i for i, name in enumerate(order)}
        rows.sort(key=lambda r: pos.get(r.model, len(pos)))
    first = docs[0] if docs else {}
    meta = {f: first.get(f) for f in GROUP_FIELDS}
    meta["backend"] = first.get("backend") or "eager"
    meta["device_name"] = next((n for d in docs if (n := _device_name(d))), None)
    meta["environment"] = environment(docs)
    meta["timing"] = timing_settings(docs)
    for col in shown:
        if col.sources:
            meta[f"{source_field(col)}s"] = sorted(origins[col.column])
    for row, column, note in fallbacks:
        if len(origins[column]) > 1:  # the table mixes sources: say which cells took the fallback
            row.notes.setdefault(column, []).append(note)
    return Table(rows, meta, tuple(shown))
