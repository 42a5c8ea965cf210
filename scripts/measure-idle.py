#!/usr/bin/env python3
"""measure-idle.py - what a Compose project's stack costs the machine while nobody sends it a
request: each container's CPU, Docker's own processes, and what neither accounts for.

    .venv/bin/python scripts/measure-idle.py PROJECT [SECONDS]     (default 60 s)

An idle stack is not free: health checks (Docker's, HAProxy's, keepalived's), Patroni's and etcd's
loops, Prometheus's scrapes. On a 2-core machine every tenth of a core it takes is a tenth less
for the servers under load, and noise in every load test (docs/monitoring.md, "What monitoring
costs"; docs/load-testing.md). Run it on a stack left idle for a minute after `make up`.

Reads the same counters as the load-test harness (loadtests/harness/measure.py): each container's
cgroup, and dockerd, containerd and its shims ("dockerd"), fuse-overlayfs ("storage") and
docker-proxy ("proxy") by process. "unaccounted" is the whole machine's busy time (/proc/stat)
minus all of those: mostly the short-lived processes no counter above sees, chiefly `runc`, which
dockerd starts for every Docker healthcheck (a `docker exec`), and the kernel's own work.
"""

import sys
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from loadtests.harness import measure  # noqa: E402  (after the path is set)
from loadtests.harness.stack import running_containers  # noqa: E402


def busy_seconds(times) -> float:
    """CPU seconds spent busy, all cores together (steal included: time the host took)."""
    return times.user + times.nice + times.system + times.irq + times.softirq + times.steal


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    project = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    # The harness's own view of a project's containers (service -> `docker inspect`).
    running = running_containers(project)
    files = measure.container_cpu_files(running)
    before = psutil.cpu_times()
    # The "load generator" is `sleep`: the harness's sampler, measuring nothing but the stack.
    measured = measure.run(["sleep", str(seconds)], seconds, containers=files)
    after = psutil.cpu_times()
    elapsed = (busy_seconds(after) + after.idle + after.iowait) - (
        busy_seconds(before) + before.idle + before.iowait
    )
    machine = (busy_seconds(after) - busy_seconds(before)) / elapsed * psutil.cpu_count()
    counted = sum(measured.tiers.values())
    print(f"{project}, idle for {seconds:.0f} s, in cores (1.0 = one core busy all the time)")
    print(f"  {'whole machine':22s} {machine:.3f}  ({machine / psutil.cpu_count():.0%} of it)")
    for name, cores in sorted(measured.tiers.items(), key=lambda kv: -kv[1]):
        print(f"  {name:22s} {cores:.3f}")
    print(f"  {'unaccounted':22s} {machine - counted:.3f}")
    print("by tier:", measure.by_tier(measured.tiers))


if __name__ == "__main__":
    main()
