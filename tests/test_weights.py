"""Checkpoints: every official file loads strictly through the zoo; bad files fail with errors naming them."""

from __future__ import annotations

import shutil
import urllib.error
from pathlib import Path

import pytest
import torch

import effbench
from effbench.base.errors import CheckpointError
from effbench.zoo import weights as W
from effbench.zoo.registry import model_info

# file in ../shared/weights -> (zoo model, scale)
OFFICIAL = {
    "IMDN_x2.pth": ("imdn", 2),
    "IMDN_x3.pth": ("imdn", 3),
    "IMDN_x4.pth": ("imdn", 4),
    "ntire22_imdn_baseline.pth": ("imdn_ntire", 4),
    "RFDN_AIM.pth": ("e_rfdn", 4),
    "ntire22_team03_fmen.pth": ("fmen_s", 4),
    "FMEN_test_weights.pt": ("fmen_s", 4),
    "ntire22_team04_rlfn.pth": ("rlfn", 4),
    "LatticeNet_x2.pt": ("latticenet", 2),
    "LatticeNet_x3.pt": ("latticenet", 3),
    "LatticeNet_x4.pt": ("latticenet", 4),
}


pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_table_covers_every_shared_checkpoint(weights_dir: Path) -> None:
    listed = {
        line.split()[1] for line in (weights_dir / "SHA256SUMS").read_text().splitlines() if line.strip()
    }
    assert listed == set(OFFICIAL)


@pytest.mark.parametrize("filename", sorted(OFFICIAL))
def test_registered_hash_and_address_match_the_shared_sha256sums(filename: str, weights_dir: Path) -> None:
    sums = dict(
        reversed(line.split()) for line in (weights_dir / "SHA256SUMS").read_text().splitlines() if line
    )
    model, scale = OFFICIAL[filename]
    cfgs = {c.filename: c for c in model_info(model).checkpoints(scale)}
    assert filename in cfgs, f"{model} x{scale} does not list {filename}"
    assert cfgs[filename].sha256 == sums[filename] == W.sha256_of(weights_dir / filename)
    assert cfgs[filename].url and cfgs[filename].url.startswith("https://")


@pytest.mark.parametrize("filename", sorted(OFFICIAL))
def test_official_checkpoint_loads_strictly_via_create_model(filename: str, weights_cache: Path) -> None:
    name, scale = OFFICIAL[filename]
    first = model_info(name).checkpoints(scale)[0].filename
    kwargs = {} if filename == first else {"weights": filename}  # the default file, or another by its name
    model = effbench.create_model(name, scale=scale, pretrained=True, **kwargs)
    sd = W.read_state_dict(weights_cache / filename)

    # strict load: the model's state is exactly the file's tensors, key for key (compared as a multiset of
    # (shape, checksum) so that the test does not depend on the key layout)
    def fingerprint(tensors) -> list[tuple[tuple[int, ...], float]]:
        return sorted((tuple(t.shape), round(float(t.double().sum()), 6)) for t in tensors)

    assert fingerprint(model.state_dict().values()) == fingerprint(sd.values())


def test_corrupt_cached_file_names_file_and_both_hashes(
    tmp_path: Path, weights_dir: Path, monkeypatch
) -> None:
    src = weights_dir / "ntire22_team03_fmen.pth"
    bad = tmp_path / src.name
    data = bytearray(src.read_bytes())
    data[-100] ^= 0xFF
    bad.write_bytes(bytes(data))
    monkeypatch.setenv("EFFBENCH_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(CheckpointError) as exc:
        effbench.create_model("fmen_s", pretrained=True)
    msg = str(exc.value)
    assert "ntire22_team03_fmen.pth" in msg
    assert "f20cde0828068c5f50d3b64aa82c8a363fe6abc8d536d1a9fd4d09899f019bea" in msg  # expected
    assert W.sha256_of(bad) in msg  # actual


def test_wrong_shapes_name_the_file_and_the_keys(tmp_path: Path) -> None:
    sd = effbench.create_model("fmen_s").state_dict()
    sd["lr_conv.weight"] = torch.zeros(50, 50, 1, 1)
    path = tmp_path / "mine.pth"
    torch.save(sd, path)
    with pytest.raises(
        CheckpointError, match=r"mine\.pth.*wrong shapes: lr_conv\.weight: checkpoint \(50, 50, 1, 1\)"
    ):
        effbench.create_model("fmen_s", weights=str(path))


def test_missing_and_unexpected_keys_are_listed(tmp_path: Path) -> None:
    sd = effbench.create_model("fmen_s").state_dict()
    del sd["head.bias"]
    sd["extra.weight"] = torch.zeros(1)
    path = tmp_path / "odd.pt"
    torch.save(sd, path)
    with pytest.raises(
        CheckpointError, match=r"odd\.pt.*missing keys: head\.bias.*unexpected keys: extra\.weight"
    ):
        W.load_checkpoint(effbench.create_model("fmen_s"), path)


@pytest.mark.parametrize("wrapper", ["state_dict", "params", "model", "params_ema"])
def test_common_wrappers_and_module_prefix_are_unwrapped(tmp_path: Path, wrapper: str) -> None:
    src = effbench.create_model("rlfn")
    sd = {f"module.{k}": v for k, v in src.state_dict().items()}
    path = tmp_path / "wrapped.pth"
    torch.save({wrapper: sd, "epoch": 3}, path)
    dst = W.load_checkpoint(effbench.create_model("rlfn"), path)
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))


