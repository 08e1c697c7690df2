"""``int8`` under ``onnxruntime``: ONNX Runtime's post-training static quantisation on a calibration set.

The fp32 model is exported to ONNX (:func:`~effbench.backends.ort.export_onnx`), calibrated on LR images
(MinMax ranges of every activation) and rewritten in QDQ format with per-channel int8 weights and uint8
activations (U8S8, the form ONNX Runtime's CPU kernels run fastest on x86), then run by the CPU execution
provider. Input and output stay fp32, so the equivalence check compares it with eager fp32 like any backend.

The calibration images are the LR images of the folders the caller names (``calibration``: ``effbench run`` and
``effbench bench`` take them as ``--calibration FOLDER[,FOLDER]``, e.g. Set5's and Set14's ``LR_bicubic/X4``; the
commands read ``EFFBENCH_CALIBRATION``, ``os.pathsep``-separated, as that flag's default, and nothing below them
reads the environment), each cropped to the input size at its centre (mirrored where it is smaller), or the
images given to :func:`prepare_onnxruntime_int8`. A sweep cell records its calibration folders
(:attr:`effbench.sweep.config.Cell.calibration`), so a result says what it was calibrated on.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..base.errors import UsageError
from ..base.images import list_images, read_image
from .ort import OPSET, _ort, _session, export_onnx, session_runner
from .registry import BackendUnavailable, ExportError, Prepared, register_quantisation, timed

__all__ = [
    "CALIBRATION_ENV",
    "calibration_batches",
    "calibration_folders",
    "calibration_images",
    "prepare_onnxruntime_int8",
    "quantise_onnx",
]

CALIBRATION_ENV = "EFFBENCH_CALIBRATION"
MAX_IMAGES = 32  # calibration crops at most; MinMax ranges settle after a few images


def calibration_folders(value: str | None) -> tuple[str, ...]:
    """The folders named in ``value`` (``EFFBENCH_CALIBRATION``'s form: ``os.pathsep``-separated), for the
    commands that take the variable as their ``--calibration`` default."""
    return tuple(f for f in (value or "").split(os.pathsep) if f)


def calibration_images(folders: Sequence[str | Path]) -> list[np.ndarray]:
    """The uint8 RGB LR images of ``folders`` (at most :data:`MAX_IMAGES`); a :class:`UsageError` saying how to
    name them when no folder is given or the folders hold no image."""
    if not folders:
        raise UsageError(
            f"int8 needs calibration images: set {CALIBRATION_ENV} or --calibration to folders of LR images, "
            f"e.g. --calibration Set5/LR_bicubic/X4,Set14/LR_bicubic/X4"
        )
    paths = [p for f in folders for p in list_images(f)]
    if not paths:
        raise UsageError(f"no images in the calibration folders {', '.join(map(str, folders))}")
    return [read_image(p) for p in paths[:MAX_IMAGES]]


def _fit(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """The centre ``h`` x ``w`` crop of ``img``, mirrored out where the image is smaller."""
    ph, pw = max(0, h - img.shape[0]), max(0, w - img.shape[1])
    if ph or pw:
        img = np.pad(img, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), mode="symmetric")
    top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return img[top : top + h, left : left + w]


def calibration_batches(
    images: Sequence[np.ndarray], shape: tuple[int, ...], data_range: float
) -> list[np.ndarray]:
    """The calibration inputs: each image fitted to ``shape`` (1, 3, H, W) as float32 NCHW in ``data_range``."""
    _, _, h, w = shape
    return [
        np.ascontiguousarray(_fit(img, h, w).transpose(2, 0, 1)[None], dtype=np.float32)
        * (data_range / 255.0)
        for img in images
    ]


def quantise_onnx(onnx_bytes: bytes, batches: Sequence[np.ndarray]) -> bytes:
    """The ONNX model (input ``lr``) quantised statically in QDQ format, per-channel int8 weights and uint8
    activations, with MinMax ranges from ``batches``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._left = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(({"lr": b} for b in self._left), None)

    with tempfile.TemporaryDirectory(prefix="effbench-int8-") as tmp:
        raw, src, dst = Path(tmp) / "export.onnx", Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        raw.write_bytes(onnx_bytes)
        try:
            quant_pre_process(raw, src)  # shape inference and graph optimisation, as the quantiser asks
            quantize_static(
                src,
                dst,
                Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
            )
        except Exception as exc:
            raise ExportError(f"ONNX Runtime int8 quantisation failed: {type(exc).__name__}: {exc}") from exc
        return dst.read_bytes()


@register_quantisation("onnxruntime", "int8")
def prepare_onnxruntime_int8(
    model: nn.Module,
    example: torch.Tensor,
    data_range: float = 1.0,
    *,
    calibration: Sequence[str | Path] = (),
    images: Sequence[np.ndarray] | None = None,
) -> Prepared:
    """Export, calibrate on ``images`` (default: the LR images of the ``calibration`` folders,
    :func:`calibration_images`) scaled to the model's input range ``data_range``, and quantise."""
    ort = _ort()
    if example.device.type != "cpu":
        raise BackendUnavailable(
            "int8 under onnxruntime runs on the CPU execution provider here; use --device cpu"
        )
    if example.dtype != torch.float32:
        raise UsageError(f"int8 quantises the fp32 model; got a {str(example.dtype)[6:]} input")
    calib = list(images) if images is not None else calibration_images(calibration)
    sessions: dict[tuple[int, ...], Callable] = {}

    def build(x: torch.Tensor) -> tuple[Callable, int]:
        q = quantise_onnx(export_onnx(model, x), calibration_batches(calib, tuple(x.shape), data_range))
        return session_runner(_session(ort, q, x.device), x.device, (), x.dtype), len(q)

    (first, size), seconds = timed(lambda: build(example))
    sessions[tuple(example.shape)] = first

    def fn(x: torch.Tensor) -> torch.Tensor:
        run = sessions.get(tuple(x.shape))
        if run is None:
            run = sessions[tuple(x.shape)] = build(x)[0]
        return run(x)

    details: dict[str, Any] = {
        "provider": "CPUExecutionProvider",
        "opset": OPSET,
        "onnxruntime": ort.__version__,
        "quantisation": "static, QDQ, per-channel int8 weights, uint8 activations, MinMax calibration",
        "calibration_images": len(calib),
        "calibration_from": os.pathsep.join(map(str, calibration))
        if images is None
        else "images given by the caller",
    }
    return Prepared("onnxruntime", fn, export_seconds=seconds, artifact_bytes=size, details=details)
