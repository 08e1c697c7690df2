"""Allocator models that turn a sequence of tensor allocations and frees into "allocated bytes".

Two models:

- :class:`PlainAllocator`: every block is the request rounded up to a multiple of 512 bytes (the CUDA caching
  allocator's ``kMinBlockSize``); allocated bytes are the sum of live blocks. This is what the CPU replay uses.
- :class:`CachingAllocator`: a model of PyTorch's native CUDA caching allocator (``c10/cuda/CUDACachingAllocator.cpp``)
  with its default configuration (no ``max_split_size_mb``, no ``roundup_power2_divisions``, no expandable
  segments, one stream):

  * requests are rounded to a multiple of 512 B (minimum 512 B);
  * requests of at most 1 MiB are served from the small pool, whose segments are 2 MiB; larger requests from the
    large pool, whose segments are 20 MiB for requests under 10 MiB and the request rounded up to 2 MiB otherwise;
  * a free block is chosen by best fit (smallest size that fits, then lowest address);
  * a block is split when the remainder is >= 512 B (small pool) or > 1 MiB (large pool); when it is not split the
    whole block counts as allocated, which is why ``max_memory_allocated`` can exceed the sum of tensor sizes;
  * freed blocks go back to their pool and merge with free neighbours of the same segment; nothing is returned to
    the device during a forward pass (no ``empty_cache``).

  Segment addresses are assigned in increasing order; they only break ties between equal-sized free blocks.

  With ``record=True`` it also keeps what ``torch.cuda.memory._record_memory_history`` records: every
  ``segment_alloc``, ``alloc``, ``free_requested`` and ``free_completed`` with its address, size (the request, as
  the native allocator's trace has it) and the ``context`` its driver set, and :meth:`CachingAllocator.state` gives
  the segments and their blocks, as ``torch.cuda.memory._snapshot`` does (see :mod:`effbench.memory.snapshot`).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

#: what an allocator's driver attaches to its events and allocated blocks (the snapshot's frames), or None
Context = Sequence[Mapping[str, object]] | None

MIN_BLOCK = 512  # kMinBlockSize
SMALL_SIZE = 1 << 20  # kSmallSize: largest request served from the small pool
SMALL_BUFFER = 2 << 20  # kSmallBuffer: small-pool segment size
LARGE_BUFFER = 20 << 20  # kLargeBuffer: segment size for requests in (1 MiB, 10 MiB)
MIN_LARGE_ALLOC = 10 << 20  # kMinLargeAlloc
ROUND_LARGE = 2 << 20  # kRoundLarge


def round_size(nbytes: int) -> int:
    """The block size the allocator gives a request: a multiple of 512 bytes, at least 512."""
    if nbytes < MIN_BLOCK:
        return MIN_BLOCK
    return MIN_BLOCK * ((nbytes + MIN_BLOCK - 1) // MIN_BLOCK)


def segment_size(size: int) -> int:
    """Size of the new segment (``cudaMalloc``) opened for a rounded request that no cached block fits."""
    if size <= SMALL_SIZE:
        return SMALL_BUFFER
    if size < MIN_LARGE_ALLOC:
        return LARGE_BUFFER
    return ROUND_LARGE * ((size + ROUND_LARGE - 1) // ROUND_LARGE)


class PlainAllocator:
    """Sum of live blocks, each rounded up to 512 bytes."""

    def __init__(self) -> None:
        self.allocated = 0
        self.peak = 0
        self._blocks: dict[int, int] = {}
        self._next = 0

    def malloc(self, nbytes: int) -> int:
        size = round_size(nbytes)
        handle = self._next
        self._next += 1
        self._blocks[handle] = size
        self.allocated += size
        self.peak = max(self.peak, self.allocated)
        return handle

    def free(self, handle: int) -> None:
        self.allocated -= self._blocks.pop(handle)

    def reset_peak(self) -> None:
        self.peak = self.allocated

    @property
    def reserved(self) -> int:
        """Without a cache every block goes back on free: the most ever held is the peak."""
        return self.peak


@dataclass(eq=False)
class _Block:
    addr: int
    size: int
    small: bool
    allocated: bool = False
    requested: int = 0  # the request the block serves while allocated
    context: Context = None  # the allocator's context when the block was last allocated
    prev: _Block | None = field(default=None, repr=False)
    next: _Block | None = field(default=None, repr=False)


@dataclass(frozen=True)
class AllocatorEvent:
    """One entry of the allocator's trace (the native ``TraceEntry``): ``size`` is the requested size, or the
    segment's size for ``segment_alloc``."""

    action: str  # "segment_alloc", "alloc", "free_requested" or "free_completed"
    addr: int
    size: int
    context: Context


@dataclass(frozen=True)
class BlockState:
    """A block of a segment: allocated (with the request it serves and its allocation context) or free."""

    addr: int
    size: int
    requested: int
    allocated: bool
    context: Context


