"""Counting leaves the model exactly as it found it: parameters, buffers and plain tensor attributes on their
device, bit-identical, with their requires_grad and the training flag; a real forward works afterwards."""

from __future__ import annotations

import torch
from torch import nn

from effbench.counting import compare_conventions, profile


class _WithPlainMean(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.mean = torch.Tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1)  # neither parameter nor buffer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x - self.mean)) + self.mean


def _snapshot(model: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.device, bool, type]]:
    tensors = dict(model.named_parameters()) | dict(model.named_buffers()) | {"mean": model.mean}
    return {k: (t, t.detach().clone(), t.device, t.requires_grad, type(t)) for k, t in tensors.items()}


def test_profile_leaves_a_model_with_a_plain_tensor_attribute_untouched() -> None:
    torch.manual_seed(0)
    model = _WithPlainMean().eval()
    x = torch.rand(1, 3, 8, 8)
    expected = model(x)
    before = _snapshot(model)
    prof = profile(model, (8, 8), peak_memory=False)
    profs = compare_conventions(model, (16, 16))
    assert prof.convs == 1 and profs["ntire2022"].convs == 1
    after = _snapshot(model)
    assert after.keys() == before.keys()
    for k, (t, copy, device, grad, kind) in before.items():
        now = after[k]
        assert now[0] is t, k  # the very same tensor object
        assert (
            torch.equal(now[0].detach(), copy) and now[2] == device and now[3] == grad and now[4] is kind
        ), k
    assert not model.training
    assert torch.equal(model(x), expected)
