"""The running stack as the tests see it: its addresses, and operations on its containers.

The test stack runs under its own Compose project name, ports and LB subnet (set by the Makefile,
with the same defaults here), so it never touches a stack started by `make up`. Traffic goes only
to 127.0.0.1, where the load balancers are published, and to the stack's own virtual IP.
"""

import json
import os
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
import requests

os.environ.setdefault("COMPOSE_PROJECT_NAME", "fourtier-test")
os.environ.setdefault("LB_HTTP_PORT", "18080")
os.environ.setdefault("LB_STATS_PORT", "18404")
os.environ.setdefault("LB2_HTTP_PORT", "18081")
os.environ.setdefault("LB2_STATS_PORT", "18405")
os.environ.setdefault("LB_HTTPS_PORT", "18443")
os.environ.setdefault("LB2_HTTPS_PORT", "18444")
os.environ.setdefault("LB_NET_PREFIX", "10.213.241")
os.environ.setdefault("PROMETHEUS_PORT", "19090")
# testcontainers' reaper image (Ryuk) can't be pulled here; the fixture tears down itself.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

from testcontainers.compose import DockerCompose  # noqa: E402  (reads the environment above)

ROOT = Path(__file__).resolve().parents[1]
# The database tier: three PostgreSQL nodes run by Patroni, and the three members of etcd.
DB_NODES = ("db1", "db2", "db3")
ETCD_NODES = ("etcd1", "etcd2", "etcd3")
# Every service of the four tiers.
SERVICES = ("lb1", "lb2", "web1", "web2", "app1", "app2", *DB_NODES, *ETCD_NODES)
# Monitoring (monitor/): Prometheus and the exporters of the nodes that have no /metrics.
MONITOR_SERVICES = (
    "prometheus",
    "web1-exporter",
    "web2-exporter",
    "db1-exporter",
    "db2-exporter",
    "db3-exporter",
)
# The tag of the images under test (docker-compose.yml: fourtier/<tier>:${IMAGE_TAG}).
IMAGE_TAG = os.environ.get("IMAGE_TAG", "latest")


