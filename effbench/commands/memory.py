"""``effbench memory``: predict and explain the peak GPU memory of one or two models (FMEN paper, Sec. 3.1).

- ``effbench memory [predict] SPEC [SPEC] [--size HxW] [--plot FILE.png] [--snapshot FILE.pickle] [--measure]``: one
  model's predicted peak, where it is and what is alive there, or two side by side
  (:mod:`effbench.commands._memory_predict`);
- ``effbench memory plan SPEC --budget BYTES [--overlap N] [--image HxW]``: the largest square, 16:9 and tile inputs
  predicted to fit (also ``effbench memory SPEC --budget BYTES``);
- ``effbench memory demo fig2``: the paper's Fig. 2 structures (also ``effbench memory --demo fig2``);
- ``effbench memory calibrate [--device cuda | --from RESULTS.json]``: a GPU's cuDNN workspace profile.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from ..base.errors import UsageError
from ..base.inputs import DTYPES, parse_size
from ._common import add_model_arguments, add_timeout_argument, model_from_args
from ._isolate import run_isolated
from ._options import add_device, add_json
from ._output import json_out

NAME = "memory"
HELP = "predict the peak GPU memory of a forward pass, where it happens and what is alive there"
ACTIONS = ("predict", "plan", "demo", "calibrate")


def with_action(words: list[str]) -> list[str]:
    """The words after ``memory`` with the action the forms without one imply: ``--demo NAME`` is ``demo NAME``,
    ``--budget`` is ``plan``, anything else ``predict`` (nothing, or only ``--help``, stays as it is)."""
    if not words or words[0] in ACTIONS or words[0] in ("-h", "--help"):
        return words
    for i, w in enumerate(words):
        if w == "--demo" and i + 1 < len(words):
            return ["demo", words[i + 1], *words[:i], *words[i + 2 :]]
        if w.startswith("--demo="):
            return ["demo", w.split("=", 1)[1], *words[:i], *words[i + 1 :]]
    if any(w == "--budget" or w.startswith("--budget=") for w in words):
        return ["plan", *words]
    return ["predict", *words]


def _add_input_options(p: argparse.ArgumentParser, *, size: bool = True) -> None:
    """The input the prediction runs on: size, batch, dtype, layout, GPU profile."""
    if size:
        p.add_argument("--size", default="256x256", help="LR input size HxW (default 256x256)")
    p.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="fp32", help="input and parameter dtype")
    p.add_argument(
        "--memory-format",
        choices=("contiguous", "channels_last"),
        default="contiguous",
        help="layout of the input and 4-D parameters",
    )
    p.add_argument(
        "--gpu-profile",
        default=None,
        metavar="NAME|FILE.json",
        help="add each conv's cuDNN workspace from this GPU profile (shipped: effbench/data/gpu_profiles)",
    )


def _add_device_model(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device-model",
        choices=("cuda", "plain"),
        default="cuda",
        help="cuda: CUDA caching allocator, warm + measured forward (default); "
        "plain: live blocks rounded to 512 bytes",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")

    p = sub.add_parser("predict", help="one model's predicted peak and what is alive there, or two compared")
    add_model_arguments(p, multiple=True)
    _add_input_options(p)
    _add_device_model(p)
    p.add_argument(
        "--forms",
        default=None,
        help="train/deploy form per SPEC, comma-separated (e.g. 'train,deploy'); with one SPEC "
        "and two forms, the model is compared with itself",
    )
    p.add_argument(
        "--donate-input",
        action="store_true",
        help="free the input after its last use (a block inside a network) instead of keeping it",
    )
    p.add_argument("--plot", default=None, metavar="FILE.png", help="write the timeline with the peak marked")
    p.add_argument(
        "--snapshot",
        default=None,
        metavar="FILE.pickle",
        help="write the prediction as a CUDA memory snapshot (torch.cuda.memory._dump_snapshot's format) for "
        "pytorch.org/memory_viz; with --measure, the measured one goes beside it as FILE.measured.pickle",
    )
    p.add_argument(
        "--snapshot-at",
        choices=("end", "peak"),
        default="end",
        help="end: after the measured forward (default); peak: where the predicted peak is reached",
    )
    p.add_argument(
        "--measure",
        action="store_true",
        help="also measure on CUDA (max_memory_allocated after a reset, warm + measured forward) "
        "and print it beside the prediction",
    )
    p.add_argument(
        "--details",
        action="store_true",
        help="with two SPECs: each model's full report (decomposition, live tensors, per-module peaks) too",
    )
    p.add_argument(
        "--modules",
        type=int,
        default=2,
        metavar="DEPTH",
        help="list per-module peaks down to this depth (default 2)",
    )
    add_json(p, "the report(s)")
    add_timeout_argument(p)

    p = sub.add_parser("plan", help="the largest square, 16:9 and tile inputs predicted to fit a budget")
    add_model_arguments(p)
    _add_input_options(p, size=False)
    p.add_argument(
        "--budget",
        required=True,
        metavar="BYTES",
        help="the memory budget: the largest square, 16:9 and tile inputs predicted to fit (e.g. 8GiB, 512MiB, 8e9)",
    )
    p.add_argument("--overlap", type=int, default=16, help="tile overlap in LR pixels")
    p.add_argument(
        "--image", default=None, metavar="HxW", help="the LR image the tiles cover, held on the device"
    )
    add_json(p, "the plan")
    add_timeout_argument(p)

    p = sub.add_parser("demo", help="the paper's Fig. 2: plain stack and fusion structure, their peaks")
    p.add_argument("which", choices=("fig2",), help="fig2: the paper's plain stack and fusion structure")
    p.add_argument("--size", default="256x256", help="input size HxW (default 256x256)")
    _add_device_model(p)
    add_json(p, "the rows")
    add_timeout_argument(p)

    p = sub.add_parser("calibrate", help="a GPU's cuDNN workspace profile, measured or rebuilt from a run")
    add_device(p, "memory calibrate", "calibrate's measurement")
    p.add_argument(
        "--from",
        dest="from_run",
        default=None,
        metavar="RESULTS.json",
        help="rebuild the profile from a recorded validation run (scripts/gpu_check.py) instead",
    )
    p.add_argument("--name", default=None, help="the profile's name (default: from the GPU)")
    p.add_argument("--out", default=None, metavar="FILE.json", help="where to write the profile")
    add_json(p, "the profile's summary")
    add_timeout_argument(p)


def run(args: argparse.Namespace) -> int:
    if args.action is None:
        raise UsageError("give a SPEC (or two to compare), or an action: " + ", ".join(ACTIONS))
    from ._memory_predict import predict

    actions: dict[str, Callable[[argparse.Namespace], int]] = {
        "predict": predict,
        "plan": plan,
        "demo": demo,
        "calibrate": calibrate,
    }
    spec = args.spec if isinstance(getattr(args, "spec", None), list) else [getattr(args, "spec", "")]
    what = {
        "demo": "memory of the demo",
        "calibrate": "the workspace calibration",
    }.get(args.action, f"memory of {' and '.join(spec)}")
    return run_isolated(
        lambda: actions[args.action](args), what=what, timeout=args.timeout, output=args.output
    )


def demo(args: argparse.Namespace) -> int:
    """``effbench memory demo fig2``: the paper's plain stack and fusion block, their peaks."""
    from ..memory.structures import fig2_demo

    size = parse_size(args.size)
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


