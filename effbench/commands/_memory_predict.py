"""``effbench memory predict``: one model's predicted peak memory, where it is and what is alive there, or two
models side by side; ``--measure`` measures it on CUDA beside the prediction, ``--snapshot`` writes it as a CUDA
memory snapshot."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from ..base.errors import UsageError
from ..base.inputs import parse_size
from ..base.measurement import Workload
from ._common import model_from_args
from ._output import json_out

if TYPE_CHECKING:
    from ..memory import MemoryReport
    from ..zoo.spec import ResolvedModel

__all__ = ["predict"]


def workload_from_args(args: argparse.Namespace, size: tuple[int, int]) -> Workload:
    """The one workload a memory command's prediction and measurement both run: ``size`` with the command's
    ``--batch``, ``--dtype``, ``--memory-format`` and ``--scale``."""
    return Workload(
        size=size, scale=args.scale, batch=args.batch, dtype=args.dtype, memory_format=args.memory_format
    )


def predict(args: argparse.Namespace) -> int:
    """``effbench memory [predict] SPEC [SPEC]``: one model's report, or two compared side by side."""
    from ..memory import predict_memory

    size = parse_size(args.size)
    specs = list(args.spec)
    forms = [f.strip() for f in args.forms.split(",")] if args.forms else None
    if forms is not None:
        bad = [f for f in forms if f not in ("train", "deploy")]
        if bad or not 1 <= len(forms) <= 2:
            raise UsageError(f"--forms takes one or two of 'train', 'deploy', got {args.forms!r}")
        if len(specs) == 1 and len(forms) == 2:
            specs = specs * 2
        if len(forms) == 1:
            forms = forms * len(specs)
        if len(forms) != len(specs):
            raise UsageError(f"--forms gives {len(forms)} forms for {len(specs)} specs")
    else:
        forms = ["train" if args.train_form else "deploy"] * len(specs)
    if len(specs) > 2:
        raise UsageError(f"give one SPEC or two to compare, got {len(specs)}")
    if args.batch < 1:
        raise UsageError(f"--batch must be >= 1, got {args.batch}")

    if args.snapshot:
        if len(specs) != 1:
            raise UsageError(f"--snapshot writes one model's snapshot, got {len(specs)} SPECs")
        if args.device_model != "cuda":
            raise UsageError("--snapshot needs --device-model cuda (the plain model has no allocator state)")
    if args.measure:
        return _run_measure(args, specs, forms, size)
    reports, labels = [], []
    for spec_text, form in zip(specs, forms):
        model = model_from_args(args, spec_text, deploy=form == "deploy")
        r = predict_memory(
            model,
            workload_from_args(args, size),
            device_model=args.device_model,
            donate_input=args.donate_input,
            gpu_profile=args.gpu_profile,
        )
        _warn_unless_sr_output(r, args.scale)
        reports.append(r)
        labels.append(f"{model.name}" + (f" ({form})" if args.forms or form == "train" else ""))
    snapshot = _write_snapshots(args, model, size) if args.snapshot else None

    if args.json:
        doc: dict[str, Any] = {"reports": [r.to_dict() for r in reports], "labels": labels}
        if len(reports) == 2:
            doc["ratio"] = reports[0].peak_bytes / reports[1].peak_bytes
        if args.plot:
            from ..memory.plot import plot_timeline

            doc["plot"] = str(plot_timeline(reports, args.plot, labels))
        if snapshot is not None:
            doc["snapshot"] = snapshot
        print(
            json.dumps(
                doc
                if len(reports) == 2
                else {**doc["reports"][0], **{k: v for k, v in doc.items() if k in ("plot", "snapshot")}},
                indent=2,
            ),
            file=json_out(args),
        )
        return 0
    for r, label in zip(reports, labels):
        if len(reports) == 2:
            print(f"=== {label} ===")
        _print_report(r, args.modules, brief=len(reports) == 2 and not args.details)
        print()
    if len(reports) == 2:
        _compare(reports[0], reports[1], labels[0], labels[1])
    if args.plot:
        from ..memory.plot import plot_timeline

        print(f"timeline written to {plot_timeline(reports, args.plot, labels)}")
    if snapshot is not None:
        _print_snapshots(snapshot)
    return 0


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"