@dataclass(frozen=True)
class SegmentState:
    """One segment (one ``cudaMalloc``) and its blocks in address order."""

    addr: int
    size: int
    small: bool
    context: Context
    blocks: tuple[BlockState, ...]


class CachingAllocator:
    """Simulation of the native CUDA caching allocator's block bookkeeping (see the module docstring).

    ``record=True`` keeps the trace in :attr:`history`; :attr:`context` is stored with every event and allocated
    block (its driver sets it, e.g. to the running op).
    """

    def __init__(self, record: bool = False) -> None:
        self.allocated = 0
        self.peak = 0
        self.reserved = 0
        self.requested = 0  # the sum of the requests of allocated blocks (memory_stats' requested_bytes)
        self.requested_peak = 0
        self.context: Context = None
        self.history: list[AllocatorEvent] | None = [] if record else None
        self._segments: list[tuple[_Block, int, Context]] = []  # first block, size, context of the cudaMalloc
        self._pools: dict[bool, list[tuple[int, int, _Block]]] = {
            True: [],
            False: [],
        }  # small? -> sorted free
        self._live: dict[int, _Block] = {}
        self._next_handle = 0
        self._next_addr = 1 << 32

    def malloc(self, nbytes: int) -> int:
        size = round_size(nbytes)
        small = size <= SMALL_SIZE
        pool = self._pools[small]
        i = bisect.bisect_left(pool, (size, -1))
        if i < len(pool):
            block = pool.pop(i)[2]
        else:
            seg = segment_size(size)
            block = _Block(self._next_addr, seg, small)
            self._next_addr += seg + SMALL_BUFFER  # a gap: segments never merge
            self.reserved += seg
            self._segments.append((block, seg, self.context))
            self._record("segment_alloc", block.addr, seg)
        remaining = block.size - size
        if (remaining >= MIN_BLOCK) if small else (remaining > SMALL_SIZE):
            rest = _Block(block.addr + size, remaining, small, prev=block, next=block.next)
            if block.next is not None:
                block.next.prev = rest
            block.next = rest
            block.size = size
            bisect.insort(pool, (rest.size, rest.addr, rest))
        block.allocated = True
        block.requested, block.context = nbytes, self.context
        self.allocated += block.size
        self.peak = max(self.peak, self.allocated)
        self.requested += nbytes
        self.requested_peak = max(self.requested_peak, self.requested)
        self._record("alloc", block.addr, nbytes)
        handle = self._next_handle
        self._next_handle += 1
        self._live[handle] = block
        return handle

    def _unpool(self, block: _Block) -> None:
        pool = self._pools[block.small]
        i = bisect.bisect_left(pool, (block.size, block.addr))
        assert pool[i][2] is block
        pool.pop(i)

    def free(self, handle: int) -> None:
        block = self._live.pop(handle)
        self.allocated -= block.size
        self.requested -= block.requested
        self._record("free_requested", block.addr, block.requested)
        self._record("free_completed", block.addr, block.requested)
        block.allocated = False
        prev, nxt = block.prev, block.next
        if prev is not None and not prev.allocated:
            self._unpool(prev)
            prev.size += block.size
            prev.next = nxt
            if nxt is not None:
                nxt.prev = prev
            block = prev
        if nxt is not None and not nxt.allocated:
            self._unpool(nxt)
            block.size += nxt.size
            block.next = nxt.next
            if nxt.next is not None:
                nxt.next.prev = block
        bisect.insort(self._pools[block.small], (block.size, block.addr, block))

    def reset_peak(self) -> None:
        self.peak = self.allocated
        self.requested_peak = self.requested

    def _record(self, action: str, addr: int, size: int) -> None:
        if self.history is not None:
            self.history.append(AllocatorEvent(action, addr, size, self.context))

    def state(self) -> list[SegmentState]:
        """The segments in address order with their blocks, as they are now."""
        out = []
        for first, size, context in self._segments:
            blocks = []
            b: _Block | None = first
            while b is not None:
                req = b.requested if b.allocated else 0
                blocks.append(
                    BlockState(b.addr, b.size, req, b.allocated, b.context if b.allocated else None)
                )
                b = b.next
            out.append(SegmentState(first.addr, size, first.small, context, tuple(blocks)))
        return out


def make_allocator(device_model: str) -> PlainAllocator | CachingAllocator:
    """``"plain"`` -> :class:`PlainAllocator`, ``"cuda"`` -> :class:`CachingAllocator`."""
    if device_model == "plain":
        return PlainAllocator()
    if device_model == "cuda":
        return CachingAllocator()
    from ..base.errors import UsageError

    raise UsageError(f"unknown device model {device_model!r}; expected 'cuda' or 'plain'")
