"""Reading results never imports torch: rendering a report (markdown, CSV, JSON, HTML, figures) from result files
with runtime samples, and gating them, through the API and through ``effbench report`` / ``effbench gate``, runs in
a process where ``torch`` stays unimported (base/catalogue.py's promise, kept by the statistics of
:mod:`effbench.base.stats`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import sys
from pathlib import Path

from effbench.base.results import new_result, write_json_atomic
from effbench.ci.gate import gate
from effbench.cli import main
from effbench.report.render import render_report

out = Path(sys.argv[1])
for folder, shift in (("base", 0.0), ("cur", 0.1)):  # 0.5 to 1 % slower: within the gate's 5 %
    for model, ms in (("a", 10.0), ("b", 20.0)):
        samples = [ms + shift + 0.1 * (i % 7) for i in range(12)]  # samples only: the interval is computed here
        runtime = {"median": sorted(samples)[6], "repeats": len(samples), "samples": samples}
        doc = new_result(model, scale=4, input_shape=[1, 3, 64, 64], device="cpu", dtype="fp32",
                         metrics={"params": 1000, "flops": 2000, "runtime_ms": runtime})
        write_json_atomic(out / folder / f"{model}.json", doc)
written = render_report(str(out / "cur"), out / "report", baseline="a", figures=False)
result = gate(out / "base", out / "cur")
print("WROTE", sorted(p.name for p in written), "GATE", result.exit_code)
print("INTERVAL", "[" in (out / "report" / "report.md").read_text())
codes = [main(["report", str(out / "cur"), "--out", str(out / "cli")]),  # with its figures (matplotlib)
         main(["gate", "--baseline", str(out / "base"), "--current", str(out / "cur")])]
print("CLI", codes, sorted(p.suffix for p in (out / "cli").iterdir() if p.suffix in (".png", ".html"))[:2])
print("TORCH", "torch" in sys.modules)
"""


def test_reports_and_the_gate_run_without_torch(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert "report.md" in out.stdout and "INTERVAL True" in out.stdout, out.stdout
    assert "CLI [0, 0] ['.html', '.png']" in out.stdout, out.stdout + out.stderr
    assert "TORCH False" in out.stdout, out.stdout


def test_the_report_and_gate_modules_import_no_torch() -> None:
    probe = (
        "import sys, effbench.report.table, effbench.report.markdown, effbench.report.html, "
        "effbench.report.render, effbench.ci.gate, effbench.ci.baseline, effbench.base.stats, "
        "effbench.base.catalogue; print('TORCH', 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.stdout.strip() == "TORCH False", out.stdout + out.stderr
