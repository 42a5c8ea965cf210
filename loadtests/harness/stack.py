"""A copy of the stack for load tests: its own Compose project, ports and subnet, plus the bench
overlay and a configuration (one overlay, or several joined by '+'). Brings it up, finds where each
tier can be reached (reach.py), seeds it, tells what it runs, takes it down.

Nothing here touches the stack of `make up` (project fourtier, ports 8080/8404) or the tests'
(fourtier-test, 18080/18404): every name, port and subnet below is the load tests' own.
"""

import csv
import io
import json
import os
import platform
import re
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from . import reach

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "loadtests" / "configs"
BENCH_OVERLAY = "loadtests/compose.bench.yml"
SECRET = ROOT / ".secrets" / "db_app_password"
SERVICE = "com.docker.compose.service"  # the label Compose gives a container: its service

# The project's environment; each value can be overridden from the environment of `make`.
BENCH_ENV = {
    "COMPOSE_PROJECT_NAME": "fourtier-bench",
    "LB_HTTP_PORT": "28080",
    "LB_STATS_PORT": "28404",
    "LB2_HTTP_PORT": "28081",
    "LB2_STATS_PORT": "28405",
    "LB_HTTPS_PORT": "28443",
    "LB2_HTTPS_PORT": "28444",
    "LB_NET_PREFIX": "10.213.242",
    "PROMETHEUS_PORT": "29090",
    "BENCH_WEB_PORT": "29080",
    "BENCH_APP_PORT": "29000",
    "BENCH_DB_PORT": "29432",
}
# The smoke test's copy (tests/loadtest): other names and ports again, so both can coexist.
SMOKE_ENV = {
    "COMPOSE_PROJECT_NAME": "fourtier-loadsmoke",
    "LB_HTTP_PORT": "28180",
    "LB_STATS_PORT": "28504",
    "LB2_HTTP_PORT": "28181",
    "LB2_STATS_PORT": "28505",
    "LB_HTTPS_PORT": "28543",
    "LB2_HTTPS_PORT": "28544",
    "LB_NET_PREFIX": "10.213.243",
    "PROMETHEUS_PORT": "29190",
    "BENCH_WEB_PORT": "29180",
    "BENCH_APP_PORT": "29100",
    "BENCH_DB_PORT": "29532",
}


def config_names() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yml"))


def config_files(config: str) -> list[str]:
    """The overlays of a configuration, in order: `a+b` is a.yml then b.yml (b wins where both
    set something), so a change can be combined with another without a file for each pair."""
    files = []
    for name in config.split("+"):
        if not (CONFIG_DIR / f"{name}.yml").is_file():
            raise SystemExit(f"no configuration {name!r} (in {config!r}); known: {config_names()}")
        files.append(f"loadtests/configs/{name}.yml")
    return files


def config_description(config: str) -> str:
    """The first comment line of each of its files (`# name: what it changes`), joined by ' + '."""
    descriptions = []
    for name in config.split("+"):
        first = (CONFIG_DIR / f"{name}.yml").read_text(encoding="utf-8").splitlines()[0]
        descriptions.append(first.lstrip("# ").split(":", 1)[-1].strip())
    if len(descriptions) == 1:
        return descriptions[0]
    return " + ".join(d.rstrip(".") for d in descriptions)


