#!/usr/bin/env python3
"""measure-scrapes.py - what one Prometheus scrape of each target costs the stack, and what the
scrape interval makes of it.

    .venv/bin/python scripts/measure-scrapes.py PROJECT [SCRAPES]     (default 40 per target)

Monitoring's fixed cost (docs/monitoring.md, "What monitoring costs") is Prometheus's work plus
what each target spends answering it: an exporter's queries, PostgreSQL running them, etcd
encoding its ~1,460 series, Patroni asking PostgreSQL for its state. measure-idle.py gives the sum;
this splits it by target. For each target of monitor/prometheus.yml it asks the same URL
Prometheus asks (path and params), SCRAPES times one after the other, at the target container's
address on the stack's own network, and reads every container's CPU counter (its cgroup) before
and after. A target's cost is what all the stack's containers spent more than in the same time
idle (measured first), divided by the scrapes; times the scrapes per second its job's interval
makes, it is that target's share of a core.

Only the stack's own containers are asked (their addresses on the project's networks); run it on
an idle stack (`make up`, a minute's wait), with nothing else running on the machine.
"""

import gzip
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from loadtests.harness import measure  # noqa: E402  (after the path is set)
from loadtests.harness.stack import running_containers  # noqa: E402

# The headers Prometheus 2.53 sends with a scrape: a compressed answer (which costs the target
# the compressing), in the text format.
ASKS = {
    "Accept": "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
}
CONFIG = Path(__file__).resolve().parent.parent / "monitor" / "prometheus.yml"


def seconds(duration: str) -> float:
    """A Prometheus duration as used in prometheus.yml ("2s", "10s", "1m") in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for unit in sorted(units, key=len, reverse=True):
        if duration.endswith(unit):
            return float(duration[: -len(unit)]) * units[unit]
    raise ValueError(duration)


def targets(config: dict):
    """(job, "service:port", URL path with its query, scrape interval in seconds) per target."""
    default = seconds(config.get("global", {}).get("scrape_interval", "1m"))
    for job in config["scrape_configs"]:
        interval = seconds(job["scrape_interval"]) if "scrape_interval" in job else default
        query = urllib.parse.urlencode(job.get("params", {}), doseq=True)
        path = job.get("metrics_path", "/metrics") + (f"?{query}" if query else "")
        for static in job["static_configs"]:
            for target in static["targets"]:
                yield job["job_name"], target, path, interval


def address(container: dict) -> str:
    """The container's address on its first network (every network of the stack is the project's
    own)."""
    networks = container["NetworkSettings"]["Networks"]
    return next(net["IPAddress"] for net in networks.values() if net["IPAddress"])


def cpu(files: dict[str, Path]) -> dict[str, float]:
    return {name: measure.read_cgroup_seconds(path) for name, path in files.items()}


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    project = sys.argv[1]
    scrapes = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    running = running_containers(project)
    files = measure.container_cpu_files(running)
    config = yaml.safe_load(CONFIG.read_text())

    # What the stack spends per second with nobody asking it anything extra (Prometheus keeps
    # scraping: its own scrapes are in this baseline, so a target's figure is ours alone).
    before, start = cpu(files), time.monotonic()
    time.sleep(10)
    after, idle_span = cpu(files), time.monotonic() - start
    idle = {name: (after[name] - before[name]) / idle_span for name in files}

    print(f"{project}: {scrapes} scrapes of each target, one after the other")
    print(
        f"{'job':10s} {'target':22s} {'bytes':>8s} {'lines':>6s} "
        f"{'ms CPU/scrape':>13s} {'interval':>8s} {'cores':>6s}  where the CPU went"
    )
    total = 0.0
    for job, target, path, interval in targets(config):
        service, port = target.rsplit(":", 1)
        host = "vip" if service == "vip" else service
        if host not in running:
            # The `vip` job asks lb1 or lb2 through the virtual IP: measure lb1 for it.
            host = "lb1" if service == "vip" else None
        if host is None:
            print(f"{job:10s} {target:22s} (not running)")
            continue
        url = f"http://{address(running[host])}:{port}{path}"
        before, start = cpu(files), time.monotonic()
        size = lines = 0
        for _ in range(scrapes):
            with urllib.request.urlopen(
                urllib.request.Request(url, headers=ASKS), timeout=5
            ) as answer:
                body = answer.read()
            if answer.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            size = len(body)
            lines = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        after, span = cpu(files), time.monotonic() - start
        spent = {
            name: (after[name] - before[name]) - idle[name] * span for name in files
        }  # seconds of CPU more than idle, per container
        per_scrape = sum(max(value, 0.0) for value in spent.values()) / scrapes
        cores = per_scrape / interval
        total += cores
        where = ", ".join(
            f"{name} {value / scrapes * 1000:.1f}"
            for name, value in sorted(spent.items(), key=lambda kv: -kv[1])
            if value / scrapes > 0.0003
        )
        print(
            f"{job:10s} {target:22s} {size:8d} {lines:6d} {per_scrape * 1000:13.1f} "
            f"{interval:7.0f}s {cores:6.3f}  {where}"
        )
    print(f"{'all targets':33s} {'':15s} {'':13s} {'':8s} {total:6.3f} cores")


if __name__ == "__main__":
    main()
