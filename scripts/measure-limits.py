#!/usr/bin/env python3
"""measure-limits.py - the peak memory and process count of every container of a Compose project,
to size docker-compose.yml's mem_limit and pids_limit (docs/security.md, "Hardened containers").

    scripts/measure-limits.py PROJECT SECONDS [OUTPUT.json]

Samples each running container of PROJECT every 0.5 s for at most SECONDS (or until interrupted)
and keeps, per service, the highest value seen of:
  memory  what `docker stats` shows: the cgroup's usage minus its inactive file cache (cache the
          kernel can drop before the limit is hit); the limit must sit above this peak
  cache   the same with the whole page cache counted (the cgroup's raw usage)
  pids    processes and threads in the cgroup (pids.current), what pids_limit counts
Containers restarted during the run (failover tests kill them) are followed by name. Reads the
cgroup v1 or v2 files of the host directly: no load on the Docker daemon beyond one `docker ps`
per second. Prints a table at the end and writes the peaks as JSON if OUTPUT is given.
"""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def containers(project: str) -> dict[str, str]:
    """service -> full container id, for the project's running containers."""
    out = subprocess.run(
        [
            "docker",
            "ps",
            "--no-trunc",
            "--filter",
            f"label=com.docker.compose.project={project}",
            "--format",
            '{{.ID}} {{.Label "com.docker.compose.service"}}',
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {service: cid for cid, service in (line.split() for line in out.splitlines())}


def read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


# cgroup v1 has one hierarchy per controller (memory/, pids/); v2 one unified tree.
CGROUP_V1 = (CGROUP / "memory").is_dir()


def cgroup_v2_dir(cid: str) -> Path | None:
    """The container's directory in the unified tree (its path depends on the cgroup driver)."""
    for base in (CGROUP / "docker", CGROUP / "system.slice"):
        for candidate in (base / cid, base / f"docker-{cid}.scope"):
            if candidate.is_dir():
                return candidate
    return None


def sample(cid: str) -> tuple[int, int, int] | None:
    """(memory without inactive file cache, raw memory, pids) of one container, or None when it
    is not running (a stopped container has no cgroup)."""
    if CGROUP_V1:
        memory = CGROUP / "memory" / "docker" / cid
        usage, stat = read(memory / "memory.usage_in_bytes"), read(memory / "memory.stat")
        pids = read(CGROUP / "pids" / "docker" / cid / "pids.current")
        inactive_key = "total_inactive_file"
    else:
        base = cgroup_v2_dir(cid)
        if base is None:
            return None
        usage, stat = read(base / "memory.current"), read(base / "memory.stat")
        pids = read(base / "pids.current")
        inactive_key = "inactive_file"
    if usage is None or stat is None or pids is None:
        return None
    fields = dict(line.split() for line in stat.splitlines())
    raw = int(usage)
    return raw - int(fields.get(inactive_key, 0)), raw, int(pids)


def main() -> None:
    project, seconds = sys.argv[1], float(sys.argv[2])
    output = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    peaks: dict[str, list[int]] = {}
    stop = False

    def finish(*_) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    end = time.monotonic() + seconds
    ids: dict[str, str] = {}
    next_listing = 0.0
    while not stop and time.monotonic() < end:
        if time.monotonic() >= next_listing:
            ids = containers(project)
            next_listing = time.monotonic() + 1
        for service, cid in ids.items():
            values = sample(cid)
            if values is not None:
                old = peaks.setdefault(service, [0, 0, 0])
                peaks[service] = [max(a, b) for a, b in zip(old, values, strict=True)]
        if output:
            output.write_text(json.dumps(peaks, indent=1, sort_keys=True))
        time.sleep(0.5)
    print(f"{'service':8} {'memory MiB':>10} {'with cache':>10} {'pids':>5}")
    for service, (memory, raw, pids) in sorted(peaks.items()):
        print(f"{service:8} {memory / 2**20:10.1f} {raw / 2**20:10.1f} {pids:5d}")


if __name__ == "__main__":
    main()
