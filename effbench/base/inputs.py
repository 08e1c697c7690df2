"""What a measurement is asked to run on: input sizes, dtypes, devices and CPU threads, each checked in one place.

Every measurement package and every command takes these from here, so a bad size, dtype or device gets the same
:class:`~effbench.base.errors.UsageError` wherever it is given.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch

from .errors import UsageError

__all__ = [
    "DTYPES",
    "check_size",
    "num_threads",
    "parse_bytes",
    "parse_size",
    "resolve_device",
    "resolve_dtype",
]

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def _whole(v: object) -> bool:
    """An integer value (int, numpy integer, 16.0), not a bool or a fraction."""
    if isinstance(v, bool):
        return False
    return isinstance(v, int) or bool(getattr(v, "is_integer", lambda: False)())


def check_size(input_size: int | Sequence[int], *, batch: int = 1, channels: int = 3) -> tuple[int, int]:
    """``(H, W)`` or a square side -> ``(H, W)`` as ints; every one of height, width, batch, channels positive."""
    if isinstance(input_size, int) and not isinstance(input_size, bool):
        input_size = (input_size, input_size)
    bad = UsageError(f"input size must be (H, W) or an int, got {input_size!r}")
    if isinstance(input_size, (str, bytes)):
        raise bad  # "16" would unpack as (1, 6); parse text with parse_size
    try:
        h, w = input_size
    except (TypeError, ValueError):
        raise bad from None
    if not (_whole(h) and _whole(w)):
        raise bad  # 16.5 would be truncated
    h, w = int(h), int(w)
    for label, v in (("height", h), ("width", w), ("batch", batch), ("channels", channels)):
        if int(v) <= 0:
            raise UsageError(f"{label} must be positive, got {v}")
    return h, w


def parse_size(text: str) -> tuple[int, int]:
    """``"256x256"`` or ``"256"`` (a square) -> ``(H, W)``; a UsageError naming the text otherwise."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        if len(parts) not in (1, 2):
            raise ValueError
        size = [int(p) for p in parts]
    except ValueError:
        raise UsageError(f"bad size {text!r}: expected HxW, e.g. 256x256") from None
    try:
        return check_size(size[0] if len(size) == 1 else size)
    except UsageError as exc:
        raise UsageError(f"bad size {text!r}: {exc}") from None


_BYTE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_bytes(text: str | int) -> int:
    """A memory amount -> bytes: ``"8GiB"``, ``"512MiB"``, ``"8e9"``, ``"1.5 GB"``, ``"4096"`` or an int.

    Binary units (KiB, MiB, GiB, TiB) are powers of 1024, decimal ones (kB, MB, GB, TB) powers of 1000, case
    ignored; the result is rounded down to a whole byte and must be positive.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        value: float = text
    elif isinstance(text, str):
        body = text.strip().replace("_", "")
        number = body.rstrip("kKmMgGtTiIbB ")
        unit = body[len(number) :].strip().lower()
        if unit not in _BYTE_UNITS:
            raise UsageError(
                f"bad memory amount {text!r}: unknown unit {unit!r} (use B, KiB, MiB, GiB, kB, MB, GB)"
            )
        try:
            value = float(number) * _BYTE_UNITS[unit]
        except ValueError:
            raise UsageError(f"bad memory amount {text!r}: expected a number and a unit, e.g. 8GiB") from None
    else:
        raise UsageError(f"bad memory amount {text!r}: expected text like 8GiB or an int")
    if not value >= 1 or value == float("inf"):
        raise UsageError(f"bad memory amount {text!r}: must be at least one byte")
    return int(value)


def resolve_dtype(name: str) -> torch.dtype:
    """``"fp32"``, ``"fp16"`` or ``"bf16"`` -> the torch dtype."""
    try:
        return DTYPES[name]
    except (KeyError, TypeError):
        raise UsageError(f"unknown dtype {name!r}: use {', '.join(DTYPES)}") from None


def resolve_device(device: str | torch.device) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when present) -> a usable torch.device."""
    if isinstance(device, str) and device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise UsageError(f"unknown device {device!r}: use cpu, cuda, cuda:N or auto") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("device 'cuda' requested but CUDA is not available here (use --device cpu)")
    if dev.type not in ("cpu", "cuda"):
        raise UsageError(f"unsupported device {dev.type!r}: use cpu or cuda")
    return dev


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` CPU threads (``None``: unchanged), restoring the previous count after."""
    if n is None:
        yield
        return
    if n < 1:
        raise UsageError(f"threads must be >= 1, got {n}")
    prev = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)