def _print_report(r: MemoryReport, depth: int, brief: bool = False) -> None:
    """The report of one model; ``brief``: its peak, where it is and the sentence only (two models compared)."""
    c, h, w = r.feature_shape
    print(
        f"{r.model}: input {'x'.join(map(str, r.input_shape))} {r.dtype}, device model {r.device_model}"
        + (
            " (caching allocator, warm + measured forward)"
            if r.device_model == "cuda"
            else " (512-byte blocks)"
        )
    )
    print(
        f"peak      {r.peak_bytes:,} B ({_mib(r.peak_bytes)}) = {r.peak_x:.2f} x C x H x W "
        f"(C x H x W = {c} x {h} x {w}, {_mib(r.feature_bytes)})"
    )
    block = f"{r.peak_block} ({r.peak_block_type})" if r.peak_block else f"the model ({r.peak_block_type})"
    print(
        f"where     op #{r.peak_op_index} {r.peak_op} in {r.peak_module or '<model>'} ({r.peak_module_type}), "
        f"block {block}, {r.peak_pass} forward"
    )
    if brief:
        print("in words: " + r.sentence())
        return
    d = r.decomposition
    print(
        "decomposition  M = M_input + M_output + M_kept + M_net"
        + (" + M_allocator" if d["M_allocator"] else "")
    )
    for k in ("M_input", "M_output", "M_kept", "M_net", "M_allocator"):
        if k == "M_allocator" and not d[k]:
            continue
        print(f"  {k:<12} {d[k]:>14,} B  {d['x_feature'][k]:6.2f} x CHW")
    print("live at the peak:")
    print(f"  {'shape':<22} {'dtype':<8} {'bytes':>13} {'x CHW':>6}  {'producer':<24} why")
    net = [t for t in r.live_at_peak if t.role == "net"]
    for t in r.live_at_peak:
        if t.role == "net":
            continue
        print(
            f"  {str(list(t.shape)):<22} {t.dtype:<8} {t.bytes:>13,} {r.x(t.block_bytes):6.2f}  "
            f"{t.producer or '<model>':<24} {t.why}"
        )
    if net:
        nb = sum(t.block_bytes for t in net)
        print(f"  {'parameters + buffers':<22} {'':<8} {nb:>13,} {r.x(nb):6.2f}  ({len(net)} tensors)")
    print(f"per-module peaks (depth <= {depth}):")
    for name, m in sorted(r.per_module_peaks.items(), key=lambda kv: kv[1]["first_op_index"]):
        if name.count(".") + (1 if name else 0) > depth:
            continue
        print(
            f"  {name or '<model>':<28} {m['type']:<16} {m['peak_bytes']:>14,} B {m['x_feature']:6.2f} x CHW"
        )
    print("in words: " + r.sentence())
    for note in r.notes:
        print(f"note: {note}")


def _compare(a: MemoryReport, b: MemoryReport, la: str, lb: str) -> dict[str, float]:
    rows = [
        ("peak bytes", f"{a.peak_bytes:,}", f"{b.peak_bytes:,}"),
        ("peak MiB", f"{a.peak_bytes / 2**20:.2f}", f"{b.peak_bytes / 2**20:.2f}"),
        (
            "x C x H x W",
            f"{a.peak_x:.2f} ({'x'.join(map(str, a.feature_shape))})",
            f"{b.peak_x:.2f} ({'x'.join(map(str, b.feature_shape))})",
        ),
        ("peak op", a.peak_op, b.peak_op),
        ("peak block", f"{a.peak_block} ({a.peak_block_type})", f"{b.peak_block} ({b.peak_block_type})"),
        ("M_input", f"{a.decomposition['M_input']:,}", f"{b.decomposition['M_input']:,}"),
        ("M_output", f"{a.decomposition['M_output']:,}", f"{b.decomposition['M_output']:,}"),
        ("M_kept", f"{a.decomposition['M_kept']:,}", f"{b.decomposition['M_kept']:,}"),
        ("M_net", f"{a.decomposition['M_net']:,}", f"{b.decomposition['M_net']:,}"),
    ]
    wa = max(len(la), *(len(r[1]) for r in rows))
    print(f"{'':<14} {la:<{wa}}   {lb}")
    for name, va, vb in rows:
        print(f"{name:<14} {va:<{wa}}   {vb}")
    ratio = a.peak_bytes / b.peak_bytes
    print(f"peak ratio {la} / {lb} = {ratio:.3f} (saving {100 * (1 - 1 / ratio):.1f}% with {lb})")
    return {"ratio": ratio}


