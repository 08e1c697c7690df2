"""``full`` counts everything the NTIRE 2024 and 2025 entries run: no entry the organisers' ``select_model``
builds here (tests/ntire_unknown_ops.py) leaves an op without a rule (FFT blocks, attention, top-k routing,
sorting and random sampling included)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.shared, pytest.mark.slow, pytest.mark.heavy]

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize(("year", "at_least"), [(2024, 25), (2025, 30)])
def test_full_leaves_no_op_unknown_on_any_built_entry(shared_dir: Path, year: int, at_least: int) -> None:
    repo = shared_dir / "challenges" / f"ntire{year}"
    if not (repo / "test_demo.py").is_file():
        pytest.skip(f"the NTIRE {year} repository is not at {repo}")
    path = os.pathsep.join(p for p in (str(HERE.parent), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": path}
    out = subprocess.run(
        [sys.executable, str(HERE / "ntire_unknown_ops.py"), str(repo)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1500,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    built = [r for r in rows if r["built"]]
    assert len(built) >= at_least, [r for r in rows if not r["built"]]  # the entries that build on a CPU here
    assert {r["name"]: r["unknown_ops"] for r in built if r["unknown_ops"]} == {}
