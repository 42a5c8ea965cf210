"""Run a load generator as a bounded subprocess and measure the CPU it, and every tier, used.

Every run is bounded twice: by the tool's own duration (Locust --run-time, wrk -d, pgbench -T) and
by a hard `timeout` around the process. Load lasting longer than 15 s in all is done holding the
machine-wide heavy-load lock (`heavy_lock`: /tmp/fourtier-heavy.lock, the same flock(2) lock the
`flock` command takes), so two people's benchmarks or timing-sensitive tests never overlap.

Every half second it reads the CPU time of
- the load generator: the process and all its children (Locust --processes forks workers);
- each container of the stack: its cgroup's CPU counter (cgroup v1 or v2);
- Docker itself: docker-proxy ("proxy", which carries every connection to a port published on
  127.0.0.1: next to nothing when the harness loads the containers' own addresses), the
  fuse-overlayfs processes ("storage", where Docker's storage driver is fuse-overlayfs: every file
  a container opens goes through one), and dockerd, containerd and its shims ("dockerd", which
  carry every log line the servers write and run every healthcheck).
Figures are in cores: 1.0 = one core busy the whole time, over the steady part of the run (the
first 2 s, start-up, and the last sample, shutdown, are left out; a run too short for that, a
smoke run's, is taken whole).

Over the same steady span it reads what the machine under the stack did to the run, the noise a
repeat cannot control (`noise_between`): the share of CPU time the hypervisor gave to other guests
(steal), the share the cores sat idle waiting for the disk (iowait), and the share of the time
some task was stalled on I/O (the kernel's pressure-stall figure, /proc/pressure/io, where the
kernel has it). Beside each repeat's req/s, they tell a slow repeat the machine slowed from one
the stack slowed itself. Over that span it also counts the machine's context switches per second
(`ctxt` in /proc/stat): a server that sleeps while it waits for a request, or for the tier
behind it, costs a switch to sleep and one to be woken; one that finds the next request already
waiting costs none. The report divides them by the requests served.

Before each run, `wait_for_quiet` checks that the machine is idle: a run that starts while
something else (a build, another benchmark, PostgreSQL's checkpoint after the last run) still
takes the cores measures the left-overs. Then it times a fixed piece of work on one core
(`core_speed_ms`), and waits while that takes SLOW_CORES_RATIO x the fastest time seen: a virtual
machine's cores can be slower at one time than at another. It times it again just after the run.
The readings go into the report beside the run. (Timing a tenth of that work at every sample of
the run, in the thread's CPU time, was tried and did not single out the slow repeats: under load
the stack's processes share the cores' caches with it. docs/load-testing.md has the reading.)
"""

import contextlib
import fcntl
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

HEAVY_LOCK = os.environ.get("HEAVY_LOCK", "/tmp/fourtier-heavy.lock")
# Runs this short are smoke runs: they need not wait for the heavy-load lock.
LOCK_ABOVE_SECONDS = 15
# The quiet-machine check: whole-machine CPU over QUIET_SAMPLE_SECONDS, with the stack idle, must be
# at most QUIET_CPU_PCT % of all cores (an idle stack's healthchecks take a few %).
QUIET_CPU_PCT = 20.0
QUIET_SAMPLE_SECONDS = 2.0
# The slow-cores check, after it: a core taking more than SLOW_CORES_RATIO x the fastest time this
# process has seen for core_speed_ms's fixed work is running slow. On our virtual machines the
# readings before normal runs stayed within 1.10 x the fastest; before the slowest repeats they
# read 1.13-1.22 x, at times 1.7 x (docs/load-testing.md, "What makes repeats differ").
SLOW_CORES_RATIO = 1.12
# Docker's own processes, in three groups: the proxy of published ports, the storage driver
# (fuse-overlayfs, where Docker uses it: a user-space process serves every file open in a
# container), and the daemons (which carry
# every log line and run every healthcheck).
DOCKER_PROCESSES = {
    "docker-proxy": "proxy",
    "fuse-overlayfs": "storage",
    "dockerd": "dockerd",
    "containerd": "dockerd",
    "containerd-shim": "dockerd",
    "containerd-shim-runc-v2": "dockerd",
}


