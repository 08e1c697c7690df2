"""Model specs: a zoo name, ``path/file.py:Name``, ``package.module:attr``, JSON kwargs and a weights path."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

import effbench
from effbench.base.errors import CheckpointError, ModelError, UnknownModelError, UsageError
from effbench.zoo.spec import ModelSpec, load_model

USER_MODEL = textwrap.dedent(
    """
    import torch
    from torch import nn

    class Net(nn.Module):
        data_range = 1.0

        def __init__(self, scale=2, feats=4):
            super().__init__()
            self.feats = feats
            self.body = nn.Conv2d(3, feats, 3, padding=1)
            self.tail = nn.Sequential(nn.Conv2d(feats, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale))

        def forward(self, x):
            return self.tail(self.body(x))

    def make(feats=4):
        return Net(scale=2, feats=feats)

    def not_a_model():
        return 42

    def broken():
        raise RuntimeError("boom")

    instance = Net()
    """
)


@pytest.fixture()
def user_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_sr.py"
    path.write_text(USER_MODEL)
    return path


def test_zoo_name(weights_dir: Path) -> None:
    model = load_model("fmen_s", scale=4)
    assert type(model).__name__ == "FMEN" and not model.training
    assert ModelSpec.parse("fmen_s").is_zoo and ModelSpec.parse("fmen_s").input_range() == 255.0
    trained = load_model("fmen_s", weights=str(weights_dir / "FMEN_test_weights.pt"))
    ref = torch.load(weights_dir / "FMEN_test_weights.pt", map_location="cpu", weights_only=True)
    assert torch.equal(trained.tail[0].weight, ref["tail.0.weight"])


def test_zoo_name_with_kwargs_overrides_the_config() -> None:
    model = load_model("fmen", scale=2, kwargs='{"block": "rb"}')
    assert {type(b).__name__ for b in model.ERBs} == {"RB"}
    train = load_model("fmen_s", deploy=False)
    assert any(isinstance(m, nn.BatchNorm2d) for m in train.modules())


def test_file_and_class_with_json_kwargs(user_file: Path) -> None:
    model = load_model(f"{user_file}:Net", scale=4, kwargs='{"feats": 8, "scale": 3}')
    assert model.feats == 8 and not model.training
    assert model(torch.rand(1, 3, 5, 7)).shape == (1, 3, 15, 21)
    spec = ModelSpec.parse(f"{user_file}:Net")
    assert spec.name == "Net" and not spec.is_zoo and spec.input_range() == 1.0


def test_file_with_factory_and_module_instance(user_file: Path) -> None:
    assert load_model(f"{user_file}:make", kwargs={"feats": 6}).feats == 6
    assert isinstance(load_model(f"{user_file}:instance"), nn.Module)
    with pytest.raises(UsageError, match="module instance; it takes no kwargs"):
        load_model(f"{user_file}:instance", kwargs={"feats": 2})


def test_package_module_attr(tmp_path: Path, monkeypatch) -> None:
    pkg = tmp_path / "usrpkg_effbench"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(USER_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    model = load_model("usrpkg_effbench.nets:Net", kwargs={"feats": 5})
    assert model.feats == 5
    assert load_model("torch.nn:Identity")(torch.ones(2)).tolist() == [1.0, 1.0]


def test_weights_path_for_a_user_model(user_file: Path, tmp_path: Path) -> None:
    src = load_model(f"{user_file}:Net")
    ckpt = tmp_path / "net.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}}, ckpt)
    dst = load_model(f"{user_file}:Net", weights=str(ckpt))
    assert torch.equal(dst.body.weight, src.body.weight)
    wrong = load_model(f"{user_file}:Net", kwargs={"feats": 3}).state_dict()
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(CheckpointError, match=r"wrong\.pth.*body\.weight"):
        load_model(f"{user_file}:Net", weights=str(tmp_path / "wrong.pth"))


@pytest.mark.parametrize(
    ("spec", "kwargs", "error", "message"),
    [
        ("fmen_ss", None, UnknownModelError, "closest: fmen_s"),
        ("missing_dir/none.py:Net", None, UsageError, "model file not found"),
        ("{file}:Nope", None, UsageError, "has no attribute 'Nope'"),
        ("{file}:Net", "{not json", UsageError, "not valid JSON"),
        ("{file}:Net", "[1, 2]", UsageError, "must be a JSON object"),
        ("{file}:Net", '{"colour": 1}', UsageError, "cannot build"),
        ("{file}:not_a_model", None, ModelError, "returned int, not a torch.nn.Module"),
        ("{file}:broken", None, ModelError, "RuntimeError: boom"),
        ("no_such_pkg_xyz.mod:Net", None, UsageError, "cannot import module 'no_such_pkg_xyz.mod'"),
        (":Net", None, UsageError, "must look like"),
        ("", None, UsageError, "empty or invalid model spec"),
    ],
)
def test_bad_specs_raise_clear_errors(spec, kwargs, error, message, user_file: Path) -> None:
    with pytest.raises(error, match=message):
        load_model(spec.format(file=user_file), kwargs=kwargs)


def test_file_that_fails_to_import_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad_import.py"
    bad.write_text("import not_a_real_module_xyz\n")
    with pytest.raises(ModelError, match=r"importing .*bad_import\.py failed: ModuleNotFoundError"):
        load_model(f"{bad}:Net")


def test_pretrained_needs_a_zoo_model_and_a_valid_scale(user_file: Path) -> None:
    with pytest.raises(UsageError, match="--pretrained applies to zoo models only"):
        load_model(f"{user_file}:Net", pretrained=True)
    with pytest.raises(UsageError, match="no scale x3; available: x4"):
        effbench.create_model("fmen_s", scale=3)


def test_resolve_model_knows_the_input_range_of_zoo_instances_and_specs():
    """IMDN works on [0,1] images: an IMDN instance must not be fed [0,255] just because it is not a spec."""
    import effbench
    from effbench.zoo.spec import resolve_model

    assert resolve_model(effbench.create_model("imdn", scale=4)).data_range == 1.0
    assert resolve_model("imdn", scale=4).data_range == 1.0
    assert resolve_model(effbench.create_model("fmen_s", scale=4)).data_range == 255.0
    assert resolve_model(torch.nn.Conv2d(3, 3, 3)).data_range == 255.0
    with pytest.raises(UsageError, match="model spec"):
        resolve_model(42)
    with pytest.raises(UsageError, match="model instance"):
        resolve_model(torch.nn.Conv2d(3, 3, 3), weights="x.pth")


# --- challenge entries: positional args, an import root, checkpoint entries, non-strict loads, data range -------

BLOCK = textwrap.dedent(
    """
    from torch import nn

    class Block(nn.Module):
        def __init__(self, feats):
            super().__init__()
            self.conv = nn.Conv2d(feats, feats, 3, padding=1)

        def forward(self, x):
            return self.conv(x)
    """
)

ENTRY = textwrap.dedent(
    """
    from torch import nn
    from models.common import Block

    class Entry(nn.Module):
        def __init__(self, cin, cout, upscale=4, feats=4):
            super().__init__()
            self.head = nn.Conv2d(cin, feats, 3, padding=1)
            self.body = Block(feats)
            self.tail = nn.Sequential(nn.Conv2d(feats, cout * upscale**2, 3, padding=1), nn.PixelShuffle(upscale))

        def forward(self, x):
            return self.tail(self.body(self.head(x)))
    """
)


@pytest.fixture()
def no_models_package(monkeypatch) -> None:
    """No ``models`` package cached by an earlier test (restored afterwards)."""
    import sys

    for key in [k for k in sys.modules if k == "models" or k.startswith("models.")]:
        monkeypatch.delitem(sys.modules, key)


def _repo(base: Path, feats_attr: str = "") -> Path:
    """A challenge folder: ``models/common.py`` and ``models/team01.py`` that does ``from models.common import``."""
    (base / "models").mkdir(parents=True)
    (base / "models" / "common.py").write_text(BLOCK)
    (base / "models" / "team01.py").write_text(ENTRY + feats_attr)
    return base


def test_positional_args_and_an_import_root(tmp_path: Path, no_models_package: None) -> None:
    import sys

    from effbench.zoo.spec import resolve_model

    repo = _repo(tmp_path / "repo")
    with pytest.raises(
        ModelError, match=r"'models' is a folder of .*repo: give that folder as the import root"
    ):
        resolve_model(ModelSpec(f"{repo}/models/team01.py:Entry", args=(3, 3)))
    spec = ModelSpec(f"{repo}/models/team01.py:Entry", {"feats": 6}, args=(3, 3), root=str(repo))
    assert spec.module_name == "models.team01"
    resolved = resolve_model(spec)
    assert resolved.model(torch.rand(1, 3, 4, 5)).shape == (1, 3, 16, 20)
    assert resolved.model.head.out_channels == 6 and resolved.identity.args == (3, 3)
    assert str(repo) not in sys.path  # the root is on the path only while importing and building
    other = resolve_model(ModelSpec(spec.target, {"feats": 6}, args=(3, 1), root=str(repo)))
    assert other.identity.key != resolved.identity.key


def test_two_roots_with_their_own_models_package_in_one_process(
    tmp_path: Path, no_models_package: None
) -> None:
    from effbench.zoo.spec import resolve_model

    first = _repo(tmp_path / "y2024")
    second = _repo(tmp_path / "y2022", feats_attr="\nEntry.data_range = 1.0\n")
    a = resolve_model(ModelSpec(f"{first}/models/team01.py:Entry", args=(3, 3), root=str(first)))
    b = resolve_model(ModelSpec(f"{second}/models/team01.py:Entry", args=(3, 3), root=str(second)))
    assert (a.data_range, b.data_range) == (255.0, 1.0)
    assert type(a.model).__module__ == type(b.model).__module__ == "models.team01"
    assert resolve_model(ModelSpec(a.identity.spec, args=(3, 3), root=str(first))).data_range == 255.0


def test_packages_with_relative_imports_as_file_or_module_specs(tmp_path: Path) -> None:
    from effbench.zoo.spec import resolve_model

    pkg = tmp_path / "root" / "team07_pkg_effbench"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .net import Net\n")
    (pkg / "blocks.py").write_text(BLOCK)
    (pkg / "net.py").write_text(
        "from torch import nn\nfrom .blocks import Block\n\n"
        "class Net(nn.Sequential):\n    def __init__(self, feats):\n        super().__init__(Block(feats))\n"
    )
    root = str(tmp_path / "root")
    as_file = resolve_model(ModelSpec(f"{pkg}/net.py:Net", args=(5,), root=root))
    as_package = resolve_model(ModelSpec(f"{pkg}/__init__.py:Net", args=(5,), root=root))
    as_module = resolve_model(ModelSpec("team07_pkg_effbench.net:Net", args=(5,), root=root))
    assert as_file.model[0].conv.in_channels == as_package.model[0].conv.in_channels == 5
    assert type(as_module.model) is type(as_file.model)


def test_a_package_the_file_imports_but_is_not_installed_is_named(tmp_path: Path) -> None:
    (tmp_path / "needs_timm.py").write_text("import not_installed_pkg_xyz.layers\n")
    with pytest.raises(
        ModelError, match=r"failed: ModuleNotFoundError.*missing package 'not_installed_pkg_xyz'"
    ):
        load_model(f"{tmp_path}/needs_timm.py:Net")
    (tmp_path / "mod_needs_effbench_xyz.py").write_text("import not_installed_pkg_xyz\n")
    with pytest.raises(ModelError, match="missing package 'not_installed_pkg_xyz'"):
        load_model(ModelSpec("mod_needs_effbench_xyz:Net", root=str(tmp_path)))


def test_weights_key_and_non_strict_loading(user_file: Path, tmp_path: Path) -> None:
    from effbench.zoo.spec import resolve_model

    ema, plain = load_model(f"{user_file}:Net").state_dict(), load_model(f"{user_file}:Net").state_dict()
    torch.save({"params": plain, "params_ema": ema}, tmp_path / "both.pth")
    spec = ModelSpec(f"{user_file}:Net", weights=str(tmp_path / "both.pth"), weights_key="params_ema")
    assert torch.equal(resolve_model(spec).model.body.weight, ema["body.weight"])
    assert resolve_model(spec).identity.key != resolve_model(replace(spec, weights_key="params")).identity.key
    with pytest.raises(
        CheckpointError, match=r"has no entry 'params_x' \(top level: \['params', 'params_ema'\]\)"
    ):
        resolve_model(replace(spec, weights_key="params_x"))

    partial = {k: v for k, v in ema.items() if k != "body.bias"} | {"extra.weight": torch.zeros(1)}
    torch.save(partial, tmp_path / "partial.pth")
    loose = ModelSpec(f"{user_file}:Net", weights=str(tmp_path / "partial.pth"), strict=False)
    resolved = resolve_model(loose)
    assert torch.equal(resolved.model.body.weight, ema["body.weight"])
    assert resolved.loose_load is not None
    assert (resolved.loose_load.missing, resolved.loose_load.unexpected) == (
        ("body.bias",),
        ("extra.weight",),
    )
    with pytest.raises(CheckpointError, match="missing keys: body.bias"):
        resolve_model(replace(loose, strict=True))


def test_data_range_override_and_the_json_form(user_file: Path) -> None:
    from effbench.base.identity import identity_key
    from effbench.zoo.spec import resolve_model

    plain = resolve_model(f"{user_file}:Net")
    assert plain.data_range == 1.0
    assert plain.identity.key == identity_key(
        spec=f"{user_file.resolve()}:Net", kwargs={}, weights=None, scale=4, form="deploy"
    )  # specs without the new fields keep their keys
    spec = ModelSpec(
        f"{user_file}:Net", {"feats": 2}, None, (2,), str(user_file.parent), "params", False, 255.0
    )
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert resolve_model(replace(spec, weights_key=None)).data_range == 255.0
    with pytest.raises(UsageError, match=r"unknown model spec keys \['colour'\]"):
        ModelSpec.from_dict({"target": "fmen_s", "colour": 1})
    with pytest.raises(UsageError, match="zoo model 'fmen_s' takes no args"):
        load_model(ModelSpec("fmen_s", args=(1,)))
