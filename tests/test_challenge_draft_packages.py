"""What organisers' model files import, importable beside the installed torch while effbench imports model code
(:mod:`effbench.base.thirdparty`): a PyPI torchvision whose C extension was built for a CUDA torch, and basicsr's
import of ``torchvision.transforms.functional_tensor`` (renamed in torchvision 0.17). Each case runs in a fresh
process: an import happens once per process."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# a stand-in written like torchvision >= 0.18 where its extension does not load: the import registers a fake
# kernel for torchvision::nms, which fails unless the operator exists
FAKE_INIT = textwrap.dedent(
    """
    import torch

    @torch.library.register_fake("torchvision::nms")
    def _meta_nms(dets, scores, iou_threshold):
        return dets.new_empty(0, dtype=torch.long)

    __version__ = "0.99.0+fake"
    """
)


def _python(code: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join([*(str(p) for p in paths), str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture()
def fake_torchvision(tmp_path: Path) -> Path:
    pkg = tmp_path / "torchvision"
    (pkg / "transforms").mkdir(parents=True)
    (pkg / "__init__.py").write_text(FAKE_INIT)
    (pkg / "transforms" / "__init__.py").write_text("")
    (pkg / "transforms" / "_functional_tensor.py").write_text("def rgb_to_grayscale(img):\n    return img\n")
    return tmp_path


def test_a_torchvision_without_its_extension_imports_while_model_code_is_imported(
    fake_torchvision: Path,
) -> None:
    plain = _python("import torchvision", fake_torchvision)
    assert plain.returncode != 0 and "torchvision::nms does not exist" in plain.stderr  # the failure it fixes
    code = textwrap.dedent(
        """
        from effbench.base.thirdparty import model_import_compat, torchvision_ops_defined
        with model_import_compat():
            import torchvision
            from torchvision.transforms.functional_tensor import rgb_to_grayscale  # basicsr's old name
        print(torchvision.__version__, torchvision_ops_defined(), rgb_to_grayscale(3))
        """
    )
    out = _python(code, fake_torchvision)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0.99.0+fake", "True", "3"]


def test_the_alias_is_only_for_a_name_that_does_not_exist(fake_torchvision: Path) -> None:
    own = fake_torchvision / "torchvision" / "transforms" / "functional_tensor.py"
    own.write_text("WHO = 'the package itself'\n")
    code = (
        "from effbench.base.thirdparty import model_import_compat\n"
        "with model_import_compat():\n"
        "    import torchvision.transforms.functional_tensor as ft\n"
        "print(ft.WHO)\n"
    )
    out = _python(code, fake_torchvision)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "the package itself"


@pytest.mark.skipif(
    importlib.util.find_spec("torchvision") is None, reason="torchvision is in the challenge extra"
)
def test_the_installed_torchvision_timm_and_basicsr_build_a_model_file(tmp_path: Path) -> None:
    model = tmp_path / "net.py"
    uses = ["import torchvision", "from torchvision import transforms  # noqa: F401"]
    for package, line in (
        ("timm", "from timm.models.layers import DropPath  # noqa: F401"),
        ("basicsr", "from basicsr.archs.arch_util import to_2tuple  # noqa: F401"),
    ):
        if importlib.util.find_spec(package) is not None:
            uses.append(line)
    model.write_text(
        "\n".join(uses)
        + "\nimport torch.nn as nn\n\n\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 48, 3, 1, 1)\n        self.up = nn.PixelShuffle(4)\n\n"
        "    def forward(self, x):\n        return self.up(self.conv(x))\n"
    )
    code = f"from effbench import profile\nprint(profile({str(model) + ':Net'!r}, (16, 16)).params)"
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == str(3 * 48 * 9 + 48)
