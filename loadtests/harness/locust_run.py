"""One Locust run of one scenario: the command, its CSV and HTML report, the figures from them.

The scenario's own config file gives the load (users, tags, ...); the harness adds only the run's
duration, the host of the stack it started, the number of processes and where the reports go. The
exact command is saved beside the reports, so a figure can always be reproduced.
"""

import csv
import json
import shlex
import sys
from pathlib import Path

from . import measure
from .scenarios import Scenario

ROOT = Path(__file__).resolve().parents[2]


def command(scenario: Scenario, host: str, seconds: int, out: Path, processes: int) -> list[str]:
    prefix = out / scenario.name
    cmd = [sys.executable, "-m", "locust", "--config", str(scenario.path.relative_to(ROOT))]
    cmd += ["--host", host, "--run-time", f"{seconds}s"]
    cmd += ["--csv", str(prefix), "--html", f"{prefix}.html"]
    if processes > 1:
        # Locust forks a master and this many workers (Locust >= 2.19, Linux).
        cmd += ["--processes", str(processes)]
    return cmd


def run(
    scenario: Scenario, host: str, seconds: int, out: Path, processes: int = 1, containers=None
) -> dict:
    cmd = command(scenario, host, seconds, out, processes)
    (out / f"{scenario.name}.command.txt").write_text(shlex.join(cmd) + "\n")
    print(f"   locust  {scenario.name:<18} {seconds}s, {scenario.users} users ...", flush=True)
    m = measure.run(cmd, seconds, cwd=ROOT, containers=containers)
    (out / f"{scenario.name}.locust.log").write_text(m.stdout + m.stderr)
    figures = read_stats(out / f"{scenario.name}_stats.csv")
    summary_file = out / f"{scenario.name}_run.json"
    verdict = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    return {
        **figures,
        "exit_code": m.returncode,
        "problems": verdict.get("problems", [] if m.returncode == 0 else ["locust failed"]),
        "cpu_warning": verdict.get("cpu_warning", False) or "CPU usage" in m.stderr,
        "cpu_cores": round(m.cpu_cores, 2),
        "cpu_cores_max": round(m.cpu_cores_max, 2),
        "machine_cpu_pct": round(m.machine_cpu, 1),
        "processes": processes,
        "cpu_by_tier": measure.by_tier(m.tiers),
        "cpu_series": m.cpu_series,
        "noise": m.noise,
    }


def read_stats(path: Path) -> dict:
    """The Aggregated row of Locust's <prefix>_stats.csv."""
    if not path.exists():
        return {
            "requests": 0,
            "rps": 0.0,
            "p50_ms": None,
            "p95_ms": None,
            "p99_ms": None,
            "fail_pct": 100.0,
        }
    with path.open(newline="") as f:
        rows = [row for row in csv.DictReader(f) if row["Name"] == "Aggregated"]
    row = rows[-1]
    requests, failures = int(row["Request Count"]), int(row["Failure Count"])

    def ms(column: str) -> float | None:
        return None if row[column] in ("N/A", "") else float(row[column])

    return {
        "requests": requests,
        "rps": round(float(row["Requests/s"]), 1),
        "p50_ms": ms("50%"),
        "p95_ms": ms("95%"),
        "p99_ms": ms("99%"),
        "fail_pct": round(100 * failures / requests, 2) if requests else 100.0,
    }
