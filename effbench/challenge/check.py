"""A participant's pre-submission check: every check the organisers run on an entry, then its projected score
against the year's baseline, timed side by side on the participant's own device.

Checks, in the organisers' order: the model builds from its file; its checkpoint loads strictly; it returns an x4
image of the input's size; its data range is one the harness feeds (1 or 255); the ops the year's FLOPs tool does
not count (and what that leaves out, against the ``full`` convention); PSNR against the year's threshold when the
validation images are given. The projection: params and FLOPs under the year's conventions against the
baseline's; the runtime as the ratio to the baseline from interleaved paired rounds
(:func:`effbench.timing.paired.time_interleaved`: one forward of each per round, rotating order), with the 95%
interval of its median carried through the score formula.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..base.errors import EffbenchError, UsageError

if TYPE_CHECKING:
    from torch import nn

    from ..base.measurement import Resolved
    from ..zoo.spec import ResolvedModel
    from .years import ChallengeYear

__all__ = ["CheckOptions", "check_entry", "check_markdown"]

_MAX_ROUNDS = 60
_TARGET_NOISE_PCT = 2.0


def _check(checks: list[dict[str, Any]], name: str, ok: bool | None, detail: str) -> bool | None:
    checks.append({"check": name, "ok": ok, "detail": detail})
    return ok


@dataclass(frozen=True)
class CheckOptions:
    """How :func:`check_entry` runs the entry besides its plain form: ``tile`` tile by tile (the harness's tiled
    ``forward``) for PSNR and timing; ``gpu`` the GPU its runtime is projected on (default: the year's)."""

    tile: int | None = None
    gpu: str | None = None


def _counts(resolved: Resolved, label: str, rules: ChallengeYear) -> dict[str, Any]:
    """The counts under the year's conventions (the ``year_counts`` measurement), with what the year's FLOPs
    tool leaves out against the ``full`` convention."""
    from ..base.measurement import Workload, run_measurements

    workload = Workload(size=tuple(rules.counting_input[-2:]), scale=4)
    run = run_measurements(
        resolved, workload, ["year_counts"], options={"counting": rules.counting, "label": label}
    )
    if "year_counts" in run.failed:
        raise run.failed["year_counts"]
    result = run.results["year_counts"]
    counts, profiles = result.metrics(), result.profiles
    counts["full"] = {k: counts["by_convention"]["full"][k] for k in ("flops", "activations", "convs")}
    year_macs = {r["name"]: r["macs"] for r in profiles[rules.counting["flops"]].by_op}
    # multiply-adds the full convention finds and the year's tool leaves out, by op (padding='same' convs...)
    counts["macs_not_counted"] = {
        r["name"]: r["macs"] - year_macs.get(r["name"], 0)
        for r in profiles["full"].by_op
        if r["macs"] > year_macs.get(r["name"], 0)
    }
    counts["ops_counted_zero"] = sorted(
        r["name"]
        for r in profiles["full"].by_op
        if r["flops"] and not r["macs"] and r["name"] not in year_macs
    )
    return counts


def _time_ratio(
    entry: nn.Module, baseline: nn.Module, size: tuple[int, int], device: str, rounds: int | None
) -> dict[str, Any]:
    """Runtime ratio entry / baseline from interleaved rounds: adaptive (until 2 SE < 2 %, at most 60 rounds)
    unless ``rounds`` is given."""
    from ..timing.paired import paired_change, time_interleaved

    models = {"entry": entry, "baseline": baseline}
    samples: dict[str, list[float]] = {"entry": [], "baseline": []}
    chunk = rounds or 10
    while True:
        got = time_interleaved(
            models, size, device=device, rounds=chunk, warmup=2 if not samples["entry"] else 1
        )
        for k in samples:
            samples[k] += got["samples_ms"][k]
        change = paired_change(samples, "baseline", "entry")
        n = len(samples["entry"])
        if rounds is not None or change["noise_pct"] <= _TARGET_NOISE_PCT or n >= _MAX_ROUNDS:
            break
    ratio = 1.0 + change["change_pct"] / 100.0
    half = change["noise_pct"] / 100.0
    return {
        "ratio": ratio,
        "ratio_low": max(ratio - half, 0.0),
        "ratio_high": ratio + half,
        "rounds": n,
        "entry_ms": sorted(samples["entry"])[n // 2],
        "baseline_ms": sorted(samples["baseline"])[n // 2],
        "input": [1, 3, *size],
        "device": device,
        "method": "median over interleaved rounds of t_entry / t_baseline; interval = median +- 2 SE",
    }


def check_entry(
    spec: str,
    year: int,
    *,
    weights: str | None = None,
    kwargs: str | dict[str, Any] | None = None,
    data_range: float | None = None,
    dataset: str | Path | None = None,
    device: str = "cpu",
    rounds: int | None = None,
    baseline: str | None = None,
    repo: str | Path | None = None,
    timing_size: tuple[int, int] | None = None,
    options: CheckOptions = CheckOptions(),
) -> dict[str, Any]:
    """Run the organisers' checks on one model and project its score under ``year``'s rules.

    ``baseline`` (a spec) is the model to time against; by default the year's baseline: the organisers' own
    entry when their repository ``repo`` is given, else the zoo's copy. A ``spec`` file inside ``repo`` is imported
    with ``repo`` as its import root, as the harness imports it (``from models.x import ...`` works).
    ``timing_size`` is the LR size the two are timed at (default: the year's
    counting input). ``options``: tile by tile, the projection's GPU (:class:`CheckOptions`). Returns a dict with ``checks`` (name, ok, detail), ``counts``, ``runtime``,
    ``projected`` (score and its interval), ``runtime_projection`` (the runtime and score projected on the year's
    GPU, or ``options.gpu``, by :mod:`effbench.challenge.projection`; absent with the reason in
    ``runtime_projection_error`` when the year names no described GPU) and ``passed`` (every check that could run
    passed).
    """
    from ..zoo.spec import ModelSpec, resolve_model
    from .scores import projected_score
    from .years import year_rules

    rules = year_rules(year)
    checks: list[dict[str, Any]] = []
    report: dict[str, Any] = {"model": spec, "year": year, "checks": checks}
    target = ModelSpec.parse(spec, kwargs, weights)
    if repo is not None:
        root = Path(repo).expanduser().resolve()
        if not root.is_dir():
            raise UsageError(f"--repo: the organisers' repository is not a folder: {root}")
        if target.file_path is not None and target.file_path.is_relative_to(root):
            target = replace(target, root=str(root))  # the entry imports `models.x` as in the harness
    try:
        resolved = resolve_model(target, scale=4)
    except EffbenchError as exc:
        _check(checks, "builds", False, str(exc))
        report["passed"] = False
        return report
    model, ident = resolved.model, resolved.identity
    _check(checks, "builds", True, f"{ident.name} from {ident.path or ident.module or ident.spec}")
    if weights is None:
        _check(checks, "loads strictly", None, "no checkpoint given (--weights)")
    else:
        _check(checks, "loads strictly", True, f"{Path(weights).name}: every key and shape fits")
    label = ident.name
    try:
        counts = _counts(resolved, label, rules)
        h, w = rules.counting_input[-2:]
        _check(checks, "x4 output", True, f"{h}x{w} -> {4 * h}x{4 * w}")
    except EffbenchError as exc:
        _check(checks, "x4 output", False, str(exc))
        report["passed"] = False
        return report
    report["counts"] = counts
    if options.tile:
        from ..quality.tiling import Tiled

        model = Tiled(model, options.tile)
        report["tile"] = options.tile
    rng = ident.data_range if data_range is None else float(data_range)
    _check(
        checks,
        "data range",
        rng in (1.0, 255.0),
        f"{rng:g} ({'given' if data_range is not None else 'the model default'}); the harness feeds 1 or 255",
    )
    missed = counts["macs_not_counted"]
    detail = (
        f"{rules.counting['flops']} counts {counts['flops'] / 1e9:.4f} G FLOPs"
        f" (full: {counts['full']['flops'] / 1e9:.4f} G)"
    )
    if missed:
        detail += "; multiply-adds not counted: " + ", ".join(
            f"{k} {v / 1e9:.4f} G" for k, v in missed.items()
        )
    if counts["uncounted_ops"]:
        detail += f"; ops without a rule: {', '.join(counts['uncounted_ops'])}"
    if counts["ops_counted_zero"]:
        detail += f"; counted 0 (elementwise): {', '.join(counts['ops_counted_zero'])}"
    _check(checks, "ops the year's FLOPs tool counts", True, detail)
    if dataset is not None:
        from ..base.inputs import resolve_device
        from ..timing.image_pairs import find_pairs
        from ..timing.ntire import evaluate_psnr

        got = evaluate_psnr(model, find_pairs(dataset, 4), resolve_device(device), data_range=rng, scale=4)
        if not got:
            raise UsageError(f"{dataset}: no HR images to score PSNR against")
        report["psnr"] = got["psnr"]
        from ..quality import evaluate

        paper = evaluate(model, dataset, 4, "paper", data_range=rng, device=device, progress=False)
        report["psnr_y"] = paper["psnr"]  # the papers' protocol: Y channel, border = scale
        thr = rules.psnr.valid_threshold_db
        _check(
            checks,
            "PSNR",
            got["psnr"] >= thr,
            f"{got['psnr']:.2f} dB on {Path(dataset).name} ({got['psnr_protocol']}; {paper['psnr']:.2f} dB on Y as "
            f"papers report it); the year's threshold is {thr:.2f} dB on {rules.psnr.valid_set}",
        )
    base_resolved, base_note = _baseline(rules, baseline, repo)
    base_model, base_label = base_resolved.model, base_resolved.name
    base_counts = _counts(base_resolved, base_label, rules)
    report["baseline"] = {"model": base_label, "what": base_note, "counts": base_counts}
    if rules.score.kind == "score":
        size = tuple(timing_size or rules.counting_input[-2:])
        timing = _time_ratio(model, base_model, size, device, rounds)
        report["runtime"] = timing
        base = {"runtime": 1.0, "flops": base_counts["flops"], "params": base_counts["params"]}
        projected = projected_score(
            {"runtime": timing["ratio"], "flops": counts["flops"], "params": counts["params"]},
            base,
            year,
            runtime_interval=(timing["ratio_low"], timing["ratio_high"]),
        )
        report["projected"] = {
            **asdict(projected),
            "baseline_score": projected_score(base, base, year).score,
            "weights": dict(rules.score.weights),
        }
    from .projection import check_projection

    try:
        report["runtime_projection"] = check_projection(
            model, base_model, year, options.gpu, counts, base_counts
        )
    except UsageError as exc:
        report["runtime_projection_error"] = str(exc)
    report["passed"] = all(c["ok"] is not False for c in checks)
    return report


def _baseline(rules: ChallengeYear, spec: str | None, repo: str | Path | None) -> tuple[ResolvedModel, str]:
    """The baseline to time against: ``spec``, else the organisers' own entry in ``repo``, else the zoo's copy
    (whose code may run at another speed than the organisers': said in the report)."""
    from ..zoo.spec import ModelSpec, resolve_model

    b = rules.baseline
    if spec is not None:
        target, note = ModelSpec.parse(spec), f"{spec} (given)"
    elif repo is not None:
        root = Path(repo).expanduser().resolve()
        target = ModelSpec(f"{root}/{b.entry}", dict(b.kwargs), root=str(root))
        note = f"the organisers' {b.entry} in {root}"
    elif b.zoo is not None:
        target = ModelSpec.parse(b.zoo)
        note = (
            f"the zoo's {b.zoo}: the same network as the organisers' {b.entry}, in effbench's code, whose speed may "
            "differ from theirs; give the organisers' repository (--repo) to time their own code"
        )
    else:
        raise UsageError(
            f"the zoo has no copy of {rules.year}'s baseline {b.model}: give the organisers' repository (--repo) "
            "or a baseline spec"
        )
    return resolve_model(target, scale=4), note


def check_markdown(report: dict[str, Any]) -> str:
    """The check as a short markdown page."""
    lines = [f"# effbench challenge check: {report['model']} under NTIRE {report['year']} ESR rules", ""]
    marks = {True: "PASS", False: "FAIL", None: "n/a"}
    lines += [f"- **{marks[c['ok']]}** {c['check']}: {c['detail']}" for c in report["checks"]]
    c = report.get("counts")
    if c:
        lines += [
            "",
            f"Params {c['params'] / 1e6:.4f} M, FLOPs {c['flops'] / 1e9:.4f} G, #Acts "
            f"{c['activations'] / 1e6:.4f} M, #Conv {c['convs']}.",
        ]
    t, p = report.get("runtime"), report.get("projected")
    if t and p:
        lines += [
            "",
            f"Baseline: {report['baseline']['what']}.",
            f"Runtime vs {report['baseline']['model']}: x{t['ratio']:.3f} (95% interval x{t['ratio_low']:.3f} to "
            f"x{t['ratio_high']:.3f}; {t['rounds']} interleaved rounds on {t['device']}, "
            f"{t['input'][2]}x{t['input'][3]}).",
            f"Projected score: {p['score']:.4f} (interval {p['low']:.4f} to {p['high']:.4f}); the baseline scores "
            f"{p['baseline_score']:.4f}. Lower is better.",
        ]
    if report.get("runtime_projection"):
        from .projection import check_projection_lines

        lines += ["", *check_projection_lines(report["runtime_projection"])]
    elif report.get("runtime_projection_error"):
        lines += ["", f"No runtime projection: {report['runtime_projection_error']}"]
    return "\n".join(lines) + "\n"
