"""Model identities: every result says which model it measured, and same-name models stay apart."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

import effbench
from effbench.base.identity import ModelIdentity, display_names, result_key
from effbench.base.results import new_result
from effbench.zoo import resolve_model

NET = textwrap.dedent(
    """
    from torch import nn

    class Net(nn.Module):
        def __init__(self, scale=4, feats={feats}):
            super().__init__()
            self.body = nn.Conv2d(3, feats, 3, padding=1)
            self.tail = nn.Sequential(nn.Conv2d(feats, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale))

        def forward(self, x):
            return self.tail(self.body(x))
    """
)


@pytest.fixture()
def two_nets(tmp_path: Path) -> tuple[str, str]:
    """``a/model.py:Net`` (about 7K params) and ``b/model.py:Net`` (about 29K params)."""
    specs = []
    for folder, feats in (("a", 16), ("b", 64)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "model.py").write_text(NET.format(feats=feats))
        specs.append(f"{tmp_path / folder / 'model.py'}:Net")
    return specs[0], specs[1]


def _params(spec: str) -> int:
    return sum(p.numel() for p in resolve_model(spec).model.parameters())


def test_the_two_nets_are_7k_and_29k(two_nets) -> None:
    assert 6_000 < _params(two_nets[0]) < 8_000 and 28_000 < _params(two_nets[1]) < 30_000


def test_same_spec_gives_the_same_key_and_two_files_two_keys(two_nets) -> None:
    a1, a2, b = (resolve_model(s).identity for s in (two_nets[0], two_nets[0], two_nets[1]))
    assert a1 == a2 and a1.key == a2.key
    assert a1.name == b.name == "Net" and a1.key != b.key
    assert a1.path == str(Path(two_nets[0].rsplit(":", 1)[0]).resolve())


def test_a_relative_file_spec_has_the_key_of_its_absolute_path(two_nets, monkeypatch) -> None:
    folder = Path(two_nets[0]).parent
    monkeypatch.chdir(folder.parent)
    rel = resolve_model("a/model.py:Net").identity
    assert rel.spec == "a/model.py:Net" and rel.key == resolve_model(two_nets[0]).identity.key


def test_kwargs_weights_scale_and_form_change_the_key(two_nets, tmp_path: Path, weights_dir: Path) -> None:
    base = resolve_model(two_nets[0]).identity
    assert resolve_model(two_nets[0], kwargs={"feats": 8}).identity.key != base.key
    assert resolve_model(two_nets[0], scale=2).identity.key != base.key
    ckpt = tmp_path / "net.pth"
    torch.save(resolve_model(two_nets[0]).model.state_dict(), ckpt)
    weighted = resolve_model(two_nets[0], weights=str(ckpt)).identity
    assert weighted.key != base.key and weighted.weights == str(ckpt.resolve())
    assert weighted.weights_sha256 is not None and len(weighted.weights_sha256) == 64
    assert resolve_model("fmen_s", deploy=False).identity.key != resolve_model("fmen_s").identity.key
    official = resolve_model("fmen_s", weights=str(weights_dir / "FMEN_test_weights.pt")).identity
    assert official.weights_sha256 is not None and official.key != resolve_model("fmen_s").identity.key


def test_every_kind_of_model_gets_an_identity(two_nets, tmp_path: Path, monkeypatch) -> None:
    zoo = resolve_model("fmen_s").identity
    assert (zoo.name, zoo.spec, zoo.scale, zoo.form, zoo.data_range, zoo.weights) == (
        "fmen_s",
        "fmen_s",
        4,
        "deploy",
        255.0,
        None,
    )
    pkg = tmp_path / "idpkg_effbench"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(NET.format(feats=4))
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = resolve_model("idpkg_effbench:Net").identity
    assert (mod.name, mod.module, mod.path) == ("Net", "idpkg_effbench", None)
    inst = resolve_model(effbench.create_model("imdn", scale=4), scale=None).identity
    assert (inst.name, inst.scale, inst.data_range) == ("IMDN", None, 1.0)
    small, big = (resolve_model(nn.Conv2d(3, c, 3)).identity for c in (4, 8))
    assert small.name == big.name == "Conv2d" and small.key != big.key
    assert ModelIdentity.from_dict(zoo.as_dict()) == zoo


def test_display_names_keep_unique_names_and_qualify_clashes(two_nets) -> None:
    a, b = (resolve_model(s).identity for s in two_nets)
    fmen = resolve_model("fmen_s").identity
    assert display_names([a, b, fmen]) == {
        a.key: "Net (a/model.py)",
        b.key: "Net (b/model.py)",
        fmen.key: "fmen_s",
    }
    train = resolve_model("fmen_s", deploy=False).identity
    assert display_names([fmen, train]) == {fmen.key: "fmen_s (deploy)", train.key: "fmen_s (train)"}


def test_result_documents_carry_the_identity_and_old_ones_key_on_their_name() -> None:
    ident = resolve_model("fmen_s").identity
    doc = new_result(ident.name, ident.spec, identity=ident.as_dict())
    assert doc["model_key"] == ident.key == result_key(doc) and ModelIdentity.of_result(doc) == ident
    old = new_result("FMEN-S")
    assert old["model_key"] is None and result_key(old) == "FMEN-S" == ModelIdentity.of_result(old).key


def _doc(spec: str, params: float) -> dict:
    ident = resolve_model(spec).identity
    return new_result(
        ident.name,
        ident.spec,
        identity=ident.as_dict(),
        scale=4,
        input_shape=[1, 3, 64, 64],
        device="cpu",
        dtype="fp32",
        protocol="steady",
        convention="full",
        metrics={"params": params, "runtime_ms": 1.0},
    )


def test_two_same_name_models_give_two_rows_and_two_gate_entries(two_nets, tmp_path: Path) -> None:
    from effbench.base.results import write_json_atomic
    from effbench.challenge.scores import _entries
    from effbench.ci.gate import load_for_gate
    from effbench.report.table import build_table

    docs = [_doc(s, _params(s)) for s in two_nets]
    rows = {r.model: r.values["params_k"] for r in build_table(docs).rows}
    assert rows == {
        "Net (a/model.py)": pytest.approx(_params(two_nets[0]) / 1e3),
        "Net (b/model.py)": pytest.approx(_params(two_nets[1]) / 1e3),
    }
    write_json_atomic(tmp_path / "results" / "all.json", docs)
    entries = load_for_gate(tmp_path / "results")
    assert sorted(entries) == ["Net (a/model.py)", "Net (b/model.py)"]
    assert {e["model"]: e["params"] for e in _entries(docs)} == {
        "Net (a/model.py)": _params(two_nets[0]),
        "Net (b/model.py)": _params(two_nets[1]),
    }


def test_two_same_name_models_swept_together_keep_their_own_rows(two_nets) -> None:
    from effbench.report.table import build_table
    from effbench.sweep.config import Cell
    from effbench.sweep.worker import measure_cell

    docs = [measure_cell(Cell(s, 4, (16, 16), repeats=1, threads=1)) for s in two_nets]
    assert [d["status"] for d in docs] == ["ok", "ok"] and docs[0]["model_key"] != docs[1]["model_key"]
    rows = {r.model: r.values["params_k"] for r in build_table(docs).rows}
    assert rows == {
        "Net (a/model.py)": pytest.approx(_params(two_nets[0]) / 1e3),
        "Net (b/model.py)": pytest.approx(_params(two_nets[1]) / 1e3),
    }


def test_each_entry_point_keeps_the_identity_of_what_it_measured(two_nets) -> None:
    from effbench.counting import profile
    from effbench.memory import predict_memory
    from effbench.timing import benchmark

    want = resolve_model(two_nets[1]).identity
    assert profile(two_nets[1], (8, 8), peak_memory=False).identity == want
    assert predict_memory(two_nets[1], (8, 8)).identity == want
    doc = benchmark(two_nets[1], (8, 8), repeats=1, threads=1)
    assert doc["model_key"] == want.key and doc["identity"] == want.as_dict()
    resolved = resolve_model(two_nets[1], kwargs={"feats": 8})  # what a command resolved is passed through
    assert profile(resolved, (8, 8), scale=4, peak_memory=False).identity == resolved.identity != want


def test_a_pretrained_model_is_built_from_the_one_file_its_identity_hashes(
    weights_cache: Path, monkeypatch
) -> None:
    from effbench.zoo import weights as W

    fetched, hashed = [], []
    fetch, sha256_of = W.fetch, W.sha256_of
    monkeypatch.setattr(W, "fetch", lambda cfg: fetched.append(cfg.filename) or fetch(cfg))
    monkeypatch.setattr(W, "sha256_of", lambda path: hashed.append(Path(path)) or sha256_of(path))
    ident = resolve_model("fmen_s", pretrained=True).identity
    assert fetched == [Path(ident.weights).name]  # found (and hash-checked) once, not again for the identity
    assert ident.weights_sha256 == sha256_of(ident.weights) and len(hashed) == 2  # the check and the identity