def test_registered_key_layouts_are_found_automatically(weights_dir: Path) -> None:
    # ntire22_team03_fmen.pth uses 'basic_blocks'/'hfabs'; load_checkpoint finds the 'fmen_ntire22' layout itself
    model = W.load_checkpoint(effbench.create_model("fmen_s"), weights_dir / "ntire22_team03_fmen.pth")
    sd = W.read_state_dict(weights_dir / "ntire22_team03_fmen.pth")
    assert torch.equal(model.ERBs[2].conv1.rep_conv.weight, sd["basic_blocks.2.conv1.rep_conv.weight"])


def test_explicit_key_layout(weights_dir: Path) -> None:
    path = weights_dir / "ntire22_team03_fmen.pth"
    W.load_checkpoint(effbench.create_model("fmen_s"), path, key_layout="fmen_ntire22")
    with pytest.raises(CheckpointError, match="ntire22_team03_fmen.pth"):
        W.load_checkpoint(effbench.create_model("fmen_s"), path, key_layout="module_prefix")
    with pytest.raises(ValueError, match="unknown key layout 'nope'"):
        W.load_checkpoint(effbench.create_model("fmen_s"), path, key_layout="nope")


def test_offline_names_the_file_and_the_folder(tmp_path: Path, monkeypatch) -> None:
    def offline(url: str, dst: str) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(W, "_download", offline)
    monkeypatch.setenv("EFFBENCH_WEIGHTS_DIR", str(tmp_path / "cache"))
    with pytest.raises(CheckpointError) as exc:
        effbench.create_model("rlfn", pretrained=True)
    assert "ntire22_team04_rlfn.pth" in str(exc.value) and str(tmp_path / "cache") in str(exc.value)
    assert list((tmp_path / "cache").iterdir()) == []  # no partial file left behind


def test_download_is_hash_checked_before_entering_the_cache(
    tmp_path: Path, weights_dir: Path, monkeypatch
) -> None:
    served = {"file": weights_dir / "ntire22_team04_rlfn.pth"}
    monkeypatch.setattr(W, "_download", lambda url, dst: shutil.copyfile(served["file"], dst))
    cache = tmp_path / "cache"
    monkeypatch.setenv("EFFBENCH_WEIGHTS_DIR", str(cache))
    served["file"] = weights_dir / "RFDN_AIM.pth"  # the server hands out the wrong bytes
    with pytest.raises(CheckpointError, match="ntire22_team04_rlfn.pth.*wrong SHA-256"):
        effbench.create_model("rlfn", pretrained=True)
    assert not (cache / "ntire22_team04_rlfn.pth").exists() and list(cache.iterdir()) == []
    served["file"] = weights_dir / "ntire22_team04_rlfn.pth"
    effbench.create_model("rlfn", pretrained=True)
    assert W.sha256_of(cache / "ntire22_team04_rlfn.pth") == model_info("rlfn").checkpoints(4)[0].sha256
    assert W.checkpoint_status(model_info("rlfn").checkpoints(4)[0]) == "cached"


def test_cache_folder_follows_env_then_xdg(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("EFFBENCH_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert W.weights_dir() == tmp_path / "effbench" / "weights"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert W.weights_dir() == Path.home() / ".cache" / "effbench" / "weights"
    monkeypatch.setenv("EFFBENCH_WEIGHTS_DIR", str(tmp_path / "w"))
    assert W.weights_dir() == tmp_path / "w"


def test_unsafe_or_unreadable_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "pickled.pth"
    torch.save({"net": effbench.create_model("rlfn")}, path)  # a whole module: not loadable with weights_only
    with pytest.raises(CheckpointError, match=r"pickled\.pth.*weights_only=True"):
        W.load_checkpoint(effbench.create_model("rlfn"), path)
    with pytest.raises(CheckpointError, match="not found"):
        W.load_checkpoint(effbench.create_model("rlfn"), tmp_path / "absent.pth")
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(CheckpointError, match=r"text\.pth"):
        W.load_checkpoint(effbench.create_model("rlfn"), tmp_path / "text.pth")


def test_a_train_form_checkpoint_loads_into_the_train_form(tmp_path: Path) -> None:
    src = effbench.create_model("fmen_s", deploy=False)
    with torch.no_grad():
        src.HFABs[0].bn1.running_var.fill_(3.0)
    torch.save(src.state_dict(), tmp_path / "train_form.pth")
    dst = effbench.create_model("fmen_s", deploy=False, weights=str(tmp_path / "train_form.pth"))
    assert torch.equal(dst.HFABs[0].bn1.running_var, torch.full((50,), 3.0))
    with pytest.raises(CheckpointError, match=r"train_form\.pth.*(missing|unexpected) keys"):
        effbench.create_model("fmen_s", deploy=True, weights=str(tmp_path / "train_form.pth"))
