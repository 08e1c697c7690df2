"""The HTML report in a real browser: Debian's headless Chromium renders it; the rendered DOM shows the table
sorted and filtered as the address asks, runtimes with their intervals, every figure drawn with hover details, no
script error, each memory-timeline note inside its own panel at any number of models (the elements' boxes as the
browser lays them out); a screenshot is written next to the report."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from effbench.base.results import new_result
from effbench.report import render_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (Debian: apt-get install -y chromium; .ci/run does it)",
)

# name: (runtime ms, predicted peak MiB, params, GFLOPs, PSNR)
MODELS = {
    "fast": (20.0, 90.0, 300e3, 20.0, 28.90),
    "small": (30.0, 40.0, 250e3, 15.0, 28.95),
    "good": (45.0, 120.0, 700e3, 50.0, 29.20),
    "slow": (80.0, 300.0, 900e3, 60.0, 29.00),
    "mid": (33.0, 95.0, 420e3, 25.0, 28.97),
}


def _docs(models: dict[str, tuple] = MODELS, where: str = "body.3") -> list[dict]:
    docs = []
    for name, (rt, mib, params, gflops, psnr) in models.items():
        timeline = [int((1 + (i % 9) / 9) * mib / 2 * 2**20) for i in range(40)] + [int(mib * 2**20)]
        docs.append(
            new_result(
                name,
                scale=4,
                input_shape=[1, 3, 128, 128],
                device="cpu",
                dtype="fp32",
                protocol="steady",
                convention="full",
                env={"cpu_model": "Test CPU", "cpu_count": 2, "torch_threads": 1, "torch_version": "2.13.0"},
                metrics={
                    "params": params,
                    "flops": gflops * 1e9,
                    "runtime_ms": {
                        "median": rt,
                        "repeats": 8,
                        "samples": [rt * (1 + 0.01 * k) for k in range(-4, 4)],
                    },
                    "peak_memory_predicted_bytes": int(mib * 2**20),
                    "peak_memory_at": {
                        "where": where,
                        "block_type": "Block",
                        "op": "conv",
                        "features_x": 4.5,
                        "parts": [["input of the block", 2.0], ["branch output", 1.5]],
                    },
                    "memory_timeline": timeline,
                    "activations": params * 100,
                    "convs": 30,
                    "psnr": psnr,
                    "op_time": {
                        "kinds": {"conv": rt * 0.6, "elementwise": rt * 0.3, "other": rt * 0.1},
                        "conv_gflop_per_s": 50.0,
                    },
                },
            )
        )
    return docs


def _chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=3000",
        *extra,
        url,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


def _order(dom: str) -> list[str]:
    return re.findall(r'<tr data-model="([^"]+)"', dom)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("browser_report")
    render_report(_docs(), out, baseline="mid")
    return out / "report.html"


def test_the_page_sorts_filters_draws_every_figure_without_errors(report: Path, tmp_path: Path) -> None:
    url = report.as_uri()
    run = _chromium(f"{url}#sort=-runtime_ms", tmp_path / "p1", "--dump-dom")
    dom = run.stdout
    assert 'data-ready="yes"' in dom  # the page script ran to its end
    assert re.search(r'<pre id="errors" hidden="">\s*</pre>', dom), "the page recorded script errors"
    assert "Uncaught" not in run.stderr and "CONSOLE" not in run.stderr
    # sorted by runtime, slowest first; the header says so
    assert _order(dom) == sorted(MODELS, key=lambda m: -MODELS[m][0])
    assert re.search(r'<th [^>]*aria-sort="descending"[^>]*>Runtime</th>', dom)
    # every figure drew (an SVG with a size and content) and its markers carry hover details
    figures = re.findall(r'<figure class="fig" data-stem="([^"]+)"[^>]*data-rendered="(\w+)"', dom)
    stems = {s for s, _ in figures}
    assert {
        "fig1_runtime_memory",
        "pareto_psnr_runtime",
        "pareto_flops_runtime",
        "memory_timelines",
        "breakdown_op_time",
    } <= stems
    assert all(ok == "yes" for _, ok in figures) and len(figures) == dom.count('<figure class="fig"')
    assert dom.count('class="hover"><title>') >= 4 * len(MODELS)

    # the runtime column shows each median with its interval as it is, never a symmetric ±
    runtimes = re.findall(r'<tr data-model="[^"]+"[^>]*>(?:<td[^>]*>.*?</td>){3}<td[^>]*>(.*?)</td>', dom)
    assert len(runtimes) == len(MODELS) and all(
        re.fullmatch(r"[\d.]+ms \[[\d.]+, [\d.]+\]", t) for t in runtimes
    )
    assert "±" not in dom

    # ascending by PSNR, then only the models whose name holds "s"
    dom = _chromium(f"{url}#sort=psnr_db&filter=s", tmp_path / "p2", "--dump-dom").stdout
    assert _order(dom) == sorted(MODELS, key=lambda m: MODELS[m][4])
    hidden = set(re.findall(r'<tr data-model="([^"]+)"[^>]* hidden=""', dom))
    assert hidden == {m for m in MODELS if "s" not in m}


def test_a_script_error_is_recorded_in_the_page(report: Path, tmp_path: Path) -> None:
    # the check above can fail: a sort by a column the table lacks throws, and the page shows it
    run = _chromium(f"{report.as_uri()}#sort=no_such_column", tmp_path / "p", "--dump-dom")
    errors = re.search(r'<pre id="errors">(.*?)</pre>', run.stdout, re.S)
    assert errors and "no column no_such_column" in errors.group(1)
    assert "CONSOLE" in run.stderr and "Uncaught Error: no column" in run.stderr


def test_a_screenshot_is_written_next_to_the_report(report: Path, tmp_path: Path) -> None:
    shot = report.with_name("report_screenshot.png")
    _chromium(
        report.as_uri(),
        tmp_path / "p",
        f"--screenshot={shot}",
        "--window-size=1280,2000",
        "--hide-scrollbars",
    )
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)
    assert img.shape[:2] == (2000, 1280)
    assert img[..., :3].std() > 0.05  # not a blank page


# The page measures, once laid out, the box of every memory-timeline note and of its panel.
_BOXES = """<script>(function(){var out=[];
document.querySelectorAll('g[id^="memory_timelines-note"]').forEach(function(g){
  var p=document.getElementById(g.id.replace('-note','-panel'));
  var a=g.getBoundingClientRect(),b=p?p.getBoundingClientRect():null;
  out.push({note:g.id,box:[a.left,a.top,a.right,a.bottom],panel:b?[b.left,b.top,b.right,b.bottom]:null});});
var pre=document.createElement('pre');pre.id='boxes';pre.textContent=JSON.stringify(out);
document.body.appendChild(pre);})();</script>"""


def _note_boxes(report: Path, tmp_path: Path) -> list[dict]:
    page = tmp_path / "measured.html"
    page.write_text(report.read_text().replace("</body>", _BOXES + "</body>"))
    dom = _chromium(page.as_uri(), tmp_path / "profile", "--window-size=1280,2000", "--dump-dom").stdout
    found = re.search(r'<pre id="boxes">(.*?)</pre>', dom, re.S)
    assert found, "the measuring script did not run"
    return json.loads(found.group(1).replace("&quot;", '"'))


@pytest.mark.parametrize(
    "count", [pytest.param(1, marks=pytest.mark.slow), 5, pytest.param(10, marks=pytest.mark.slow)]
)
def test_each_memory_timeline_note_stays_inside_its_own_panel(count: int, tmp_path: Path) -> None:
    models = {f"model_{i}_with_a_long_name" if i % 3 == 0 else f"m{i}": MODELS["mid"] for i in range(count)}
    where = "body.blocks.7.attention.branch_a.conv_sigmoid_gate_with_a_long_module_path"
    render_report(_docs(models, where), tmp_path / "report")
    boxes = _note_boxes(tmp_path / "report" / "report.html", tmp_path)
    assert len(boxes) == count
    for b in boxes:
        (left, top, right, bottom), (p_left, p_top, p_right, p_bottom) = b["box"], b["panel"]
        assert right - left > 20 and bottom - top > 5, f"{b['note']} is not drawn"
        inside = p_left <= left and right <= p_right and p_top <= top and bottom <= p_bottom
        assert inside, f"{b['note']} {b['box']} leaves its panel {b['panel']}"
