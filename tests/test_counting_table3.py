"""The paper's Table 3 Mult-Adds (an HR output of 1280x720, so an input of 1280/s x 720/s) within 1% for every zoo
model and scale. They are multiply-accumulates of the convolutions: effbench's `macs` under the default `full`
convention (the same number as `fvcore` for these all-module conv nets). For x3, 1280/3 is not an integer: an
input of 427x240 (rounded to nearest) reproduces the IMDN, LatticeNet and EDSR-baseline rows best, 426x240
(floored) the FMEN and RFDN rows; both are within 1% everywhere, and this test uses 427."""

from __future__ import annotations

import pytest

import effbench
from effbench.counting import profile

TABLE3_GMACS = {
    "imdn": {2: 158.8, 3: 71.5, 4: 40.9},
    "latticenet": {2: 169.5, 3: 76.3, 4: 43.6},
    "rfdn": {2: 123.0, 3: 55.4, 4: 31.6},
    "edsr_baseline": {2: 316.2, 3: 160.4, 4: 114.2},
    "fmen": {2: 172.0, 3: 77.2, 4: 44.2},
}


def hr720p_input(scale: int) -> tuple[int, int]:
    return round(720 / scale), round(1280 / scale)


@pytest.mark.parametrize("name", sorted(TABLE3_GMACS))
def test_table3_mult_adds_within_one_percent(name: str) -> None:
    if name not in effbench.list_models():
        pytest.skip(f"{name} is not in the zoo yet")
    for scale, gmacs in TABLE3_GMACS[name].items():
        p = profile(
            effbench.create_model(name, scale=scale), hr720p_input(scale), scale=scale, peak_memory=False
        )
        assert p.output_shape[2:] == (720, 1281 if scale == 3 else 1280)
        assert p.macs / 1e9 == pytest.approx(gmacs, rel=0.01), (name, scale, p.macs)
