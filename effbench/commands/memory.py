"""``effbench memory``: predict and explain the peak GPU memory of one or two models (FMEN paper, Sec. 3.1)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from ..base.errors import UsageError
from ..base.inputs import DTYPES, parse_size
from ._common import add_model_arguments, add_timeout_argument, model_from_args
from ._isolate import run_isolated
from ._options import add_device, add_json
from ._output import json_out

if TYPE_CHECKING:
    from ..memory import MemoryReport

NAME = "memory"
HELP = "predict the peak GPU memory of a forward pass, where it happens and what is alive there"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, multiple=True)
    for action in parser._actions:  # SPEC is optional with --demo
        if action.dest == "spec":
            action.nargs = "*"
            action.help = (
                "one model, or two to compare side by side (zoo name, file.py:Name, package.module:Name); "
                "'calibrate' measures a GPU workspace profile (--device cuda) or rebuilds one (--from)"
            )
    parser.add_argument("--size", default="256x256", help="LR input size HxW (default 256x256)")
    parser.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32", help="input and parameter dtype")
    parser.add_argument(
        "--device-model",
        choices=("cuda", "plain"),
        default="cuda",
        help="cuda: CUDA caching allocator, warm + measured forward (default); "
        "plain: live blocks rounded to 512 bytes",
    )
    parser.add_argument(
        "--forms",
        default=None,
        help="train/deploy form per SPEC, comma-separated (e.g. 'train,deploy'); with one SPEC "
        "and two forms, the model is compared with itself",
    )
    parser.add_argument(
        "--donate-input",
        action="store_true",
        help="free the input after its last use (a block inside a network) instead of keeping it",
    )
    parser.add_argument(
        "--plot", default=None, metavar="FILE.png", help="write the timeline with the peak marked"
    )
    parser.add_argument(
        "--memory-format",
        choices=("contiguous", "channels_last"),
        default="contiguous",
        help="layout of the input and 4-D parameters",
    )
    parser.add_argument(
        "--gpu-profile",
        default=None,
        metavar="NAME|FILE.json",
        help="add each conv's cuDNN workspace from this GPU profile (shipped: effbench/data/gpu_profiles)",
    )
    parser.add_argument(
        "--budget",
        default=None,
        metavar="BYTES",
        help="plan instead: the largest square, 16:9 and tile inputs predicted to fit (e.g. 8GiB, 512MiB, 8e9)",
    )
    parser.add_argument("--overlap", type=int, default=16, help="tile overlap in LR pixels (with --budget)")
    parser.add_argument(
        "--image",
        default=None,
        metavar="HxW",
        help="with --budget: the LR image the tiles cover, held on the device",
    )
    add_device(parser, "memory calibrate", "calibrate's measurement")
    parser.add_argument(
        "--from",
        dest="from_run",
        default=None,
        metavar="RESULTS.json",
        help="calibrate: rebuild the profile from a recorded validation run (scripts/gpu_check.py) instead",
    )
    parser.add_argument("--name", default=None, help="calibrate: the profile's name (default: from the GPU)")
    parser.add_argument(
        "--out", default=None, metavar="FILE.json", help="calibrate: where to write the profile"
    )
    parser.add_argument(
        "--snapshot",
        default=None,
        metavar="FILE.pickle",
        help="write the prediction as a CUDA memory snapshot (torch.cuda.memory._dump_snapshot's format) for "
        "pytorch.org/memory_viz; with --measure, the measured one goes beside it as FILE.measured.pickle",
    )
    parser.add_argument(
        "--snapshot-at",
        choices=("end", "peak"),
        default="end",
        help="end: after the measured forward (default); peak: where the predicted peak is reached",
    )
    add_json(parser, "the report(s)")
    add_timeout_argument(parser)
    parser.add_argument(
        "--demo",
        choices=("fig2",),
        default=None,
        help="fig2: the paper's plain stack and fusion structure, their peaks",
    )
    parser.add_argument(
        "--measure",
        action="store_true",
        help="also measure on CUDA (max_memory_allocated after a reset, warm + measured forward) "
        "and print it beside the prediction",
    )
    parser.add_argument(
        "--details",
        action="store_true",
        help="with two SPECs: each model's full report (decomposition, live tensors, per-module peaks) too",
    )
    parser.add_argument(
        "--modules",
        type=int,
        default=2,
        metavar="DEPTH",
        help="list per-module peaks down to this depth (default 2)",
    )


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"


def _print_report(r: Any, depth: int, brief: bool = False) -> None:
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


def _compare(a: Any, b: Any, la: str, lb: str) -> dict[str, Any]:
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


def _run_demo(args: argparse.Namespace, size: tuple[int, int]) -> int:
    from ..memory.structures import fig2_demo

    rows = fig2_demo(64, size, device_model=args.device_model)
    if args.json:
        print(
            json.dumps({"demo": "fig2", "size": list(size), "channels": 64, "rows": rows}, indent=2),
            file=json_out(args),
        )
        return 0
    print(
        f"Fig. 2 of the FMEN paper: C = 64, H x W = {size[0]} x {size[1]}, in-place ReLU, device model "
        f"{args.device_model}; features alive at each node, parameters excluded, in units of C x H x W"
    )
    for r in rows:
        print(f"  {r['structure']:<34} {r['node']:<28} op #{r['op_index']:<3} {r['features_x']:.2f} x CHW")
    print(
        "paper: plain topology 2x; fusion 3x at the second 3x3 conv and 6x (= 2 x 3 features) at the concat."
    )
    print("with the NTIRE protocol the caller keeps the input alive, which adds 1x to the plain stack.")
    return 0


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
        doc = measure_cuda_memory(model, size, batch=args.batch, dtype=DTYPES[args.dtype])
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


def _write_snapshots(args: argparse.Namespace, model: Any, size: tuple[int, int]) -> dict[str, Any]:
    """Write ``--snapshot`` (the prediction) and, with ``--measure``, the measured snapshot beside it."""
    from pathlib import Path

    from ..memory.snapshot import measured_snapshot, predict_snapshot, write_snapshot

    snap = predict_snapshot(
        model,
        size,
        batch=args.batch,
        dtype=DTYPES[args.dtype],
        memory_format=args.memory_format,
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
        measured = measured_snapshot(model, size, batch=args.batch, dtype=DTYPES[args.dtype])
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


def _run_calibrate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..memory.calibrate import calibrate_workspace, profile_from_validation

    if args.from_run:
        try:
            doc = json.loads(Path(args.from_run).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"cannot read the validation run {args.from_run!r}: {exc}") from None
        if not isinstance(doc, dict) or "memory" not in doc:
            raise UsageError(
                f"{args.from_run!r} has no 'memory' rows (expected scripts/gpu_check.py's results.json)"
            )
        env = doc.get("env", {})
        name = args.name or "-".join(str(env.get("gpu_name", "gpu")).lower().split())
        profile = profile_from_validation(doc["memory"], env, name=name, source=args.from_run)
    else:
        profile = calibrate_workspace(
            device=args.device,
            name=args.name,
            progress=lambda i, n, text: print(f"[{i + 1}/{n}] {text}", file=sys.stderr),
        )
    out = Path(args.out or f"{profile.name}.json")
    profile.save(out)
    n_points = sum(len(p) for p in profile.convs.values())
    if args.json:
        print(
            json.dumps({"profile": str(out), "signatures": len(profile.convs), "points": n_points}),
            file=json_out(args),
        )
    else:
        print(
            f"profile {profile.name}: {len(profile.convs)} conv signatures, {n_points} grid points -> {out}"
        )
    return 0


def _run_plan(args: argparse.Namespace, spec_text: str) -> int:
    from ..base.inputs import parse_bytes
    from ..memory.plan import plan_memory

    budget = parse_bytes(args.budget)
    model = model_from_args(args, spec_text, deploy=not args.train_form)
    plan = plan_memory(
        model,
        budget,
        scale=args.scale,
        dtype=DTYPES[args.dtype],
        memory_format=args.memory_format,
        gpu_profile=args.gpu_profile,
        overlap=args.overlap,
        image=parse_size(args.image) if args.image else None,
        batch=args.batch,
    )
    if args.json:
        print(json.dumps(plan.to_dict(), indent=2), file=json_out(args))
        return 0
    print(
        f"{plan.model} x{plan.scale} {plan.dtype}, budget {budget:,} B ({_mib(budget)})"
        + (f", GPU profile {plan.gpu_profile}" if plan.gpu_profile else ", no workspace (no --gpu-profile)")
    )
    for fit in (plan.square, plan.wide, plan.tile):
        label = fit.shape + (f" (overlap {plan.overlap} px)" if fit.shape == "tile" else "")
        if fit.size is None:
            print(
                f"  {label:<22} nothing fits: {'x'.join(map(str, fit.next_size))} needs {_mib(fit.next_peak_bytes)}"
            )
            continue
        print(
            f"  {label:<22} {fit.size[0]}x{fit.size[1]} LR -> {_mib(fit.peak_bytes or 0)} predicted; "
            f"{fit.next_size[0]}x{fit.next_size[1]} would need {_mib(fit.next_peak_bytes)}"
        )
    if plan.tiles:
        print(f"  tiles for {plan.image[0]}x{plan.image[1]}: {plan.tiles[0]} x {plan.tiles[1]}")  # type: ignore[index]
    print(
        f"  predicted peak monotone in the side over the searched sizes: {'yes' if plan.monotone else 'NO'}"
    )
    for note in plan.notes:
        print(f"note: {note}")
    return 0


def run(args: argparse.Namespace) -> int:
    what = f"memory of {' and '.join(args.spec) or 'the demo'}"
    return run_isolated(lambda: _run(args), what=what, timeout=args.timeout, output=args.output)


def _run(args: argparse.Namespace) -> int:
    from ..memory import predict_memory

    size = parse_size(args.size)
    if args.demo:
        if args.spec:
            raise UsageError("--demo takes no SPEC")
        return _run_demo(args, size)
    specs = list(args.spec or [])
    if specs[:1] == ["calibrate"]:
        if len(specs) > 1:
            raise UsageError("'effbench memory calibrate' takes no SPEC")
        return _run_calibrate(args)
    if args.budget is not None:
        if len(specs) != 1:
            raise UsageError(f"--budget plans for one SPEC, got {len(specs)}")
        return _run_plan(args, specs[0])
    if not specs:
        raise UsageError("give a SPEC (or two to compare), or --demo fig2")
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
            size,
            batch=args.batch,
            dtype=DTYPES[args.dtype],
            device_model=args.device_model,
            donate_input=args.donate_input,
            memory_format=args.memory_format,
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
