"""``onnxruntime``: export with the TorchScript ONNX exporter (``dynamo=False``: no onnxscript needed), run under
ONNX Runtime's CPU execution provider, or CUDA's on a CUDA device. Needs the ``effbench[onnx]`` extra.

The export has fixed shapes (as deployed); an input of another size is exported again for that size.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .diagnostics import export_failure
from .registry import BackendUnavailable, Prepared, register_backend, timed

OPSET = 17
_NUMPY = {torch.float32: "float32", torch.float16: "float16"}


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendUnavailable(
            f"onnxruntime is not available here: {exc} (pip install 'effbench[onnx]')"
        ) from exc
    return onnxruntime


def export_onnx(model: nn.Module, example: torch.Tensor) -> bytes:
    """The model as ONNX bytes for ``example``'s shape (input ``lr``, output ``sr``); an
    :class:`~effbench.backends.ExportError` naming op and module when it fails."""
    try:
        import onnx  # noqa: F401  (the exporter needs it)
    except ImportError as exc:
        raise BackendUnavailable(f"onnx is not available here: {exc} (pip install 'effbench[onnx]')") from exc
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer warnings
            torch.onnx.export(
                model,
                (example,),
                buf,
                dynamo=False,
                input_names=["lr"],
                output_names=["sr"],
                opset_version=OPSET,
                do_constant_folding=True,
            )
    except Exception as exc:
        raise export_failure("ONNX export", model, example, exc) from exc
    return buf.getvalue()


def _session(ort: Any, onnx_bytes: bytes, device: torch.device) -> Any:
    if device.type == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise BackendUnavailable(
                "onnxruntime's CUDAExecutionProvider is not available here (providers: "
                f"{', '.join(ort.get_available_providers())}; pip install onnxruntime-gpu)"
            )
        providers: list[str | tuple[str, dict[str, int]]] = [
            ("CUDAExecutionProvider", {"device_id": device.index or 0})
        ]
    else:
        providers = ["CPUExecutionProvider"]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()  # the thread count the cell asked torch for
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(onnx_bytes, sess_options=opts, providers=providers)


def session_runner(
    sess: Any, device: torch.device, out_shape: tuple[int, ...], dtype: torch.dtype
) -> Callable:
    """``fn(x) -> tensor`` for one session: numpy on CPU, I/O binding on torch's own buffers on CUDA."""
    if device.type != "cuda":

        def run_cpu(x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(sess.run(["sr"], {"lr": x.detach().contiguous().numpy()})[0])

        return run_cpu
    binding = sess.io_binding()
    out = torch.empty(out_shape, dtype=dtype, device=device)
    index = device.index or 0

    def run_cuda(x: torch.Tensor) -> torch.Tensor:
        x = x.detach().contiguous()
        binding.bind_input("lr", "cuda", index, _NUMPY[dtype], tuple(x.shape), x.data_ptr())
        binding.bind_output("sr", "cuda", index, _NUMPY[dtype], out_shape, out.data_ptr())
        torch.cuda.current_stream(device).synchronize()
        sess.run_with_iobinding(binding)
        return out

    return run_cuda


@register_backend("onnxruntime", "ONNX export, run by ONNX Runtime (CPU provider; CUDA provider on CUDA)")
def prepare_onnxruntime(model: nn.Module, example: torch.Tensor) -> Prepared:
    ort = _ort()
    if example.dtype not in _NUMPY:
        raise BackendUnavailable(f"onnxruntime runs fp32 and fp16 here, not {str(example.dtype)[6:]}")
    device = example.device
    sessions: dict[tuple[int, ...], Callable] = {}

    def build(x: torch.Tensor) -> tuple[Callable, int]:
        onnx_bytes = export_onnx(model, x)
        with torch.no_grad():
            out_shape = tuple(model(x).shape) if device.type == "cuda" else ()
        return session_runner(_session(ort, onnx_bytes, device), device, out_shape, x.dtype), len(onnx_bytes)

    (first, size), seconds = timed(lambda: build(example))
    sessions[tuple(example.shape)] = first

    def fn(x: torch.Tensor) -> torch.Tensor:
        run = sessions.get(tuple(x.shape))
        if run is None:
            run = sessions[tuple(x.shape)] = build(x)[0]
        return run(x)

    provider = "CUDAExecutionProvider" if device.type == "cuda" else "CPUExecutionProvider"
    return Prepared(
        "onnxruntime",
        fn,
        export_seconds=seconds,
        artifact_bytes=size,
        details={"provider": provider, "opset": OPSET, "onnxruntime": ort.__version__},
    )