@dataclass
class Stack:
    env: dict[str, str] = field(default_factory=lambda: dict(BENCH_ENV))
    config: str = "default"
    from_environment: bool = True
    direct: bool = True  # False: load goes to the published ports, through docker-proxy
    # Port variable -> where that tier's load goes; found by `up` (see reach.py).
    endpoints: dict[str, reach.Endpoint] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Values given in the environment win (e.g. LB_HTTP_PORT=... make loadtest), except for
        # the smoke test's stack, which must not inherit the test stack's settings from pytest.
        if self.from_environment:
            self.env = {k: os.environ.get(k, v) for k, v in self.env.items()}

    @property
    def project(self) -> str:
        return self.env["COMPOSE_PROJECT_NAME"]

    @property
    def ports(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.env.items() if k.endswith("_PORT")}

    def compose(self, *args: str, check: bool = True, timeout: float = 600) -> str:
        command = ["docker", "compose", "-f", "docker-compose.yml", "-f", BENCH_OVERLAY]
        for overlay in config_files(self.config):
            command += ["-f", overlay]
        command += args
        done = subprocess.run(
            command,
            cwd=ROOT,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def up(self, config: str) -> None:
        """Start (or switch to) `config` from nothing, returns once all are healthy. The stack of
        the previous configuration is taken down first, volumes included: `up` alone would leave
        running the services this configuration does not start (no-monitoring's Prometheus and
        exporters, in a profile), and settings kept in the volumes (Patroni's in etcd) would carry
        over from one configuration to the next."""
        self.down()  # with the previous configuration's files: they name every container it ran
        self.config = config
        print(f"== stack {self.project}: up with configuration {config}")
        subprocess.run([str(ROOT / "scripts" / "make-secrets.sh")], check=True, cwd=ROOT)
        subprocess.run(
            [str(ROOT / "scripts" / "make-certs.sh")],
            check=True,
            cwd=ROOT,
            env={**os.environ, "LB_NET_PREFIX": self.env["LB_NET_PREFIX"]},
        )
        self.compose("up", "--detach", "--wait", "--force-recreate", "--remove-orphans")
        # Containers are new, and so may be their addresses: look again after every `up`.
        self.endpoints = reach.find(self.project, self.containers(), self.ports, self.direct)
        print(f"== load goes {self.path()}")
        self.seed()

    def down(self) -> None:
        print(f"== stack {self.project}: down")
        self.compose("down", "--volumes", "--remove-orphans", check=False)

    def path(self) -> str:
        return reach.describe(self.endpoints)

    def containers(self) -> dict[str, dict]:
        """service -> `docker inspect` of its container, for every running one of the project."""
        ids = subprocess.run(
            ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={self.project}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        if not ids:
            return {}
        done = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True)
        return {c["Config"]["Labels"][SERVICE]: c for c in json.loads(done.stdout or "[]")}

    def log_drivers(self) -> str:
        """The log driver each container really uses (docker-compose.yml may set it per service):
        every line a server writes to stdout goes through it, which costs dockerd CPU."""
        services: dict[str, list[str]] = {}
        for service, c in self.containers().items():
            services.setdefault(c["HostConfig"]["LogConfig"]["Type"], []).append(service)
        if len(services) == 1:
            return f"{next(iter(services))} (every container)"
        return "; ".join(f"{d}: {', '.join(sorted(s))}" for d, s in sorted(services.items()))

    def db_url(self) -> str:
        db = self.endpoints["BENCH_DB_PORT"]
        return f"postgresql://guestbook_app@{db.host}:{db.port}/guestbook"

    def seed(self, rows: int = 200) -> None:
        """At least `rows` messages, so every read returns a full page of 20."""
        import psycopg  # here, so that importing this module stays cheap

        with psycopg.connect(self.db_url(), password=SECRET.read_text().strip()) as conn:
            have = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
            if have < rows:
                conn.execute(
                    "INSERT INTO messages (author, text) SELECT 'seed', 'seed message ' || i"
                    " FROM generate_series(1, %s) AS i",
                    (rows - have,),
                )

    def exec(self, service: str, *command: str) -> str:
        out = self.compose("exec", "-T", service, *command, check=False, timeout=60)
        return out.strip()

    def settings(self) -> dict[str, str]:
        """What the running stack really does, read from the servers, not from the files."""
        found = {}
        stats = f"http://127.0.0.1:{self.env['LB_STATS_PORT']}/;csv"
        try:
            with urllib.request.urlopen(stats, timeout=5) as r:
                rows = csv.DictReader(io.StringIO(r.read().decode().lstrip("# ")))
                for row in rows:
                    if row["pxname"] == "web" and row["svname"] == "BACKEND":
                        found["lb balance"] = row.get("algo") or "?"
        except OSError as e:
            found["lb balance"] = f"? ({e})"
        # HAProxy's thread count, from the stats page's header ("nbthread = 2"): one per CPU
        # unless LB_THREADS sets it (configs/haproxy-1-thread.yml).
        try:
            with urllib.request.urlopen(stats.removesuffix(";csv"), timeout=5) as r:
                threads = re.search(r"nbthread = (\d+)", r.read().decode())
                found["lb threads"] = threads[1] if threads else "?"
        except OSError as e:
            found["lb threads"] = f"? ({e})"
        nginx = self.compose("exec", "-T", "web1", "nginx", "-T", check=False, timeout=60)
        upstream = re.search(r"upstream app \{(.*?)\}", nginx, re.S)
        if upstream:
            body = re.sub(r"#.*", "", upstream[1])
            keepalive = re.search(r"^\s*keepalive\s+(\d+);", body, re.M)
            found["nginx upstream keepalive"] = keepalive[1] if keepalive else "off"
            found["app servers in nginx upstream"] = str(
                len(re.findall(r"^\s*server\s", body, re.M))
            )
        script = (
            "import json, runpy; from guestbook.config import Config as C;"
            " g = runpy.run_path('/app/gunicorn.conf.py');"
            " c = g['worker_class'];"
            " k = 'gthread' if c == 'sync' and g['threads'] > 1 else c;"
            " print(json.dumps({'gunicorn': f\"{g['workers']} x {k} x {g['threads']} threads\","
            # app/gunicorn.conf.py's reuse_port; an image older than the setting has none.
            " 'gunicorn listens on': 'a socket per worker' if g.get('reuse_port')"
            " else 'one socket, shared by the workers',"
            " 'db pool': f'{C.DB_POOL_SIZE} + {C.DB_MAX_OVERFLOW} overflow',"
            # configs/remote-db.yml; an image older than the setting has none, so 0.
            " 'simulated db latency': f\"{getattr(C, 'DB_SIMULATED_LATENCY_MS', 0):g} ms\"}))"
        )
        try:
            found |= json.loads(self.exec("app1", "python3", "-c", script))
        except ValueError:
            found["gunicorn"] = "?"
        # The LBs' per-client limits, as lb1's HAProxy reads them (haproxy.cfg's defaults when
        # unset); compose.bench.yml lifts them to 10^9, which reads "off".
        script = (
            'echo "${LB_LIMIT_CONNECTIONS:-500} ${LB_LIMIT_STATIC:-3000}'
            ' ${LB_LIMIT_API_READS:-1000} ${LB_LIMIT_API_WRITES:-600} ${LB_HTTPS_REDIRECT:-on}"'
        )
        edge = self.compose("exec", "-T", "lb1", "sh", "-c", script, check=False).split()
        if len(edge) == 5:
            found["http->https redirect"] = edge.pop()
        if len(edge) == 4 and all(v.isdigit() for v in edge):
            conns, static, reads, writes = (int(v) for v in edge)
            found["lb limits per client"] = (
                "off"
                if min(conns, static, reads, writes) >= 10**9
                else f"{conns} connections; per 10 s: {static} static, {reads} API reads,"
                f" {writes} API writes"
            )
        services = self.compose("ps", "--services", "--status", "running", check=False)
        found["app replicas"] = str(len(re.findall(r"^app\d+$", services, re.M)))
        return found

    def versions(self) -> dict[str, str]:
        def version(text: str, pattern: str = r"(\d+\.\d+[\w.+~-]*)") -> str:
            found = re.search(pattern, text)
            return found[1] if found else "?"

        def host(*command: str) -> str:
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                return "?"
            return done.stdout + done.stderr

        nginx = self.compose("exec", "-T", "web1", "sh", "-c", "nginx -v 2>&1", check=False)
        return {
            "HAProxy": version(self.exec("lb1", "haproxy", "-v")),
            "nginx": version(nginx),
            "Gunicorn": version(self.exec("app1", "gunicorn", "--version")),
            "PostgreSQL": version(self.exec("db1", "postgres", "--version")),
            "Docker": host("docker", "version", "--format", "{{.Server.Version}}").strip(),
            "Python (host)": platform.python_version(),
            "wrk": version(host("wrk", "--version"), r"wrk (?:debian/)?(\S+)"),
        }


def running_containers(project: str) -> dict[str, dict]:
    """service -> `docker inspect` of every running container of a Compose project, for the
    measuring scripts (scripts/measure-idle.py, measure-scrapes.py); stops with a message if none
    is running."""
    running = Stack(env={"COMPOSE_PROJECT_NAME": project}, from_environment=False).containers()
    if not running:
        raise SystemExit(f"no running container of project {project!r}")
    return running


def machine() -> dict[str, str]:
    """The machine the figures came from: they mean little without it."""
    cpu_model = "?"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="utf-8") as f:
        mem_kib = int(f.readline().split()[1])
    fields = "{{.Driver}} {{.LoggingDriver}} {{.CgroupVersion}}"
    docker = subprocess.run(["docker", "info", "--format", fields], capture_output=True, text=True)
    storage, logging, cgroup = (docker.stdout.split() + ["?"] * 3)[:3]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
    )
    return {
        "cores": str(os.cpu_count()),
        "cpu": cpu_model,
        "memory": f"{mem_kib / 1024 / 1024:.0f} GiB",
        "kernel": platform.release(),
        "os": _os_name(),
        # Docker's defaults: the storage driver every container's files go through, the log
        # driver a container gets when docker-compose.yml names none, the cgroup version.
        "docker_storage_driver": storage,
        "docker_logging_driver": logging,
        "cgroup_version": cgroup,
        "commit": commit.stdout.strip()
        + (" (with uncommitted changes)" if dirty.stdout.strip() else ""),
    }


def _os_name() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()
