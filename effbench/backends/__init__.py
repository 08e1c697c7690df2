"""Deployment backends: run a model the way it is shipped, and check it still computes what eager fp32 does.

A backend (``eager``, ``compile``, ``onnxruntime``, ``tensorrt``; :func:`backend_names`) prepares a model once per
cell with :func:`prepare`: a :class:`Prepared` callable on tensors, with the export or compile seconds and the
artifact's size (ONNX bytes) where there is one. :func:`check_equivalence` compares its output with eager fp32 on
a seeded input and raises :class:`CollapsedOutputError` (sweep status ``bad_output``) when it has collapsed.
A failing export names the ATen op and the module that ran it (:mod:`effbench.backends.diagnostics`).
Dtype ``int8`` is a backend's post-training quantisation on a calibration set (:func:`register_quantisation`;
``onnxruntime``: :mod:`effbench.backends.quantise`); :func:`model_dtype` says what the model runs in.
"""

from __future__ import annotations

from . import compiled, eager, ort, quantise, trt  # noqa: F401  (each registers its backend or quantisation)
from .equivalence import DEFAULT_THRESHOLD_DB, CollapsedOutputError, check_equivalence
from .registry import (
    Backend,
    BackendUnavailable,
    ExportError,
    Prepared,
    backend_names,
    dtype_names,
    get_backend,
    model_dtype,
    prepare,
    register_backend,
    register_quantisation,
)

__all__ = [
    "DEFAULT_THRESHOLD_DB",
    "Backend",
    "BackendUnavailable",
    "CollapsedOutputError",
    "ExportError",
    "Prepared",
    "backend_names",
    "check_equivalence",
    "dtype_names",
    "get_backend",
    "model_dtype",
    "prepare",
    "register_backend",
    "register_quantisation",
]