def _warn_unless_sr_output(r: MemoryReport, scale: int) -> None:
    """Warn (stderr) when the predicted forward's output is not the x``scale`` image of its input.

    A warning, not a refusal: ``memory`` also predicts blocks and feature extractors, whose output is not an image;
    a wrong ``--scale`` on an SR model is what the warning catches.
    """
    n, c, h, w = r.input_shape
    want = (n, 3, h * scale, w * scale)
    if r.output_shape != want:
        got = "no tensor" if r.output_shape is None else f"shape {r.output_shape}"
        print(
            f"effbench memory: warning: {r.model} returns {got} for a {tuple(r.input_shape)} input; a x{scale} SR "
            f"model returns {want} (check --scale or the model); the prediction below is for the module as it is",
            file=sys.stderr,
        )


def _run_measure(args: argparse.Namespace, specs: list[str], forms: list[str], size: tuple[int, int]) -> int:
    from ..memory import measure_cuda_memory

    docs = []
    for spec_text, form in zip(specs, forms):
        model = model_from_args(args, spec_text, deploy=form == "deploy")
        doc = measure_cuda_memory(model, workload_from_args(args, size))
        doc["form"] = form
        if args.snapshot:
            doc["snapshot"] = _write_snapshots(args, model, size)
        docs.append(doc)
    if args.json:
        print(json.dumps(docs if len(docs) > 1 else docs[0], indent=2), file=json_out(args))
        return 0
    for d in docs:
        print(
            f"{d['model']} ({d['form']}), input {'x'.join(map(str, d['input_shape']))} {d['dtype']}, "
            f"{d['env']['gpu']}, torch {d['env']['torch']}, cuDNN {d['env']['cudnn']}"
        )
        rows = [
            ("measured max_memory_allocated", d["measured_peak_bytes"]),
            ("predicted (caching allocator)", d["predicted_peak_bytes"]),
            ("predicted + measured workspaces", d["predicted_with_workspace_bytes"]),
            ("predicted (512-byte blocks only)", d["predicted_plain_bytes"]),
            ("memory_stats allocated peak", d["allocated_peak_bytes"]),
            ("memory_stats requested peak", d["requested_peak_bytes"]),
            ("cuDNN workspace (max over convs)", d["cudnn_workspace_max_bytes"]),
            (
                "resident measured / predicted",
                f"{d['resident_measured_bytes']:,} / {d['resident_predicted_bytes']:,}",
            ),
        ]
        for name, v in rows:
            print(f"  {name:<34} {v:>16,}" if isinstance(v, int) else f"  {name:<34} {v!s:>16}")
        print(
            f"  difference measured - predicted: {d['difference_bytes']:,} B ({d['difference_pct']:+.2f}%), "
            f"with workspaces {d['difference_with_workspace_pct']:+.2f}%"
        )
        if "snapshot" in d:
            _print_snapshots(d["snapshot"])
    return 0


def _write_snapshots(args: argparse.Namespace, model: ResolvedModel, size: tuple[int, int]) -> dict[str, Any]:
    """Write ``--snapshot`` (the prediction) and, with ``--measure``, the measured snapshot beside it."""
    from pathlib import Path

    from ..memory.snapshot import measured_snapshot, predict_snapshot, write_snapshot

    snap = predict_snapshot(
        model,
        workload_from_args(args, size),
        donate_input=args.donate_input,
        gpu_profile=args.gpu_profile,
        at=args.snapshot_at,
    )
    path = write_snapshot(snap.snapshot, args.snapshot)
    doc: dict[str, Any] = {
        "path": str(path),
        "at": snap.at,
        "predicted_peak_bytes": snap.peak_bytes,
        "predicted_requested_peak_bytes": snap.requested_peak_bytes,
        "predicted_reserved_bytes": snap.reserved_bytes,
    }
    if args.measure:
        measured = measured_snapshot(model, workload_from_args(args, size))
        doc["measured_path"] = str(write_snapshot(measured, Path(path).with_suffix(".measured.pickle")))
    return doc


def _print_snapshots(doc: dict[str, Any]) -> None:
    print(
        f"snapshot  {doc['path']} (the prediction, {doc['at']} of the warm + measured forward): "
        f"{_mib(doc['predicted_peak_bytes'])} allocated at the peak, "
        f"{_mib(doc['predicted_requested_peak_bytes'])} requested (the top of the viewer's Active Memory "
        f"Timeline), {_mib(doc['predicted_reserved_bytes'])} reserved"
    )
    if "measured_path" in doc:
        print(f"snapshot  {doc['measured_path']} (measured)")
    print("          open at https://pytorch.org/memory_viz (drop the file onto the page)")
