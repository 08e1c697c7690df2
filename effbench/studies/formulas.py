"""The paper's memory formulas checked on bare structures: the fusion topology's peak (Sec. 3.1, Fig. 2) and one
trunk block's (Sec. 3.3), predicted by :func:`effbench.memory.predict_memory` with the input freed after use,
live features only (``device_model="plain"``)."""

from __future__ import annotations

from typing import Any

from .definitions import Study

__all__ = ["block_memory", "fusion_formula"]


def fusion_formula(study: Study, size: tuple[int, int]) -> list[dict[str, Any]]:
    """Predicted peak of each bare plain / fusion structure (C-channel input freed after use, live features only,
    ``device_model="plain"``) against the paper's 2 x C x H x W and 2 x N x C x H x W."""
    from ..memory import fusion_block, predict_memory
    from .variants import PlainFuse

    rows = []
    h, w = size
    for v in study.variants:
        if not v.spec.endswith(("plain_probe", "fusion_probe")):
            continue
        n, c = int(v.kwargs["n"]), int(v.kwargs.get("c", 64))
        fusion = v.spec.endswith("fusion_probe")
        block = fusion_block(n - 1, c) if fusion else PlainFuse(n, c).eval()
        r = predict_memory(block, (h, w), channels=c, device_model="plain", donate_input=True)
        features = r.peak_bytes - int(r.decomposition["M_net"])
        fmap = c * h * w * 4
        formula = (2 * n if fusion else 2) * fmap
        rows.append(
            {
                "variant": v.name,
                "n": n,
                "c": c,
                "topology": "fusion" if fusion else "plain",
                "params": sum(p.numel() for p in block.parameters()),
                "peak_op": r.peak_op,
                "peak_module": r.peak_module,
                "predicted_feature_bytes": features,
                "formula_bytes": formula,
                "predicted_x": features / fmap,
                "formula_x": formula / fmap,
                "exact": features == formula,
            }
        )
    return rows


def block_memory(size: tuple[int, int], c: int = 64) -> list[dict[str, Any]]:
    """Predicted peak of one trunk block alone (C-channel input freed after use, live features only, 512-byte
    blocks): the paper's Sec. 3.3 claim that RB's skip keeps one extra C x H x W alive, which PB and the deploy-form
    ERB do not; the train-form ERB is listed for contrast (it is never what runs at inference)."""
    from ..memory import predict_memory
    from ..zoo.models.fmen import make_block

    h, w = size
    fmap = c * h * w * 4
    rows = []
    for label, kind, deploy, claim in (
        ("RB", "rb", True, 3),
        ("PB", "pb", True, 2),
        ("ERB (deploy)", "erb", True, 2),
        ("ERB (train form)", "erb", False, None),
    ):
        block = make_block(kind, c, deploy=deploy).eval()
        r = predict_memory(block, (h, w), channels=c, device_model="plain", donate_input=True)
        features = r.peak_bytes - int(r.decomposition["M_net"])
        rows.append(
            {
                "block": label,
                "c": c,
                "peak_op": r.peak_op,
                "peak_module": r.peak_module,
                "predicted_feature_bytes": features,
                "predicted_x": features / fmap,
                "paper_x": claim,
                "exact": None if claim is None else features == claim * fmap,
            }
        )
    return rows