@contextlib.contextmanager
def heavy_lock(seconds: float):
    """Hold the machine-wide heavy-load lock for a run of `seconds`, if it is long."""
    if seconds <= LOCK_ABOVE_SECONDS:
        yield
        return
    with open(HEAVY_LOCK, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holders = lock_holders(f.fileno())
            ours = holders & ancestors()
            if ours:
                # `flock /tmp/fourtier-heavy.lock make loadtest` would wait here forever for the
                # lock its own parent holds: say so instead of hanging.
                raise SystemExit(
                    f"{HEAVY_LOCK} is held by this run's own parent (pid {min(ours)}): the harness "
                    "takes that lock itself for each long run; don't wrap it in flock"
                ) from None
            print(f"   waiting for {HEAVY_LOCK} (held by pid {sorted(holders)}) ...", flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def lock_holders(fd: int) -> set[int]:
    """The pids /proc/locks names as holding a lock on the file open as `fd` (Linux)."""
    inode = os.fstat(fd).st_ino
    holders = set()
    with contextlib.suppress(OSError), open("/proc/locks", encoding="ascii") as locks:
        for line in locks:
            # "1: FLOCK  ADVISORY  WRITE 4242 fe:01:1234 0 EOF" (a "->" marks a waiter)
            fields = line.split()
            if "->" in fields or len(fields) < 6:
                continue
            if fields[5].rsplit(":", 1)[-1] == str(inode) and fields[4].isdigit():
                holders.add(int(fields[4]))
    return holders


def ancestors() -> set[int]:
    """This process's parent, its parent, and so on up to pid 1 (Linux /proc)."""
    found, pid = set(), os.getppid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state: the ppid
    return found


def core_speed_ms(rounds: int = 5) -> float:
    """How long one core takes, in ms, to do a fixed piece of Python work like the app's (encode a
    message as JSON, some arithmetic, 5,000 times): the best of `rounds`, so that a round another
    process interrupted does not count. Read on the quiet machine before and after each run: if
    it moves from one repeat to the next, the cores themselves were slower (a busy host under
    this virtual machine, its clock speed), which no setting of the stack can change."""
    message = {"id": 1, "author": "ann", "text": "hello, world " * 4, "created_at": "2026-12-05"}
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        total = 0
        for i in range(5000):
            total += len(json.dumps(message)) + i * i % 7
        best = min(best, time.perf_counter() - start)
    return round(1000 * best, 2)


# The fastest core_speed_ms reading of this process: the slow-cores check's yardstick.
_fastest_core_ms = [float("inf")]


def cores_slow() -> tuple[float, bool]:
    """A core's speed now (core_speed_ms), and whether it is SLOW_CORES_RATIO x the fastest yet."""
    now = core_speed_ms()
    _fastest_core_ms[0] = min(_fastest_core_ms[0], now)
    return now, now > SLOW_CORES_RATIO * _fastest_core_ms[0]


def wait_for_quiet(limit: float) -> dict:
    """Sample whole-machine CPU until it is at most QUIET_CPU_PCT, then time a core until it is not
    slow (`cores_slow`), for at most `limit` seconds in all. Returns the last readings, whether
    the machine was quiet and its cores not slow, and how long the run was held back."""
    start = time.monotonic()
    while True:
        pct = psutil.cpu_percent(interval=QUIET_SAMPLE_SECONDS)
        quiet = pct <= QUIET_CPU_PCT
        waited = time.monotonic() - start - QUIET_SAMPLE_SECONDS
        if quiet or waited >= limit:
            break
        if waited < QUIET_SAMPLE_SECONDS:
            print(f"   machine busy ({pct:.0f}% CPU), waiting up to {limit:.0f} s ...", flush=True)
    if not quiet:
        print(f"   WARNING: still {pct:.0f}% CPU after {waited:.0f} s; running anyway", flush=True)
    core_ms, slow = cores_slow()
    while slow and time.monotonic() - start < limit:
        print(f"   cores slow ({core_ms:.1f} ms for the fixed work), timing again ...", flush=True)
        # Not a wait for an event: the cores' speed has none to wait on, so it is timed again.
        time.sleep(QUIET_SAMPLE_SECONDS)
        core_ms, slow = cores_slow()
    if slow:
        print(f"   WARNING: cores still slow ({core_ms:.1f} ms); running anyway", flush=True)
    waited = time.monotonic() - start - QUIET_SAMPLE_SECONDS
    reading = {"idle_cpu_pct": round(pct, 1), "quiet": quiet, "waited_s": round(waited, 1)}
    return reading | {"core_ms": core_ms, "slow_cores": slow}


def cgroup_cpu_file(container_id: str) -> Path | None:
    """The file counting a container's CPU time, wherever this machine's cgroup layout puts it."""
    for candidate in (
        f"/sys/fs/cgroup/cpuacct/docker/{container_id}/cpuacct.usage",  # v1: nanoseconds
        f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/cpu.stat",  # v2, systemd
        f"/sys/fs/cgroup/docker/{container_id}/cpu.stat",  # v2, cgroupfs
    ):
        if Path(candidate).exists():
            return Path(candidate)
    return None


def read_cgroup_seconds(path: Path) -> float:
    text = path.read_text()
    if path.name == "cpuacct.usage":
        return int(text) / 1e9
    for line in text.splitlines():
        if line.startswith("usage_usec"):
            return int(line.split()[1]) / 1e6
    return 0.0


@dataclass
class Measured:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    cpu_cores: float = 0.0  # the load generator, mean over the steady part of the run
    cpu_cores_max: float = 0.0  # its highest half-second sample
    machine_cpu: float = 0.0  # whole machine, % of all cores, mean
    tiers: dict[str, float] = field(default_factory=dict)  # container or "docker" -> cores
    # [seconds since the start, {container: cores}] per sampling interval: the run's CPU over time.
    cpu_series: list = field(default_factory=list)
    # The machine's noise over the steady part: steal_pct, iowait_pct, io_stall_pct, and its context
    # switches, switches_per_s; and a core's speed just after the run, core_ms_after
    # (core_speed_ms; the one before is wait_for_quiet's).
    noise: dict[str, float] = field(default_factory=dict)


def machine_counters() -> dict[str, float]:
    """The whole machine's cumulative CPU seconds (all cores: total, steal, iowait), its context
    switches since boot (`switches`: the `ctxt` line of /proc/stat) and seconds of I/O stall
    (`io_stall`: some task waiting on I/O; absent where the kernel has no PSI)."""
    t = psutil.cpu_times()
    counters = {
        "total": sum(t),
        "steal": getattr(t, "steal", 0.0),
        "iowait": getattr(t, "iowait", 0.0),
        "switches": psutil.cpu_stats().ctx_switches,
    }
    with contextlib.suppress(OSError, ValueError, IndexError):
        # "some avg10=0.00 avg60=0.00 avg300=0.00 total=1892712": total in microseconds
        first = Path("/proc/pressure/io").read_text(encoding="ascii").splitlines()[0]
        counters["io_stall"] = int(first.rsplit("total=", 1)[1]) / 1e6
    return counters


def noise_between(first: dict[str, float], last: dict[str, float], span: float) -> dict[str, float]:
    """Steal and iowait as % of all CPU time, I/O stall as % of the wall time, context switches per
    second, between two readings of `machine_counters` taken `span` seconds apart. A reading
    without a counter (an older one, a kernel without PSI) gives no figure for it."""
    cpu = last["total"] - first["total"]
    found = {}
    if cpu > 0:
        found["steal_pct"] = round(100 * (last["steal"] - first["steal"]) / cpu, 2)
        found["iowait_pct"] = round(100 * (last["iowait"] - first["iowait"]) / cpu, 2)
    if span > 0 and "io_stall" in first and "io_stall" in last:
        found["io_stall_pct"] = round(100 * (last["io_stall"] - first["io_stall"]) / span, 1)
    if span > 0 and "switches" in first and "switches" in last:
        found["switches_per_s"] = round((last["switches"] - first["switches"]) / span, 1)
    return found


class Sampler(threading.Thread):
    """Reads CPU counters every `interval` seconds until stopped."""

    def __init__(self, pid: int, containers: dict[str, Path], interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid, self.containers, self.interval = pid, containers, interval
        self.stop_event = threading.Event()
        self.seen: dict[int, float] = {}  # pid -> last CPU seconds read, for the generator's tree
        self.docker_seen: dict[int, tuple[str, float]] = {}
        # (time, generator's CPU seconds, machine CPU %, {container: CPU seconds}, machine counters)
        self.readings: list[tuple[float, float, float, dict[str, float], dict[str, float]]] = []

    def tree_seconds(self) -> float:
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            procs = []
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                self.seen[proc.pid] = t.user + t.system
        # Processes that ended keep their last reading, so their CPU is not lost.
        return sum(self.seen.values())

    def docker_seconds(self) -> dict[str, float]:
        for proc in psutil.process_iter(["name", "cpu_times"]):
            group = DOCKER_PROCESSES.get(proc.info["name"])
            if group and proc.info["cpu_times"]:
                t = proc.info["cpu_times"]
                self.docker_seen[proc.pid] = (group, t.user + t.system)
        totals = {"proxy": 0.0, "storage": 0.0, "dockerd": 0.0}
        for group, seconds in self.docker_seen.values():
            totals[group] += seconds
        return totals

    def read(self) -> None:
        tiers = {}
        for name, path in self.containers.items():
            with contextlib.suppress(OSError, ValueError):
                tiers[name] = read_cgroup_seconds(path)
        tiers |= self.docker_seconds()
        now, generator, machine = time.monotonic(), self.tree_seconds(), psutil.cpu_percent()
        self.readings.append((now, generator, machine, tiers, machine_counters()))

    def run(self) -> None:
        psutil.cpu_percent()
        self.read()
        while not self.stop_event.wait(self.interval):
            self.read()

    def result(self, skip: float = 2.0) -> dict:
        if len(self.readings) < 3:
            return {}
        t0 = self.readings[0][0]
        steady = [r for r in self.readings[:-1] if r[0] - t0 >= skip]
        if len(steady) < 2:  # a run too short to have a steady part (a smoke run): all of it
            steady = self.readings
        first, last = steady[0], steady[-1]
        span = last[0] - first[0]
        if span <= 0:
            return {}
        rates = [
            (b[1] - a[1]) / (b[0] - a[0])
            for a, b in zip(steady, steady[1:], strict=False)
            if b[0] > a[0]
        ]
        series = [
            [
                round(b[0] - t0, 1),
                {k: round((b[3][k] - a[3].get(k, b[3][k])) / (b[0] - a[0]), 3) for k in b[3]},
            ]
            for a, b in zip(self.readings, self.readings[1:], strict=False)
            if b[0] > a[0]
        ]
        return {
            "cpu_series": series,
            "cpu_cores": (last[1] - first[1]) / span,
            "cpu_cores_max": max(rates, default=0.0),
            "machine_cpu": sum(r[2] for r in steady[1:]) / max(1, len(steady) - 1),
            "tiers": {k: (last[3][k] - first[3].get(k, 0.0)) / span for k in last[3]},
            "noise": noise_between(first[4], last[4], span),
        }


def run(
    command: list[str],
    seconds: float,
    env: dict | None = None,
    cwd: Path | None = None,
    containers: dict[str, Path] | None = None,
) -> Measured:
    """Run `command` (expected to stop by itself after about `seconds`), measuring CPU."""
    hard_limit = int(seconds) + 60
    start = time.monotonic()
    proc = subprocess.Popen(
        ["timeout", "--kill-after=10", str(hard_limit), *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    sampler = Sampler(proc.pid, containers or {})
    sampler.start()
    stdout, stderr = proc.communicate()
    sampler.stop_event.set()
    sampler.join()
    figures = sampler.result()
    if containers:  # a measured run, not a warm-up: a core's speed again, once the load stopped
        figures.setdefault("noise", {})["core_ms_after"] = core_speed_ms()
    return Measured(
        returncode=proc.returncode,
        stdout=stdout,
        stderr=stderr,
        seconds=time.monotonic() - start,
        cpu_cores=figures.get("cpu_cores", 0.0),
        cpu_cores_max=figures.get("cpu_cores_max", 0.0),
        machine_cpu=figures.get("machine_cpu", 0.0),
        tiers={k: round(v, 3) for k, v in figures.get("tiers", {}).items()},
        cpu_series=figures.get("cpu_series", []),
        noise=figures.get("noise", {}),
    )


def by_tier(cores: dict[str, float]) -> dict[str, float]:
    """Containers' CPU summed per tier (lb1 + lb2 -> lb, ...), in cores; Docker's own apart; the
    monitoring services (Prometheus, every exporter) together as `monitor`."""
    tiers: dict[str, float] = {}
    for name, value in cores.items():
        monitoring = name == "prometheus" or name.endswith("-exporter")
        tier = "monitor" if monitoring else (name.rstrip("0123456789") or name)
        tiers[tier] = round(tiers.get(tier, 0.0) + value, 3)
    return tiers


def container_cpu_files(containers: dict[str, dict]) -> dict[str, Path]:
    """service name -> CPU counter file, for containers given as service -> `docker inspect`."""
    files = {}
    for service, container in containers.items():
        path = cgroup_cpu_file(container["Id"])
        if path:
            files[service] = path
    return dict(sorted(files.items()))