class Stack:
    """The running stack: its base URL, and a few operations on its containers."""

    def __init__(self, compose: DockerCompose) -> None:
        self.compose = compose
        self.project = os.environ["COMPOSE_PROJECT_NAME"]
        # lb1 and lb2 as published on the loopback, and the virtual IP that either may hold.
        self.url = f"http://127.0.0.1:{os.environ['LB_HTTP_PORT']}"
        self.stats_url = f"http://127.0.0.1:{os.environ['LB_STATS_PORT']}"
        self.lb2_url = f"http://127.0.0.1:{os.environ['LB2_HTTP_PORT']}"
        self.lb2_stats_url = f"http://127.0.0.1:{os.environ['LB2_STATS_PORT']}"
        self.vip = f"{os.environ['LB_NET_PREFIX']}.10"
        self.vip_url = f"http://{self.vip}:8080"
        # HTTPS, terminated by each LB node; the certificate's authority is the local CA that
        # scripts/make-certs.sh made (requests' `verify=stack.ca`).
        self.https_url = f"https://127.0.0.1:{os.environ['LB_HTTPS_PORT']}"
        self.lb2_https_url = f"https://127.0.0.1:{os.environ['LB2_HTTPS_PORT']}"
        self.vip_https_url = f"https://{self.vip}:8443"
        self.ca = str(ROOT / ".secrets" / "tls" / "ca.crt")
        self.prometheus_url = f"http://127.0.0.1:{os.environ['PROMETHEUS_PORT']}"

    # Requests to lb1's plain-HTTP port. The API answers there; a page is redirected to HTTPS,
    # which is followed and verified against the local CA.
    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("verify", self.ca)
        return requests.request(method, self.url + path, timeout=10, **kwargs)

    def logs(self, *services: str) -> str:
        stdout, stderr = self.compose.get_logs(*services)
        return stdout + stderr

    def exec(
        self, service: str, *command: str, user: str | None = None, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in a service's container (not raising on a non-zero exit), as the
        image's user or as `user`. With `timeout`, a command still running after that many
        seconds is ended and reported as exit code 124 (as coreutils' timeout does)."""
        as_user = ("--user", user) if user else ()
        args = ("exec", "-T", *as_user, service, *command)
        try:
            return self.docker_compose(*args, check=False, timeout=timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(args, 124, "", f"timed out after {timeout}s")

    def docker_compose(
        self, *args: str, check: bool = True, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "compose", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `condition` every 0.2 s until it is true; return the seconds it took. Fails after
    `timeout` seconds, saying `what` was awaited. A bounded wait for a state, not a fixed sleep."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - start


def start_and_wait_healthy(stack: Stack, *services: str, timeout: float = 120.0) -> float:
    """Start `services` (`docker compose up --detach --no-recreate`) and wait until Docker reports
    each one healthy; return the seconds it took. Not `up --wait`: that gives up at the first
    "unhealthy", while a check may fail for a while and then pass (a database node that rewinds
    its WAL before it rejoins, on a busy machine). On a timeout the test fails with each
    unhealthy service's last check results and last 60 log lines: what the next reader needs."""
    stack.docker_compose("up", "--detach", "--no-recreate", *services)

    def health(service: str, field: str = ".Status") -> str:
        container = stack.docker_compose("ps", "--all", "--quiet", service).stdout.strip()
        inspect = ["docker", "inspect", "--format", f"{{{{json .State.Health{field}}}}}", container]
        return subprocess.run(inspect, capture_output=True, text=True).stdout.strip()

    def all_healthy() -> bool:
        return all(health(service) == '"healthy"' for service in services)

    try:
        return wait_until(all_healthy, timeout, f"{', '.join(services)} healthy")
    except pytest.fail.Exception:
        details = [
            f"--- {service}: {health(service, '')}\n"
            + stack.docker_compose("logs", "--tail", "60", service, check=False).stdout
            for service in services
            if health(service) != '"healthy"'
        ]
        pytest.fail(f"not healthy {timeout:.0f}s after the start:\n" + "\n".join(details))


def haproxy_command(stack: Stack, lb: str, command: str) -> str:
    """Send one command to an LB node's HAProxy runtime API (the admin socket) and return the
    answer, e.g. `show stat`, `set server web/web1 state drain`. As the haproxy user: the socket is
    HAProxy's, and root in the LB container has no capability to open another user's files."""
    result = stack.exec(
        lb,
        "sh",
        "-c",
        f"echo '{command}' | socat stdio /var/run/haproxy/admin.sock",
        user="haproxy",
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def server_status(stack: Stack, lb: str, backend: str, server: str) -> str:
    """A server's status as `lb` sees it: UP, DOWN, DRAIN, MAINT, ... (from `show stat`)."""
    lines = haproxy_command(stack, lb, "show stat").splitlines()
    header = lines[0].lstrip("# ").split(",")
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=False))
        if row.get("pxname") == backend and row.get("svname") == server:
            return row["status"]
    raise AssertionError(f"{backend}/{server} not in {lb}'s stats")


def vip_holders(stack: Stack) -> list[str]:
    """The LB nodes that have the virtual IP on their interface right now."""
    holders = []
    for lb in ("lb1", "lb2"):
        result = stack.exec(lb, "ip", "-4", "-o", "addr", "show", "dev", "eth0")
        if f" {stack.vip}/" in result.stdout:
            holders.append(lb)
    return holders


# --- The database cluster ------------------------------------------------------------------------


def psql(
    stack: Stack, node: str, sql: str, user: str = "owner", timeout: float | None = None
) -> subprocess.CompletedProcess:
    """Run one SQL command on a db node's own PostgreSQL, as the owner or the app's role (tuples
    only, unaligned: `t`, `42`), with the password from the node's secret file; `timeout` as in
    Stack.exec."""
    role, secret = {
        "owner": ("guestbook_owner", "db_owner_password"),
        "app": ("guestbook_app", "db_app_password"),
    }[user]
    script = (
        f'PGPASSWORD="$(cat /run/secrets/{secret})" PGCONNECT_TIMEOUT=2 psql -h 127.0.0.1 '
        f'-U {role} -d guestbook -v ON_ERROR_STOP=1 -tA -c "{sql}"'
    )
    return stack.exec(node, "bash", "-c", script, timeout=timeout)


def accepts_writes(stack: Stack, node: str) -> bool:
    """True if the node's PostgreSQL runs and is not in recovery: a primary, which would accept a
    write. Asked of PostgreSQL itself, not of Patroni, so a primary Patroni has lost track of
    would still count. An answer that takes over 5 s counts as no: a `docker exec` near the moment
    its container dies can hang (moby/moby#27626), and a poller must not hang with it."""
    sql = "SELECT NOT pg_is_in_recovery()"
    return psql(stack, node, sql, timeout=5).stdout.strip() == "t"


def patroni_members(stack: Stack) -> list[dict]:
    """`patronictl list` as JSON (Member, Role, State, TL, Lag in MB), asked of the first db
    node that answers; [] if none does."""
    for node in DB_NODES:
        result = stack.exec(node, "patronictl", "-c", "/run/patroni", "list", "--format", "json")
        if result.returncode == 0 and result.stdout.strip().startswith("["):
            return json.loads(result.stdout)
    return []


def promoted_at(stack: Stack, node: str) -> float | None:
    """When `node` last became primary, as Patroni recorded it in the cluster's history (`patronictl
    history`: the new timeline, the time of the promotion, the new leader), in seconds since the
    epoch: the containers share the host's clock. None if the history names no such promotion.
    Read from the history, not from polling: a poll sees the promotion only when its next round
    comes, and each round of `docker exec` takes longer the busier the machine."""
    result = stack.exec(node, "patronictl", "-c", "/run/patroni", "history", "--format", "json")
    if result.returncode != 0 or not result.stdout.strip().startswith("["):
        return None
    times = [
        datetime.fromisoformat(entry["Timestamp"]).timestamp()
        for entry in json.loads(result.stdout)
        if entry.get("New Leader") == node and entry.get("Timestamp")
    ]
    return max(times, default=None)


def db_primary(stack: Stack) -> str | None:
    """The member Patroni names Leader, if it is running."""
    for member in patroni_members(stack):
        if member["Role"] == "Leader" and member["State"] == "running":
            return member["Member"]
    return None


def db_cluster_healthy(stack: Stack) -> bool:
    """One running leader and every other node streaming from it as a synchronous (quorum)
    standby: the state every scenario starts from."""
    members = {m["Member"]: m for m in patroni_members(stack)}
    if set(members) != set(DB_NODES):
        return False
    roles = sorted(m["Role"] for m in members.values())
    streaming = all(m["State"] in ("running", "streaming") for m in members.values())
    return streaming and roles == ["Leader", "Quorum Standby", "Quorum Standby"]
