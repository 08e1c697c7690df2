"""A model that samples in its forward (random routing, as some challenge entries do) gets the same predicted
memory on every prediction, and predicting leaves the caller's random numbers as they were."""

from __future__ import annotations

import torch
from torch import nn

from effbench.memory import predict_memory


class RandomRouting(nn.Module):
    """Keeps a random subset of 64 feature channels (how many depends on the draw: a data-dependent shape, so the
    prediction runs the model for real), then upsamples x4."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, 64, 3, padding=1)
        self.tail = nn.Conv2d(64, 48, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.head(x)
        keep = torch.nonzero(torch.rand(64) > 0.5).flatten()
        routed = f[:, keep] * 2.0
        f = f.index_add(1, keep, routed)
        return nn.functional.pixel_shuffle(self.tail(f), 4)


def test_a_sampling_forward_is_predicted_the_same_every_time() -> None:
    peaks = {predict_memory(RandomRouting(), (32, 32), scale=4).peak_bytes for _ in range(4)}
    assert len(peaks) == 1


def test_predicting_leaves_the_callers_random_numbers_as_they_were() -> None:
    model = RandomRouting()
    torch.manual_seed(7)
    expected = torch.rand(4)
    torch.manual_seed(7)
    predict_memory(model, (32, 32), scale=4)
    assert torch.equal(torch.rand(4), expected)
