"""The same load from a tool written in C, to tell the system's limit from Locust's.

HTTP scenarios: wrk (Debian's package), with as many connections as the scenario has users, two
threads, the same URL (https:// too: wrk speaks TLS, without checking the certificate); the
database-bound mix through loadtests/wrk/messages.lua. The database scenario: pgbench from the db
image (the same PostgreSQL version as the server), run with the host's network so that it connects
to the same address Locust does, with the same two statements in the same 4:1 proportion, prepared,
one connection per Locust user. If the C tool gets much more out of a tier than Locust did, the
figure was Locust's limit, not the tier's.

Each tool first runs `warmup` seconds of the same load, whose figures are thrown away: the first
seconds after a fresh start fill caches, open the app's pooled connections, and let the servers
and the kernel reach their steady state. Locust needs no such run: its statistics start once every
user is running (`reset-stats` in the scenario files). During the measured run the containers'
CPU is sampled as during Locust's, so the CPU table of the C tool's run has no Python generator
in it.
"""

import json
import os
import re
import shutil
from pathlib import Path

from ..locustfiles import targets
from . import measure
from .scenarios import Scenario
from .stack import ROOT, SECRET, Stack

WRK_DIR = ROOT / "loadtests" / "wrk"
GET_PATHS = {
    "static": targets.STATIC_PATH,
    "newconn": targets.STATIC_PATH,
    "whoami": targets.WHOAMI_PATH,
    "ceiling": targets.CEILING_PATH,
}
TIMEOUT = "10s"  # wrk's default (2s) would count slow answers of an overloaded tier as errors


def wrk_missing() -> bool:
    return shutil.which("wrk") is None


def run(
    scenario: Scenario, stack: Stack, seconds: int, warmup: int, out: Path, containers: dict
) -> dict | None:
    if scenario.tag == "database":
        return pgbench(scenario, stack, seconds, warmup, out, containers)
    if wrk_missing():
        return None
    host = scenario.host(stack.endpoints)
    cmd = ["wrk", "-t", "2", "-c", str(scenario.users), "--timeout", TIMEOUT]
    env = {}
    if scenario.tag == "messages":
        cmd += ["-s", str(WRK_DIR / "messages.lua"), host]
        env = {
            "WRK_LIST_PATH": targets.LIST_PATH,
            "WRK_POST_PATH": targets.MESSAGES_PATH,
            "WRK_BODY": json.dumps(targets.MESSAGE),
            "WRK_READ_WEIGHT": str(targets.READ_WEIGHT),
            "WRK_WRITE_WEIGHT": str(targets.WRITE_WEIGHT),
        }
    else:
        if scenario.tag == "newconn":
            # As NewConnectionUser: the server closes after each answer, wrk connects again
            # (over HTTPS: a full handshake each time; wrk keeps no TLS session to resume).
            cmd += ["-H", "Connection: close"]
        cmd += ["-s", str(WRK_DIR / "report.lua"), host + GET_PATHS[scenario.tag]]
    print(
        f"   wrk     {scenario.name:<18} {warmup}s warm-up + {seconds}s, "
        f"{scenario.users} connections ...",
        flush=True,
    )
    if warmup:
        measure.run([*cmd, "-d", f"{warmup}s"], warmup, env=env)
    m = measure.run([*cmd, "-d", f"{seconds}s"], seconds, env=env, containers=containers)
    (out / f"{scenario.name}.wrk.txt").write_text(m.stdout + m.stderr)
    line = next((x for x in m.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if line is None:
        return {"tool": "wrk", "rps": 0.0, "error": (m.stderr or m.stdout)[-300:]}
    r = json.loads(line.removeprefix("WRK_JSON "))
    return {
        "tool": "wrk",
        "requests": r["requests"],
        "rps": round(r["requests"] / (r["duration_us"] / 1e6), 1),
        "p50_ms": r["p50_ms"],
        "p95_ms": r["p95_ms"],
        "p99_ms": r["p99_ms"],
        "fail_pct": round(100 * r["errors"] / r["requests"], 2) if r["requests"] else 100.0,
        "cpu_cores": round(m.cpu_cores, 2),
        "cpu_by_tier": measure.by_tier(m.tiers),
        "cpu_series": m.cpu_series,
        "noise": m.noise,
    }


def pgbench(
    scenario: Scenario, stack: Stack, seconds: int, warmup: int, out: Path, containers: dict
) -> dict:
    """pgbench with the Locust DatabaseUser's statements, from the db image, on the host's
    network, to the database's address (its container's, or the published port)."""
    scripts = out / f"{scenario.name}.pgbench"
    scripts.mkdir(exist_ok=True)
    author, text = (targets.MESSAGE[k].replace("'", "''") for k in ("author", "text"))
    (scripts / "read.sql").write_text(targets.SELECT_NEWEST + ";\n")
    (scripts / "write.sql").write_text(
        targets.INSERT_MESSAGE % (f"'{author}'", f"'{text}'") + ";\n"
    )
    os.chmod(scripts, 0o777)  # pgbench writes its per-transaction log here, as the image's user
    image = f"fourtier/db:{os.environ.get('IMAGE_TAG') or 'latest'}"
    db = stack.endpoints["BENCH_DB_PORT"]
    cmd = ["docker", "run", "--rm", "--network", "host", "-e", "PGPASSWORD", "-v", f"{scripts}:/w"]
    cmd += ["-w", "/w", "--entrypoint", "pgbench", image]
    cmd += ["-h", db.host, "-p", str(db.port), "-U", "guestbook_app", "-n"]
    cmd += ["-M", "prepared", "-c", str(scenario.users), "-j", "2"]
    cmd += ["-f", f"read.sql@{targets.READ_WEIGHT}", "-f", f"write.sql@{targets.WRITE_WEIGHT}"]
    print(
        f"   pgbench {scenario.name:<18} {warmup}s warm-up + {seconds}s, "
        f"{scenario.users} connections ...",
        flush=True,
    )
    env = {"PGPASSWORD": SECRET.read_text().strip()}
    if warmup:
        measure.run([*cmd, "-T", str(warmup), "guestbook"], warmup, env=env)
    # -l: a log line per transaction (in /w), from which the percentiles below are read.
    cmd += ["-T", str(seconds), "-l", "guestbook"]
    m = measure.run(cmd, seconds, env=env, containers=containers)
    (out / f"{scenario.name}.pgbench.txt").write_text(m.stdout + m.stderr)
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", m.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", m.stdout)
    done = re.search(r"number of transactions actually processed: (\d+)", m.stdout)
    latencies = []
    for log in scripts.glob("pgbench_log.*"):
        latencies += [int(line.split()[2]) / 1000 for line in log.read_text().splitlines() if line]
        log.unlink()
    latencies.sort()

    def pct(p: float) -> float | None:
        return (
            round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 3)
            if latencies
            else None
        )

    processed = int(done[1]) if done else 0
    errors = int(failed[1]) if failed else 0
    return {
        "tool": "pgbench",
        "requests": processed + errors,
        "rps": float(tps[1]) if tps else 0.0,
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "fail_pct": round(100 * errors / (processed + errors), 2) if processed + errors else 100.0,
        "cpu_cores": None,  # pgbench runs in a container, outside the harness's process tree
        "cpu_by_tier": measure.by_tier(m.tiers),
        "cpu_series": m.cpu_series,
        "noise": m.noise,
        **({} if tps else {"error": (m.stderr or m.stdout)[-300:]}),
    }
