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
            (
                'weights_key = "params_ema"\ndata_range = 255',
                'weights_key = "params_ema"\nafter_load = [{ cal = "x" }]',
            ),
            r"entry 1 \('00_base'\): an after-load call is a table with a 'call' key",
        ),
        (
            ('weights_key = "params_ema"\ndata_range = 255', "weights_key = 3"),
            r"entry 1 \('00_base'\): weights_key must be a string or an array of strings",
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


# --- drafting from an organisers' repository -------------------------------------------------------------------------

#: from /work/scratch/official2024.jsonl (the organisers' own tools run over the 2024 repository): the entries
#: whose select_model gives data_range 255; every other entry that builds there has 1.0
OFFICIAL_255 = {"00_RLFN_baseline", "13_RLFN_B", "17_ASR_Prune", "21_SlimRLFN", "25_EERN", "30_RFDN"}
OFFICIAL_1 = {
    *(
        "01_PFDN_Lite",
        "03_LKFN",
        "04_RCN",
        "05_RLFN_mogai",
        "10_SMRN",
        "11_EFQN",
        "15_EMaxGMan",
        "16_LightRLFN",
    ),
    *("22_GFMN", "23_SAFMNPP", "26_RDEN", "28_MSN", "29_R2Net", "31_AGDN", "33_IFADNet", "41_HARN"),
    *("42_DepthRLFN", "43_EGFMN", "44_LSANet", "45_VRTDIP", "46_ERRN"),
}


@pytest.mark.shared
def test_draft_of_the_2024_organisers_repository(shared_dir: Path, tmp_path: Path) -> None:
    from effbench.challenge.draft import draft_manifest

    repo = shared_dir / "challenges" / "ntire2024"
    if not (repo / "test_demo.py").is_file():
        pytest.skip(f"no NTIRE 2024 repository at {repo}")
    draft = draft_manifest(repo, 2024)
    c = draft.challenge
    assert len(c.entries) == 35 and c.baseline == "00_RLFN_baseline" and c.root == str(repo.resolve())
    ranges = {e.name: e.data_range for e in c.entries}
    assert {n for n, r in ranges.items() if r == 255.0} >= OFFICIAL_255
    assert all(ranges[n] == 1.0 for n in OFFICIAL_1)
    span = c.entry("38_SPAN")
    assert span.model.endswith("models/team38_SPAN.py:SPAN30") and span.args == (3, 3)
    assert span.kwargs == {"upscale": 4, "feature_channels": 28} and span.strict is False
    assert (c.entry("23_SAFMNPP").weights_key, c.entry("22_GFMN").weights_key) == ("params_ema", "params")
    assert c.entry("34_craft").weights_key == (
        "params_ema",
        "params",
    )  # chosen at run time, in the harness's order
    # a missing checkpoint skips nothing: static and memory need no weights
    srgan = c.entry("48_EfficientSRGAN")
    assert srgan.skip is None and srgan.weights_missing
    assert any(
        n.startswith("48_EfficientSRGAN (model_id 48, test_demo.py line ")
        and "team48_EfficientSRGAN_update" in n
        for n in draft.unresolved
    )
    assert c.entry("41_HARN").name == "41_HARN"  # f"{model_id:01}_HARN"
    path = tmp_path / "m.toml"
    path.write_text(draft.text)
    assert load_manifest(path).entries == c.entries


MODULE_FILE = textwrap.dedent(
    """
    from torch import nn

    class Block(nn.Module):
        pass

    class Net(Block):
        def __init__(self, feats=4):
            super().__init__()
            self.conv = nn.Conv2d(3, feats, 3)

    class Config:
        pass
    """
)


def _files(repo: Path) -> None:
    (repo / "models" / "team01_Pkg").mkdir(parents=True)
    (repo / "model_zoo").mkdir()
    (repo / "models" / "team00_Base.py").write_text(MODULE_FILE)
    (repo / "models" / "team01_Pkg" / "__init__.py").write_text(MODULE_FILE.replace("Net", "PkgNet"))
    (repo / "models" / "team03_Other.py").write_text(MODULE_FILE.replace("Net", "Other"))
    for name in ("team00_base.pth", "team00_base_v2.pth", "team02_orphan.pth", "team03.pth"):
        (repo / "model_zoo" / name).write_bytes(b"")


def test_without_a_harness_files_are_paired_by_team_number(tmp_path: Path) -> None:
    from effbench.challenge.draft import draft_manifest

    repo = tmp_path / "repo"
    _files(repo)
    draft = draft_manifest(repo, 2022)
    c = draft.challenge
    assert [e.name for e in c.entries] == ["team00_Base", "team01_Pkg", "team03_Other"]
    assert c.baseline == "team00_Base"
    base, pkg = c.entry("team00_Base"), c.entry("team01_Pkg")
    assert (
        base.model == f"{repo}/models/team00_Base.py:Net"
        and base.weights == f"{repo}/model_zoo/team00_base.pth"
    )
    assert pkg.model == f"{repo}/models/team01_Pkg/__init__.py:PkgNet" and pkg.skip is None
    assert pkg.weights is None and "guessed by challenge init" in (pkg.note or "")
    notes = "\n".join(draft.unresolved)
    for expected in (
        "no harness",
        "team00_Base: class guessed as Net (the last nn.Module subclass in the file)",
        "team00_Base: several checkpoints; took team00_base.pth (also: team00_base_v2.pth)",
        "team01_Pkg: no model_zoo/team01_* checkpoint; measured with the constructor's weights",
        "team02: checkpoint model_zoo/team02_orphan.pth has no model file; not listed",
    ):
        assert expected in notes
    assert "# to fill in: team01_Pkg: no model_zoo/team01_* checkpoint" in draft.text
    (tmp_path / "m.toml").write_text(draft.text)
    assert load_manifest(tmp_path / "m.toml").entries == c.entries


HARNESS = textwrap.dedent(
    """
    import importlib, os, torch

    def select_model(args, device):
        model_id = args.model_id
        if model_id == 0:
            from models.team00_Base import Net as Baseline
            name, data_range = f"{model_id:02}_Base", 255.0
            model_path = os.path.join('model_zoo', 'team00_base.pth')
            model = Baseline(feats=8).eval()
            model.load_state_dict(torch.load(model_path)['params_ema'], strict=True)
        elif model_id == 1:
            module = importlib.import_module(f'models.team{model_id:02}_Pkg')
            name, data_range = f"{model_id:02}_Pkg", 1.0
            model = getattr(module, 'PkgNet')(5, head=None).to(device)
            model_path = os.path.join('model_zoo', 'team01_missing.pth')
            model.load_state_dict(torch.load(model_path), False)
        elif args.model_id == 3:
            model = make_model(args)
        return model, name, data_range, None
    """
)


def test_a_harness_branch_per_entry_and_fallback_for_the_unreadable(tmp_path: Path) -> None:
    from effbench.challenge.draft import draft_manifest

    repo = tmp_path / "repo"
    _files(repo)
    (repo / "test_demo.py").write_text(HARNESS)
    draft = draft_manifest(repo, 2024)
    c = draft.challenge
    assert [e.name for e in c.entries] == ["00_Base", "01_Pkg", "team03_Other"]
    base, pkg = c.entries[0], c.entries[1]
    assert (base.kwargs, base.weights_key, base.data_range, base.strict) == (
        {"feats": 8},
        "params_ema",
        255.0,
        True,
    )
    assert (pkg.args, pkg.kwargs, pkg.strict, pkg.data_range) == ((5,), {}, False, 1.0)
    assert pkg.skip is None and pkg.weights_missing  # counted without weights; runtime and quality skipped
    notes = "\n".join(draft.unresolved)
    assert (
        "01_Pkg (model_id 1, test_demo.py line 12): head=None left out (TOML has no null); check the" in notes
    )
    assert (
        "model_id 3 (test_demo.py line 18): constructs no model the draft can read (line 19: model = "
        "make_model(args) is no constructor the draft can read); paired files by team number" in notes
    )
    assert c.entry("team03_Other").note.startswith("guessed by challenge init: test_demo.py line 18")
    assert "team03_Other: class guessed as Other" in notes
    with pytest.raises(UsageError, match="no NTIRE ESR rules for year 2031"):
        draft_manifest(repo, 2031)
