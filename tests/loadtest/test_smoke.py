"""Smoke run of the load-test harness (`make test-loadtest`, part of `make test`).

Every scenario for 5 seconds, each calibrated by wrk or pgbench for 5 seconds (after a 1-second
warm-up), against a stack of the harness's own (project fourtier-loadsmoke, its own ports and
subnet), which the harness brings up and takes down itself. It checks the plumbing, not the
performance: every report is written, every scenario made requests and none failed, the load went
straight to the containers (not through docker-proxy), the report describes Docker's storage and
log drivers, CPU was measured during the wrk/pgbench runs too, and each scenario has its chart of
every node's figures over the run (from Prometheus). It records the quiet-machine
check before each run but never waits for a quiet machine (--quiet-wait 0): the figures of a smoke
run mean nothing anyway. Load goes only to the stack's containers. About 2 minutes.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Per scenario and tool. 3 s was too short on a slow machine: 32 Locust users opening TLS
# connections at once stalled for ~2 s, and the measured window after the 1 s warm-up held no
# finished request (lb-static-https, 2026-11-23).
SECONDS = 5


def test_every_scenario_runs_and_reports(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.harness", "loadtest", "--smoke"]
        + ["--duration", str(SECONDS), "--warmup", "1", "--quiet-wait", "0"]
        + ["--results-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(done.stdout[-6000:], done.stderr[-3000:])
    assert done.returncode == 0

    (out,) = tmp_path.iterdir()
    summary = json.loads((out / "summary.json").read_text())
    text = (out / "summary.md").read_text()
    assert text.count("\n| ") >= 3 * len(summary["results"])  # the table and two CPU tables
    assert (out / "throughput.png").read_bytes().startswith(b"\x89PNG")
    scenarios = {p.stem for p in (ROOT / "loadtests" / "scenarios").glob("*.conf")}
    assert {r["scenario"] for r in summary["results"]} == scenarios

    # Load went to the containers' own addresses: on Linux the host reaches them all.
    assert summary["path"].startswith("direct to container addresses"), summary["path"]
    assert "- path: direct to container addresses" in text
    # The LBs' per-client limits are lifted for load tests (compose.bench.yml), and said so.
    assert "lb limits per client off" in text and "http->https redirect off" in text
    # HAProxy's thread count, read back from its stats page: one per CPU by default.
    assert summary["settings"]["lb threads"].isdigit(), summary["settings"]
    # The machine's description names Docker's drivers and the stack's log driver.
    machine = summary["machine"]
    for key in ("docker_storage_driver", "docker_logging_driver", "container_log_driver"):
        assert machine[key] not in ("", "?"), (key, machine)
    assert f"storage driver {machine['docker_storage_driver']}" in text
    assert f"containers log with {machine['container_log_driver']}" in text
    assert "during the wrk/pgbench run" in text

    for r in summary["results"]:
        name, locust, calibration = r["scenario"], r["locust"], r["calibration"]
        assert (out / f"{name}_stats.csv").exists(), name
        assert (out / f"{name}.html").stat().st_size > 0, name
        assert locust["requests"] > 0 and locust["fail_pct"] == 0, (name, locust)
        assert calibration["rps"] > 0 and calibration["fail_pct"] == 0, (name, calibration)
        # CPU per tier during both runs, and the quiet-machine check before each.
        for run in (locust, calibration):
            assert {"lb", "web", "app", "db", "dockerd"} <= run["cpu_by_tier"].keys(), (name, run)
            assert run["quiet"]["idle_cpu_pct"] >= 0, (name, run)
            # A core's speed before and after the run; steal and iowait during it.
            assert run["quiet"]["core_ms"] > 0 and run["noise"]["core_ms_after"] > 0, (name, run)
            assert {"steal_pct", "iowait_pct"} <= run["noise"].keys(), (name, run)
            # The machine's context switches were counted. A request that reaches the app wakes
            # at least one of its threads: more switches than requests there. Not on the other
            # scenarios: an nginx worker kept busy by keep-alive connections answers many
            # requests per wake-up (generator-ceiling: ~70,000 req/s, fewer switches a second).
            switches = run["noise"]["switches_per_s"]
            assert switches > 0, (name, run["noise"])
            if name.startswith(("app-", "web-dynamic", "lb-dynamic", "lb-messages")):
                assert switches > run["rps"], (name, run["noise"], run["rps"])
        # Each node's figures over the run, from the stack's Prometheus, charted beside the
        # report; the whole-stack scenarios moved every lb, web and app node's series.
        assert (out / f"tiers-{name}.png").read_bytes().startswith(b"\x89PNG"), name
        assert "error" not in locust["prometheus"], (name, locust["prometheus"])
        if name == "lb-messages":
            served = {
                node
                for node, points in locust["prometheus"]["requests/s"].items()
                if max(v for _, v in points) > 0
            }
            assert {"web/web1", "web/web2", "app/app1", "app/app2"} <= served, served
