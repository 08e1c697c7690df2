"""The peak of everything a block of code allocates, on real tensors: what ``torch.cuda.max_memory_allocated``
records over code that is not one forward pass (a model's constructor with the forwards it runs, warm-up loops
with autograd on, a checkpoint load).

:class:`LivePeak` is a dispatch mode over real tensors: every op output whose storage is new is an allocation
(rounded as the CUDA caching allocator rounds a block: :func:`~.allocator.round_size`), a storage is freed when
its last reference dies (a weak reference to the C++ storage, polled whenever an allocation would set a new
peak, so the peak is exact, and on exit), and the peak is the largest sum of live blocks. What autograd saves for a backward is alive while the graph holding it is, as
on a GPU. Tensors made outside the dispatcher (a checkpoint's unpickled storages) are not seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch._ops import OpOverload
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from .allocator import round_size

__all__ = ["LivePeak"]

_COLLECT_EVERY = 256  # allocations between polls for frees that cannot raise the peak (keeps the table small)


@dataclass
class _Live:
    ref: StorageWeakRef
    nbytes: int


class LivePeak(TorchDispatchMode):
    """``with LivePeak() as live: ...``; then ``live.peak_bytes`` (and ``live.peak_op``, the op that reached it).

    Only storages on ``device`` (default: the CPU, where a CPU host replays CUDA code) are counted; ``live_bytes``
    is what is still alive when read.
    """

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.device = torch.device(device)
        self._live: dict[int, _Live] = {}
        self.current_bytes = 0
        self.peak_bytes = 0
        self.peak_op = ""
        self.ops = 0
        self._since_collect = 0

    def _collect(self) -> None:
        self._since_collect = 0
        dead = [k for k, rec in self._live.items() if rec.ref.expired()]
        for k in dead:
            self.current_bytes -= self._live.pop(k).nbytes

    @property
    def live_bytes(self) -> int:
        self._collect()
        return self.current_bytes

    def __torch_dispatch__(
        self,
        func: OpOverload,
        types: tuple[type, ...],
        args: tuple[object, ...] = (),
        kwargs: dict[str, object] | None = None,
    ) -> object:
        out = func(*args, **(kwargs or {}))
        self.ops += 1
        for t in tree_leaves(out):
            if not isinstance(t, torch.Tensor) or t.device != self.device:
                continue
            st = t.untyped_storage()
            key = st._cdata
            rec = self._live.get(key)
            if rec is not None and not rec.ref.expired():
                continue  # a view, an in-place op or out=: nothing new
            nbytes = st.nbytes()
            if nbytes == 0:
                continue
            size = round_size(int(nbytes))
            self._live[key] = _Live(StorageWeakRef(st), size)
            self.current_bytes += size
            self._since_collect += 1
            # frees only matter when they would keep the peak lower: poll for them then (and now and again)
            if self.current_bytes > self.peak_bytes or self._since_collect >= _COLLECT_EVERY:
                self._collect()
            if self.current_bytes > self.peak_bytes:
                self.peak_bytes, self.peak_op = self.current_bytes, str(func)
        return out

    def __exit__(self, *exc: object) -> None:
        self._collect()
        return super().__exit__(*exc)
