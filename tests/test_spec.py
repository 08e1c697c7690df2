"""Model specs: a zoo name, ``path/file.py:Name``, ``package.module:attr``, JSON kwargs and a weights path."""

from __future__ import annotations

import textwrap
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
    assert ModelSpec.parse("fmen_s").is_zoo and ModelSpec.parse("fmen_s").data_range() == 255.0
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
    assert spec.name == "Net" and not spec.is_zoo and spec.data_range() == 1.0


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
