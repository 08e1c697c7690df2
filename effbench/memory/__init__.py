"""Peak-memory prediction and analysis (the FMEN paper's Sec. 3.1 for any model).

:func:`predict_memory` replays one forward pass on fake tensors and predicts ``torch.cuda.max_memory_allocated``;
:func:`replay_memory_cpu` does the same tracking on real CPU tensors (the check of the fake replay);
:func:`measure_cuda_memory` measures it on a GPU, side by side with the prediction;
:func:`predict_snapshot` writes the prediction as a CUDA memory snapshot for PyTorch's viewer
(pytorch.org/memory_viz), :func:`measured_snapshot` records one on a GPU.
"""

from __future__ import annotations

from .allocator import CachingAllocator, PlainAllocator, round_size
from .cuda import measure_cuda_memory
from .plan import MemoryPlan, plan_memory
from .predict import predict_memory, replay_memory_cpu
from .report import LiveTensor, MemoryReport
from .simulate import analyse
from .snapshot import PredictedSnapshot, measured_snapshot, predict_snapshot, write_snapshot
from .structures import FusionBlock, PlainStack, fusion_block, plain_stack

__all__ = [
    "CachingAllocator",
    "FusionBlock",
    "LiveTensor",
    "MemoryPlan",
    "MemoryReport",
    "PlainAllocator",
    "PlainStack",
    "PredictedSnapshot",
    "analyse",
    "fusion_block",
    "measure_cuda_memory",
    "measured_snapshot",
    "plain_stack",
    "plan_memory",
    "predict_memory",
    "predict_snapshot",
    "replay_memory_cpu",
    "round_size",
    "write_snapshot",
]
