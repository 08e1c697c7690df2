"""``effbench zoo`` lists the built-in zoo from a committed index, without torch; the index is the live registry's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from effbench.zoo.index import INDEX_PATH, build_index, read_index

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import sys
from effbench.cli import main
rc = main(sys.argv[1:])
print("RC", rc, "TORCH", "torch" in sys.modules, file=sys.stderr)
"""


def _zoo(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE, "zoo", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_the_committed_index_equals_the_live_registry() -> None:
    assert read_index() == build_index(), (
        f"stale zoo index: run `python -m effbench.zoo.index` ({INDEX_PATH})"
    )


def test_zoo_lists_every_built_in_model_without_importing_torch() -> None:
    out = _zoo("--json", env={"EFFBENCH_PLUGINS": ""})
    assert "RC 0 TORCH False" in out.stderr, out.stderr
    models = json.loads(out.stdout)["models"]
    assert [m["name"] for m in models] == [r["name"] for r in read_index()]
    assert {m["name"]: m["params"] for m in models}["fmen_s"] == {"4": 341_066}
    assert all("status" in c for m in models for cks in m["checkpoints"].values() for c in cks)


def test_a_plugin_model_is_listed_from_the_live_registry(tmp_path: Path) -> None:
    plugin = tmp_path / "toy_zoo_plugin.py"
    plugin.write_text(
        "from torch import nn\n"
        "from effbench.zoo.registry import register_model\n\n"
        "@register_model('toy_plugin_net', scales=(2,), data_range=1.0, paper='none')\n"
        "def toy_plugin_net(scale=2, deploy=True):\n"
        "    return nn.Conv2d(3, 3 * scale * scale, 3, padding=1)\n"
    )
    out = _zoo("--json", env={"EFFBENCH_PLUGINS": str(plugin)})
    assert "RC 0 TORCH True" in out.stderr, out.stderr
    by_name = {m["name"]: m for m in json.loads(out.stdout)["models"]}
    assert by_name["toy_plugin_net"]["params"] == {"2": 3 * 12 * 9 + 12}
    assert "fmen_s" in by_name


def test_an_unknown_name_is_a_usage_error_with_the_closest_names() -> None:
    out = _zoo("--model", "fmen_ss", env={"EFFBENCH_PLUGINS": ""})
    assert "RC 2" in out.stderr and "fmen_s" in out.stderr, out.stderr
