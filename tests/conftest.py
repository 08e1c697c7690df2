"""Shared fixtures: where ../shared is, and the weights cache pointed at it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# tests/data holds other people's code as data (a challenge repository with its own test_demo.py): not tests
collect_ignore_glob = ["data/*"]

SHARED = Path(os.environ.get("EFFBENCH_SHARED_DIR", ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared material not found at {SHARED} (set EFFBENCH_SHARED_DIR)")
    return SHARED


@pytest.fixture(scope="session")
def weights_dir(shared_dir: Path) -> Path:
    d = shared_dir / "weights"
    if not d.is_dir():
        pytest.skip(f"official checkpoints not found at {d}")
    return d


@pytest.fixture()
def weights_cache(weights_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point effbench's weights cache at ../shared/weights for the test."""
    monkeypatch.setenv("EFFBENCH_WEIGHTS_DIR", str(weights_dir))
    return weights_dir


@pytest.fixture(scope="session")
def data_dir(shared_dir: Path) -> Path:
    d = shared_dir / "data"
    if not d.is_dir():
        pytest.skip(f"test images not found at {d}")
    return d


@pytest.fixture()
def one_thread():
    """Small tensors: one intra-op thread avoids oversubscribing the shared 2-core CI machine (about 10x faster)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