def calibrate(args: argparse.Namespace) -> int:
    """``effbench memory calibrate``: measure a GPU workspace profile, or rebuild one from a validation run."""
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


def plan(args: argparse.Namespace) -> int:
    """``effbench memory plan SPEC --budget BYTES``: the largest inputs predicted to fit the budget."""
    from ..base.inputs import parse_bytes
    from ..memory.plan import plan_memory
    from ..memory.report import mb

    budget = parse_bytes(args.budget)
    model = model_from_args(args, deploy=not args.train_form)
    result = plan_memory(
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
        print(json.dumps(result.to_dict(), indent=2), file=json_out(args))
        return 0
    print(
        f"{result.model} x{result.scale} {result.dtype}, budget {budget:,} B ({mb(budget)})"
        + (
            f", GPU profile {result.gpu_profile}"
            if result.gpu_profile
            else ", no workspace (no --gpu-profile)"
        )
    )
    for fit in (result.square, result.wide, result.tile):
        label = fit.shape + (f" (overlap {result.overlap} px)" if fit.shape == "tile" else "")
        if fit.size is None:
            print(
                f"  {label:<22} nothing fits: {'x'.join(map(str, fit.next_size))} needs {mb(fit.next_peak_bytes)}"
            )
            continue
        print(
            f"  {label:<22} {fit.size[0]}x{fit.size[1]} LR -> {mb(fit.peak_bytes or 0)} predicted; "
            f"{fit.next_size[0]}x{fit.next_size[1]} would need {mb(fit.next_peak_bytes)}"
        )
    if result.tiles:
        print(f"  tiles for {result.image[0]}x{result.image[1]}: {result.tiles[0]} x {result.tiles[1]}")  # type: ignore[index]
    print(
        f"  predicted peak monotone in the side over the searched sizes: {'yes' if result.monotone else 'NO'}"
    )
    for note in result.notes:
        print(f"note: {note}")
    return 0
