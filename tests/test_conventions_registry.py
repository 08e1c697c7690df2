"""Counting conventions are discovered like models: a convention in its own module shows up in
``effbench profile --convention``; names and rule keys registered twice raise; several conventions cost one trace."""

from __future__ import annotations

import importlib
import json
import multiprocessing
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

import effbench.counting
from effbench.base import plugins
from effbench.base.errors import UsageError
from effbench.cli import main
from effbench.counting import (
    Convention,
    Cost,
    compare_conventions,
    convention_names,
    profile,
    register_convention,
)

registry = importlib.import_module("effbench.counting.conventions")
profile_mod = importlib.import_module("effbench.counting.profile")  # the module, not the function it exports

TOY = """
from effbench.counting import Convention, Cost, register_convention


class Toy(Convention):
    name = "{name}"
    description = "7 FLOPs per convolution, nothing else"


TOY = register_convention(Toy())


@TOY.op("aten.convolution")
def _conv(op):
    return Cost(flops=7, convs=1)
"""


@pytest.fixture(autouse=True)
def _private_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test registers into a copy of the registry, so toy conventions do not leak into other tests."""
    convention_names()  # the built-in ones are loaded first
    monkeypatch.setattr(registry, "_CONVENTIONS", dict(registry._CONVENTIONS))
    monkeypatch.setattr(plugins, "_loaded", {})
    monkeypatch.delenv(plugins.ENV_VAR, raising=False)


def _write_toy(folder: Path, module: str, name: str) -> Path:
    path = folder / f"{module}.py"
    path.write_text(textwrap.dedent(TOY.format(name=name)))
    return path


def _cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    capsys.readouterr()
    assert main(["profile", *argv, "--json", "--no-memory"]) == 0
    return json.loads(capsys.readouterr().out)


def test_builtin_conventions_come_from_the_registry() -> None:
    assert convention_names() == ("full", "ntire2022", "fvcore")
    assert effbench.counting.CONVENTION_NAMES == convention_names()


def test_a_toy_convention_file_appears_in_profile_convention(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv(plugins.ENV_VAR, str(_write_toy(tmp_path, "toy_conv", "toy")))
    assert "toy" in effbench.counting.CONVENTION_NAMES
    toy = _cli_json(capsys, "fmen_s", "--size", "16x16", "--convention", "toy")
    full = _cli_json(capsys, "fmen_s", "--size", "16x16")
    assert toy["convention"] == "toy"
    assert full["convs"] > 0
    assert (toy["flops"], toy["macs"], toy["convs"]) == (7 * full["convs"], 0, full["convs"])
    assert toy["params"] == full["params"]
    assert convention_names().count("toy") == 1  # looked up again: the plugin is not imported twice


def test_a_convention_module_on_sys_path_is_a_plugin_by_name(tmp_path: Path, monkeypatch, capsys) -> None:
    _write_toy(tmp_path, "toy_env_conv", "toyenv")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(plugins.ENV_VAR, "toy_env_conv")
    doc = _cli_json(capsys, "fmen_s", "--size", "16x16", "--convention", "toyenv")
    assert doc["convention"] == "toyenv" and doc["flops"] == 7 * doc["convs"] > 0


def test_a_duplicate_convention_name_raises_naming_it(tmp_path: Path, monkeypatch) -> None:
    class OtherFull(Convention):
        name = "full"

    with pytest.raises(ValueError, match="'full' is already registered"):
        register_convention(OtherFull())
    monkeypatch.setenv(plugins.ENV_VAR, str(_write_toy(tmp_path, "second_full", "full")))
    with pytest.raises(UsageError, match="'full' is already registered") as err:
        convention_names()
    assert isinstance(err.value.__cause__, ValueError)
    monkeypatch.delenv(plugins.ENV_VAR)
    assert registry.get_convention("full") is registry._CONVENTIONS["full"]
    assert type(registry.get_convention("full")).__module__ == "effbench.counting.conventions.full"


def test_a_duplicate_rule_in_one_convention_raises_naming_it() -> None:
    conv = Convention()
    conv.name = "dup"
    conv.op("aten.add", "aten.mul")(lambda op: Cost(flops=1))
    with pytest.raises(ValueError, match="'dup'.*'aten.mul'"):
        conv.op("aten.mul")(lambda op: Cost(flops=2))
    ntire = registry.get_convention("ntire2022")
    with pytest.raises(ValueError, match="'Conv2d'"):
        ntire.module(nn.Conv2d)(lambda call: Cost())
    fvcore = registry.get_convention("fvcore")
    with pytest.raises(ValueError, match="'interpolate'"):
        fvcore.function("interpolate")(lambda call: Cost())
    full = registry.get_convention("full")
    with pytest.raises(ValueError, match="'aten.cat'"):
        full.zero("aten.cat")


def test_a_convention_without_a_name_is_refused() -> None:
    with pytest.raises(ValueError, match="no name"):
        register_convention(Convention())


class _ConvAdd(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + x


def test_overrides_replace_one_rule_for_one_run_only() -> None:
    model = _ConvAdd()
    base = profile(model, (8, 8), peak_memory=False)
    over = profile(model, (8, 8), peak_memory=False, overrides={"aten.add": lambda op: Cost(flops=1000)})
    assert over.flops == base.flops - 3 * 8 * 8 + 1000
    assert over.macs == base.macs
    assert profile(model, (8, 8), peak_memory=False).flops == base.flops  # the registered rule is untouched
    ntire = profile(
        model, (8, 8), "ntire2022", peak_memory=False, overrides={nn.Conv2d: lambda c: Cost(macs=5)}
    )
    assert ntire.macs == 5
    with pytest.raises(UsageError, match="no rule table"):
        profile(model, (8, 8), peak_memory=False, overrides={"conv2d": lambda op: Cost()})


class _CountingRecord:
    """Counts the calls, also those made in the forked process a CLI command runs its work in (shared memory)."""

    def __init__(self) -> None:
        self._calls = multiprocessing.Value("i", 0)
        self.real = profile_mod.record

    @property
    def calls(self) -> int:
        return self._calls.value

    def __call__(self, *args, **kwargs):
        with self._calls.get_lock():
            self._calls.value += 1
        return self.real(*args, **kwargs)


def test_compare_conventions_records_the_model_once(monkeypatch) -> None:
    counter = _CountingRecord()
    monkeypatch.setattr(profile_mod, "record", counter)
    model = _ConvAdd()
    both = compare_conventions(model, (8, 8))
    assert counter.calls == 1
    assert list(both) == list(convention_names())
    monkeypatch.setattr(profile_mod, "record", counter.real)
    for name, p in both.items():  # the same numbers as one profile per convention
        alone = profile(model, (8, 8), name, peak_memory=False)
        assert (p.macs, p.flops, p.activations, p.convs) == (
            alone.macs,
            alone.flops,
            alone.activations,
            alone.convs,
        )


def test_profile_compare_conventions_cli_records_the_model_once(monkeypatch, capsys) -> None:
    counter = _CountingRecord()
    monkeypatch.setattr(profile_mod, "record", counter)
    doc = _cli_json(capsys, "fmen_s", "--size", "16x16", "--convention", "fvcore", "--compare-conventions")
    assert counter.calls == 1
    assert set(doc["conventions"]) == set(convention_names())
    assert doc["convention"] == "fvcore" and doc["flops"] == doc["conventions"]["fvcore"]["flops"]
