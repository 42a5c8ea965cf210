"""Smoke run of the load-test harness (`make test-loadtest`, part of `make test`).

Every scenario for 3 seconds, each calibrated by wrk or pgbench for 3 seconds, against a stack of
the harness's own (project fourtier-loadsmoke, its own ports and subnet), which the harness brings
up and takes down itself. It checks the plumbing, not the performance: every report is written,
every scenario made requests and none failed. Load goes only to 127.0.0.1. About 2 minutes.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 3


def test_every_scenario_runs_and_reports(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.harness", "loadtest", "--smoke"]
        + ["--duration", str(SECONDS), "--results-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(done.stdout[-6000:], done.stderr[-3000:])
    assert done.returncode == 0

    (out,) = tmp_path.iterdir()
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "summary.md").read_text().count("\n| ") >= len(summary["results"])
    assert (out / "throughput.png").read_bytes().startswith(b"\x89PNG")
    scenarios = {p.stem for p in (ROOT / "loadtests" / "scenarios").glob("*.conf")}
    assert {r["scenario"] for r in summary["results"]} == scenarios

    for r in summary["results"]:
        name, locust, calibration = r["scenario"], r["locust"], r["calibration"]
        assert (out / f"{name}_stats.csv").exists(), name
        assert (out / f"{name}.html").stat().st_size > 0, name
        assert locust["requests"] > 0 and locust["fail_pct"] == 0, (name, locust)
        assert calibration["rps"] > 0 and calibration["fail_pct"] == 0, (name, calibration)
