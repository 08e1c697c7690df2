"""The signature of a convolution: what cuDNN's choice of algorithm (and so its workspace) depends on, apart from
the input size. The storage tracker records one per convolution call; GPU profiles are keyed by it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..base.errors import UsageError


@dataclass(frozen=True)
class ConvSignature:
    """What cuDNN's choice of algorithm (and so its workspace) depends on, apart from the input size."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    in_channels: int
    out_channels: int
    transposed: bool
    dtype: str  # "float32", "float16", "bfloat16"
    layout: str  # "contiguous" or "channels_last"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ConvSignature:
        try:
            return cls(
                tuple(d["kernel"]),
                tuple(d["stride"]),
                tuple(d["padding"]),
                tuple(d["dilation"]),
                int(d["groups"]),
                int(d["in_channels"]),
                int(d["out_channels"]),
                bool(d["transposed"]),
                str(d["dtype"]),
                str(d["layout"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"bad convolution signature in a GPU profile: {dict(d)!r} ({exc})") from None

    def sort_key(self) -> tuple[str, str, tuple[int, ...], int, int, int, tuple[int, ...]]:
        """The order profiles list their signatures in."""
        return (
            self.dtype,
            self.layout,
            self.kernel,
            self.in_channels,
            self.out_channels,
            self.groups,
            self.stride,
        )

    def describe(self) -> str:
        k = "x".join(map(str, self.kernel))
        s = "x".join(map(str, self.stride))
        return (
            f"{'deconv' if self.transposed else 'conv'} {k}/s{s} {self.in_channels}->{self.out_channels}"
            f" g{self.groups} {self.dtype} {self.layout}"
        )


def layout_of(t: torch.Tensor) -> str:
    """``"channels_last"`` for a 4-D tensor in channels-last order that is not also contiguous, else ``"contiguous"``."""
    if t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last):
        return "channels_last"
    return "contiguous"


def conv_call(args: Sequence[Any]) -> tuple[ConvSignature, tuple[int, ...]]:
    """The signature and input shape of one ``aten.convolution.default`` call from its arguments."""
    x, weight, _bias, stride, padding, dilation, transposed, _out_pad, groups = args[:9]
    out_channels = weight.shape[1] * groups if transposed else weight.shape[0]
    sig = ConvSignature(
        tuple(int(k) for k in weight.shape[2:]),
        tuple(int(v) for v in stride),
        tuple(int(v) for v in padding),
        tuple(int(v) for v in dilation),
        int(groups),
        int(x.shape[1]),
        int(out_channels),
        bool(transposed),
        str(x.dtype).replace("torch.", ""),
        layout_of(x),
    )
    return sig, tuple(int(d) for d in x.shape)
