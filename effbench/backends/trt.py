"""``tensorrt``: torch-tensorrt when installed, else ONNX Runtime's TensorRT execution provider; CUDA only.

Where neither is present the backend says so (:class:`~effbench.backends.BackendUnavailable`), never a result.
"""

from __future__ import annotations

import importlib.util

import torch
from torch import nn

from .diagnostics import export_failure
from .registry import BackendUnavailable, Prepared, register_backend, timed


def _torch_tensorrt(model: nn.Module, example: torch.Tensor) -> Prepared:
    import torch_tensorrt

    def build() -> nn.Module:
        return torch_tensorrt.compile(
            model, ir="dynamo", inputs=[example], enabled_precisions={example.dtype}
        )

    try:
        trt_model, seconds = timed(build)
    except Exception as exc:
        raise export_failure("torch-tensorrt compile", model, example, exc) from exc
    return Prepared(
        "tensorrt",
        trt_model,
        export_seconds=seconds,
        details={"via": "torch_tensorrt", "torch_tensorrt": torch_tensorrt.__version__},
    )


def _ort_tensorrt(model: nn.Module, example: torch.Tensor) -> Prepared:
    import onnxruntime as ort

    from .ort import export_onnx, session_runner

    def build() -> tuple[object, int]:
        onnx_bytes = export_onnx(model, example)
        opts = {"device_id": example.device.index or 0, "trt_fp16_enable": example.dtype == torch.float16}
        sess = ort.InferenceSession(
            onnx_bytes, providers=[("TensorrtExecutionProvider", opts), "CUDAExecutionProvider"]
        )
        with torch.no_grad():
            shape = tuple(model(example).shape)
        run = session_runner(sess, example.device, shape, example.dtype)
        run(example)  # TensorRT builds its engine on the first run
        return run, len(onnx_bytes)

    (fn, size), seconds = timed(build)
    return Prepared(
        "tensorrt",
        fn,  # type: ignore[arg-type]
        export_seconds=seconds,
        artifact_bytes=size,
        details={"via": "onnxruntime TensorrtExecutionProvider", "onnxruntime": ort.__version__},
    )


@register_backend("tensorrt", "TensorRT through torch-tensorrt or ONNX Runtime's TensorRT provider (CUDA)")
def prepare_tensorrt(model: nn.Module, example: torch.Tensor) -> Prepared:
    if example.device.type != "cuda":
        raise BackendUnavailable(
            f"tensorrt is not available here: it needs a CUDA device, not {example.device}"
        )
    if importlib.util.find_spec("torch_tensorrt") is not None:
        return _torch_tensorrt(model, example)
    providers: list[str] = []
    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime as ort

        providers = ort.get_available_providers()
        if "TensorrtExecutionProvider" in providers:
            return _ort_tensorrt(model, example)
    raise BackendUnavailable(
        "tensorrt is not available here: torch_tensorrt is not installed and onnxruntime offers no "
        f"TensorrtExecutionProvider (providers: {', '.join(providers) or 'onnxruntime not installed'})"
    )
