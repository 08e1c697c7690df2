"""``effbench bench SPEC``: runtime of one model (steady or NTIRE protocol), printed or as JSON."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from ..backends import DEFAULT_THRESHOLD_DB, backend_names, dtype_names
from ..base.errors import UsageError
from ..base.inputs import parse_size
from ._common import add_model_arguments, add_timeout_argument, model_from_args
from ._isolate import run_isolated
from ._options import add_calibration, add_device, add_json, calibration_from_args
from ._output import json_out

if TYPE_CHECKING:
    from ..timing import BenchmarkResult

NAME = "bench"
HELP = "measure a model's runtime (steady-state statistics or the NTIRE challenge protocol)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    add_device(parser, "bench")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--size", default="256x256", help="LR input size HxW (default 256x256)")
    src.add_argument(
        "--dataset",
        default=None,
        metavar="DIR",
        help="LR/HR images: DIV2K_valid_LR+HR, HR+LR_bicubic/X{s}, LR+HR, or a folder of LR images",
    )
    parser.add_argument(
        "--protocol",
        choices=["steady", "ntire"],
        default="steady",
        help="steady (warm-up, N timed runs) or ntire (the challenge's test_demo.py)",
    )
    parser.add_argument("--dtype", choices=dtype_names(), default="fp32", help="default: fp32")
    add_calibration(parser)
    parser.add_argument(
        "--backend",
        choices=backend_names(),
        default="eager",
        help="eager (default), compile (torch.compile), onnxruntime (ONNX export, ONNX Runtime), tensorrt",
    )
    parser.add_argument(
        "--equivalence-db",
        type=float,
        default=DEFAULT_THRESHOLD_DB,
        metavar="DB",
        help="an exported or reduced-precision output below this PSNR against eager fp32 is bad_output "
        "(default %(default)g)",
    )
    parser.add_argument("--channels-last", action="store_true", help="use the channels_last memory format")
    parser.add_argument(
        "--cuda-graphs", action="store_true", help="replay the forward as a CUDA graph (steady)"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed runs (default: 100 on CUDA; on CPU until the median's 95%% CI is within 2%%, "
        "20 s at most)",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    parser.add_argument(
        "--images", type=int, default=10, help="synthetic images for --protocol ntire (default 10)"
    )
    parser.add_argument("--roofline", action="store_true", help="add the calibrated roofline bound")
    parser.add_argument(
        "--project",
        default=None,
        metavar="GPU",
        help="measure nothing: PROJECT the runtime on GPU (e.g. titan-xp, rtx-3090, rtx-a6000, h100) from a "
        "shapes-only trace and the fitted cost model, under --protocol at --size (effbench.timing.projection)",
    )
    add_json(parser, "the result document")
    add_timeout_argument(parser)
    parser.add_argument("--out", default=None, metavar="FILE", help="also write the result JSON to FILE")


def _fmt_ms(v: Any) -> str:
    return f"{v:.3f} ms" if isinstance(v, (int, float)) else "-"


def _print_human(doc: BenchmarkResult) -> None:
    m = doc["metrics"]
    rt = m.get("runtime_ms", {})
    shape = "x".join(map(str, doc["input_shape"][-2:]))
    print(
        f"{doc['model']}  x{doc['scale']}  input {shape}  {doc['device']} {doc['dtype']}  protocol {doc['protocol']}"
        f"  backend {doc.get('backend', 'eager')}"
    )
    if "export_seconds" in m:
        size = f", {m['artifact_bytes'] / 2**20:.2f} MiB" if "artifact_bytes" in m else ""
        print(f"  export/compile {m['export_seconds']:.2f} s{size}")
    if "equivalence_psnr_db" in m:
        print(
            f"  vs eager fp32: PSNR {m['equivalence_psnr_db']:.1f} dB, "
            f"max abs diff {m['equivalence_max_abs_diff']:.3g}"
        )
    if doc["protocol"] == "ntire":
        print(
            f"  mean over {m.get('images')} images: {_fmt_ms(rt.get('mean'))}  (first image {_fmt_ms(rt.get('first_call'))})"
        )
    else:
        print(
            f"  median {_fmt_ms(rt.get('median'))}  mean {_fmt_ms(rt.get('mean'))}  std {_fmt_ms(rt.get('std'))}  "
            f"CV {rt.get('cv', 0) * 100:.2f}%  min {_fmt_ms(rt.get('min'))}  IQR {_fmt_ms(rt.get('iqr'))}"
        )
        print(
            f"  first call {_fmt_ms(rt.get('first_call'))}  warm-up {rt.get('warmup_runs')} runs "
            f"({rt.get('warmup_stopped')})  timed {rt.get('repeats')} runs"
        )
        if rt.get("ci_rel") is not None:
            print(
                f"  median 95% CI [{_fmt_ms(rt['ci_low'])}, {_fmt_ms(rt['ci_high'])}] (+-{rt['ci_rel'] * 100:.1f}%)"
            )
        if rt.get("noisy"):
            load = doc.get("env", {}).get("load", {})
            print(
                f"  NOISY: {rt.get('noisy_reason')}; other processes used "
                f"{100 * load.get('other_cpu_share', float('nan')):.0f}% of the CPUs meanwhile"
            )
    if "peak_memory_measured_bytes" in m:
        print(f"  peak memory {m['peak_memory_measured_bytes'] / 2**20:.2f} MiB")
    if "energy_j_per_image" in m:
        print(f"  energy {m['energy_j_per_image'] * 1e3:.2f} mJ/image  ({m['power_w_mean']:.1f} W)")
    if "psnr" in m:
        print(f"  PSNR {m['psnr']:.3f} dB  ({m.get('psnr_protocol')})")
    if "roofline" in m:
        r = m["roofline"]
        print(
            f"  roofline bound {_fmt_ms(r['bound_ms'])} ({r['limited_by']}-bound); measured / bound "
            f"{r.get('measured_over_bound', float('nan')):.1f}"
        )
    env = doc.get("env", {})
    print(
        f"  on {env.get('gpu_name') or env.get('cpu_model')}  torch {env.get('torch_version')}  "
        f"threads {env.get('torch_threads')}"
    )


def run(args: argparse.Namespace) -> int:
    return run_isolated(
        lambda: _run(args), what=f"bench of {args.spec}", timeout=args.timeout, output=args.output
    )


def _project(args: argparse.Namespace) -> int:
    from ..timing.projection import project_model

    if args.dataset:
        raise UsageError("--project works from a trace at --size, not from --dataset images")
    proj = project_model(
        model_from_args(args).model,
        args.project,
        parse_size(args.size),
        protocol=args.protocol,
        images=args.images,
        dtype=args.dtype,
    )
    if args.json:
        json.dump({"model": args.spec, "projection": proj.as_dict()}, json_out(args), indent=2)
        print(file=json_out(args))
    else:
        print(f"{args.spec}  input {args.size}  protocol {args.protocol}")
        print(f"  {proj.text()}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from ..timing import BenchOptions, benchmark

    if args.project:
        return _project(args)

    doc = benchmark(
        model_from_args(args),
        parse_size(args.size),
        BenchOptions(
            protocol=args.protocol,
            cuda_graphs=args.cuda_graphs,
            repeats=args.repeats,
            dataset=args.dataset,
            images=args.images,
            roofline=args.roofline,
            backend=args.backend,
            equivalence_db=args.equivalence_db,
            calibration=calibration_from_args(args),
        ),
        device=args.device,
        dtype=args.dtype,
        channels_last=args.channels_last,
        threads=args.threads,
    )
    if args.out:
        from ..base.results import write_json_atomic

        write_json_atomic(args.out, doc.to_dict())
    if args.json:
        json.dump(doc.to_dict(), json_out(args), indent=2, default=str)
        print(file=json_out(args))
    else:
        _print_human(doc)
    return 0
