"""The two structures of the paper's Fig. 2, for the memory analysis and the studies.

- :func:`plain_stack`: plain topology, ``n`` 3x3 convolutions C -> C, each followed by an in-place ReLU.
- :func:`fusion_block`: fusion structure, ``n`` 3x3 convolutions in a chain whose input and every output are kept
  and concatenated (``n + 1`` features), then a 1x1 convolution back to C channels; in-place ReLUs after the 3x3s.

With the input freed after its last use (a block inside a network), the paper predicts a peak of 2 x C x H x W for
the plain stack, 3x at the second conv of the fusion block and 2 (n + 1) x at its concatenation (6x for n = 2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from .report import MemoryReport


class PlainStack(nn.Module):
    """Fig. 2(a): a plain stack of 3x3 convolutions with in-place ReLU; the feature size never changes."""

    def __init__(self, n: int = 4, c: int = 64) -> None:
        super().__init__()
        if n < 1 or c < 1:
            raise ValueError(f"plain_stack needs n >= 1 and c >= 1, got n={n}, c={c}")
        self.convs = nn.ModuleList(nn.Conv2d(c, c, 3, padding=1) for _ in range(n))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = self.act(conv(x))
        return x


class FusionBlock(nn.Module):
    """Fig. 2(b): a chain of 3x3 convolutions whose input and outputs are concatenated, then a 1x1 conv."""

    def __init__(self, n: int = 2, c: int = 64) -> None:
        super().__init__()
        if n < 1 or c < 1:
            raise ValueError(f"fusion_block needs n >= 1 and c >= 1, got n={n}, c={c}")
        self.convs = nn.ModuleList(nn.Conv2d(c, c, 3, padding=1) for _ in range(n))
        self.act = nn.ReLU(inplace=True)
        self.fuse = nn.Conv2d((n + 1) * c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for conv in self.convs:
            feats.append(self.act(conv(feats[-1])))
        fused = torch.cat(feats, dim=1)
        del feats  # the features are freed once concatenated, as the paper assumes
        return self.fuse(fused)


def plain_stack(n: int = 4, c: int = 64) -> PlainStack:
    """Fig. 2(a) with ``n`` convolutions of ``c`` channels (takes a C-channel input)."""
    return PlainStack(n, c).eval()


def fusion_block(n: int = 2, c: int = 64) -> FusionBlock:
    """Fig. 2(b) with ``n`` chained convolutions and ``n + 1`` concatenated features (takes a C-channel input)."""
    return FusionBlock(n, c).eval()


def fig2_demo(
    c: int = 64,
    size: tuple[int, int] = (256, 256),
    *,
    n_plain: int = 4,
    n_fusion: int = 2,
    device_model: str = "plain",
) -> list[dict[str, object]]:
    """The peaks of Fig. 2 as the predictor sees them, one row per (structure, node) in units of C x H x W.

    Every row gives ``features_x`` (live feature memory at that node, parameters excluded), the op index and module.
    The structures take a C-channel input of ``size``; the input is freed after its last use (the paper's view of a
    block inside a network), except in the ``"plain stack, caller keeps input"`` row (the NTIRE protocol).
    """
    from .predict import predict_memory

    rows: list[dict[str, object]] = []

    def features_x(r: MemoryReport, index: int) -> float:
        live = r.timeline[index]["allocated_bytes"]
        return (live - r.decomposition["M_net"]) / r.feature_bytes

    def convs(r: MemoryReport) -> list[dict[str, object]]:
        return [e for e in r.timeline if e["op"].startswith("aten.convolution")]

    for donate, label in ((True, "plain stack (Fig. 2a)"), (False, "plain stack, caller keeps input")):
        r = predict_memory(
            plain_stack(n_plain, c), size, channels=c, device_model=device_model, donate_input=donate
        )
        rows.append(
            {
                "structure": label,
                "node": f"peak ({r.peak_module})",
                "op_index": r.peak_op_index,
                "features_x": features_x(r, r.peak_op_index),
                "peak_bytes": r.peak_bytes,
                "sentence": r.sentence(),
            }
        )
    r = predict_memory(
        fusion_block(n_fusion, c), size, channels=c, device_model=device_model, donate_input=True
    )
    conv_nodes = convs(r)
    for k, e in enumerate(conv_nodes[:n_fusion]):
        rows.append(
            {
                "structure": "fusion block (Fig. 2b)",
                "node": f"3x3 conv {k + 1} ({e['module']})",
                "op_index": e["index"],
                "features_x": features_x(r, int(e["index"])),  # type: ignore[arg-type]
                "peak_bytes": None,
                "sentence": "",
            }
        )
    cat = next(e for e in r.timeline if e["op"].startswith("aten.cat"))
    rows.append(
        {
            "structure": "fusion block (Fig. 2b)",
            "node": f"concat of {n_fusion + 1} features",
            "op_index": cat["index"],
            "features_x": features_x(r, int(cat["index"])),  # type: ignore[arg-type]
            "peak_bytes": r.peak_bytes,
            "sentence": r.sentence(),
        }
    )
    return rows
