"""Challenge manifests (TOML in, checked, TOML out) and drafting one from an organisers' repository."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch

from effbench.base.errors import UsageError
from effbench.challenge.manifest import Challenge, Entry, dump_manifest, load_manifest
from effbench.zoo.spec import resolve_model

NET = textwrap.dedent(
    """
    from torch import nn

    class Net(nn.Module):
        def __init__(self, cin, cout, upscale=4, feats=4):
            super().__init__()
            self.body = nn.Conv2d(cin, feats, 3, padding=1)
            self.tail = nn.Sequential(nn.Conv2d(feats, cout * upscale**2, 3, padding=1), nn.PixelShuffle(upscale))

        def forward(self, x):
            return self.tail(self.body(x))
    """
)

MANIFEST = textwrap.dedent(
    """
    [challenge]
    name = "Test ESR"
    year = 2024
    root = "repo"
    baseline = "00_base"

    [[entry]]
    name = "00_base"
    model = "models/team00_net.py:Net"
    args = [3, 3]
    kwargs = { feats = 6 }
    weights = "model_zoo/team00.pth"
    weights_key = "params_ema"
    data_range = 255

    [[entry]]
    name = "01_loose"
    model = "models/team00_net.py:Net"
    args = [3, 3]
    kwargs = { feats = 6 }
    weights = "model_zoo/team00.pth"
    weights_key = "params_ema"
    strict = false
    data_range = 1.0
    tile = 64

    [[entry]]
    name = "02_gone"
    model = "models/team02_gone.py:Gone"
    weights = "model_zoo/team02.pth"
    skip = "checkpoint model_zoo/team02.pth not found"
    """
)


@pytest.fixture()
def manifest(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    (repo / "model_zoo").mkdir()
    (repo / "models" / "team00_net.py").write_text(NET)
    namespace: dict = {}
    exec(compile(NET, "net", "exec"), namespace)
    torch.save(
        {"params_ema": namespace["Net"](3, 3, feats=6).state_dict()}, repo / "model_zoo" / "team00.pth"
    )
    path = tmp_path / "challenge.toml"
    path.write_text(MANIFEST)
    return path


def test_a_manifest_loads_with_absolute_paths_and_builds_its_entries(manifest: Path) -> None:
    c = load_manifest(manifest)
    repo = manifest.parent / "repo"
    assert (c.name, c.year, c.root, c.baseline, c.scale) == ("Test ESR", 2024, str(repo), "00_base", 4)
    base = c.entry("00_base")
    assert base.model == f"{repo}/models/team00_net.py:Net" and base.weights == f"{repo}/model_zoo/team00.pth"
    assert (base.args, base.kwargs, base.data_range, base.strict) == ((3, 3), {"feats": 6}, 255.0, True)
    resolved = resolve_model(base.spec())
    assert resolved.data_range == 255.0 and resolved.model(torch.rand(1, 3, 4, 4)).shape == (1, 3, 16, 16)
    loose = resolve_model(c.entry("01_loose").spec())
    assert loose.data_range == 1.0 and c.entry("01_loose").tile == 64
    assert loose.loose_load is not None and loose.loose_load.missing == loose.loose_load.unexpected == ()
    assert loose.identity.key != resolved.identity.key  # strict=false makes it another model
    assert c.entry("02_gone").skip == "checkpoint model_zoo/team02.pth not found"


def test_dump_round_trips_through_load(manifest: Path, tmp_path: Path) -> None:
    c = load_manifest(manifest)
    text = dump_manifest(c)
    assert (
        'root = "repo"' in text and 'model = "models/team00_net.py:Net"' in text and "strict = false" in text
    )
    again = tmp_path / "again.toml"
    again.write_text(text)
    assert load_manifest(again) == Challenge(**{**c.__dict__, "path": str(again)})


def test_dump_writes_any_json_value_and_an_absolute_root_when_drafted(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(NET)
    odd = {"a key": [1, 2.5, True, 'q"uote\\\n\x7f'], "nested": {"x": []}, "big": 1e20, "e": {}}
    c = Challenge(
        "Odd",
        2022,
        str(tmp_path),
        (Entry("net", f"{tmp_path}/m.py:Net", args=((2, 2),), kwargs=odd, root=str(tmp_path)),),
    )
    out = tmp_path / "elsewhere" / "m.toml"
    out.parent.mkdir()
    out.write_text(dump_manifest(c))
    back = load_manifest(out)
    assert back.root == str(tmp_path) and back.entries[0].kwargs == odd and back.entries[0].args == ([2, 2],)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("year = 2024", "year = 2019"), r"\[challenge\] year 2019 has no rules; known years: 2022, 2023"),
        (("year = 2024", 'year = "2024"'), r"\[challenge\]: year must be an integer"),
        (('baseline = "00_base"', 'baseline = "99"'), r"baseline '99' is not an entry name"),
        (('name = "01_loose"', 'name = "00_base"'), r"duplicate entry name '00_base'"),
        (("tile = 64", "tile = 0"), r"entry 2 \('01_loose'\): tile must be positive"),
        (("strict = false", 'strict = "no"'), r"entry 2 \('01_loose'\): strict must be true or false"),
        (("tile = 64", "tiles = 64"), r"entry 2 \('01_loose'\): unknown key tiles"),
        (("args = [3, 3]\n", "args = 3\n"), r"entry 1 \('00_base'\): args must be an array"),
        (('root = "repo"', 'root = "nowhere"'), r"\[challenge\] root is not a folder: .*nowhere"),
        (
            ('model_zoo/team00.pth"\nweights_key', 'model_zoo/none.pth"\nweights_key'),
            r"weights file not found",
        ),
        (
            ('"models/team00_net.py:Net"', '"models/none.py:Net"'),
            r"entry 1 \('00_base'\): model file not found",
        ),
        (('"models/team00_net.py:Net"', '":Net"'), r"entry 1 \('00_base'\): model must be a zoo name"),
        (('[[entry]]\nname = "02_gone"', '[[entry]]\nnam = "02_gone"'), r"entry 3: unknown key nam"),
        (("[challenge]", "[challenges]"), r"unknown top-level key challenges"),
        (('name = "Test ESR"', "name = Test"), r"is not valid TOML"),
    ],
)
def test_every_problem_names_the_file_the_entry_and_the_key(manifest: Path, edit, message) -> None:
    old, new = edit
    assert old in MANIFEST
    manifest.write_text(MANIFEST.replace(old, new, 1))
    with pytest.raises(UsageError, match=message) as err:
        load_manifest(manifest)
    assert str(manifest) in str(err.value)


def test_to_dict_of_an_entry_spec_is_json(manifest: Path) -> None:
    spec = load_manifest(manifest).entry("01_loose").spec()
    assert json.loads(json.dumps(spec.to_dict()))["strict"] is False
