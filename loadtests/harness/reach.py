"""How the harness reaches each tier: straight to its container's address, or through docker-proxy.

A port Docker publishes on 127.0.0.1 is served by docker-proxy, a process that copies every byte
of every connection from one socket to another. On a 2-core machine it cost 0.1-0.3 ms of CPU per
request (the `proxy` column of the CPU tables), taken from the cores the tiers need: plumbing that
a real deployment does not have. On Linux the host has an address on every Docker bridge network,
so it can connect to a container's own address, as the tier in front does, with nothing between.

So after each `up`, for each tier's entry point, the harness reads the container's addresses
(`docker inspect`, the container found by Compose project and service) and takes the first one
that accepts a TCP connection within half a second. lb1 and web1 are on lb_web. app1 and db sit
on `internal` networks, which the host reaches too (Docker gives their bridge an address, except
in the first 25.0 releases), and else on the bench overlay's own networks, bench_app and bench_db.
Where no address answers (Docker Desktop runs containers in a VM the host cannot route to), the
port compose.bench.yml publishes on 127.0.0.1 is the fallback. The report says which path it used.
"""

import socket
import urllib.request
from dataclasses import dataclass

CONNECT_TIMEOUT = 0.5  # seconds: a routable container answers in well under a millisecond
DIRECT = "direct to container addresses"
PROXY = "through docker-proxy on 127.0.0.1"


@dataclass(frozen=True)
class Entry:
    """A tier's entry point: its service, the port it listens on, its networks by preference."""

    service: str
    port: int
    networks: tuple[str, ...]
    # Other services that may be the entry point instead (the database tier: whichever db node
    # Patroni made primary); the first that `is_primary` finds wins, else `service`.
    candidates: tuple[str, ...] = ()


# Keyed by the variable of the port the bench stack publishes for it (see scenarios.PORT_VARIABLES).
ENTRIES = {
    "LB_HTTP_PORT": Entry("lb1", 8080, ("lb_web",)),  # always ${LB_NET_PREFIX}.11
    "LB_HTTPS_PORT": Entry("lb1", 8443, ("lb_web",)),  # the same node, TLS terminated there
    "BENCH_WEB_PORT": Entry("web1", 8080, ("lb_web",)),
    "BENCH_APP_PORT": Entry("app1", 8000, ("web_app", "bench_app")),
    # The primary of the Patroni cluster: the load of the database tier includes writes.
    "BENCH_DB_PORT": Entry("db1", 5432, ("app_db", "bench_db"), ("db1", "db2", "db3")),
}
# Patroni's REST API on each db node answers GET /primary with 200 on the primary only.
PATRONI_PORT = 8008


@dataclass(frozen=True)
class Endpoint:
    """Where the load for one tier goes. `network` is None for the published port on 127.0.0.1."""

    service: str
    host: str
    port: int
    network: str | None

    def __str__(self) -> str:
        where = f"on {self.network}" if self.network else "published"
        return f"{self.service} {self.host}:{self.port} {where}"


def accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            return True
    except OSError:
        return False


def addresses(container: dict, project: str) -> dict[str, str]:
    """network (as the Compose file names it) -> the container's IPv4 address on it."""
    found = {}
    for name, settings in container["NetworkSettings"]["Networks"].items():
        if settings.get("IPAddress"):
            found[name.removeprefix(f"{project}_")] = settings["IPAddress"]
    return found


def find(
    project: str, containers: dict[str, dict], published: dict[str, int], direct: bool = True
) -> dict[str, Endpoint]:
    """Port variable -> the endpoint to load, for each tier entry point. `containers` is
    service -> `docker inspect` of its container; `published` the bench stack's ports."""
    endpoints = {}
    for variable, entry in ENTRIES.items():
        service = primary(project, containers, entry) if entry.candidates else entry.service
        # The published port is db1's: right as long as db1 is the primary (where the host cannot
        # reach the containers, it cannot ask Patroni either).
        endpoint = Endpoint(service, "127.0.0.1", published[variable], None)
        container = containers.get(service)
        if direct and container:
            on = addresses(container, project)
            for network in entry.networks:
                if network in on and accepts(on[network], entry.port):
                    endpoint = Endpoint(service, on[network], entry.port, network)
                    break
        endpoints[variable] = endpoint
    return endpoints


def primary(project: str, containers: dict[str, dict], entry: Entry) -> str:
    """The candidate Patroni calls the primary (GET /primary -> 200), else the default."""
    for service in entry.candidates:
        container = containers.get(service)
        for address in addresses(container, project).values() if container else ():
            url = f"http://{address}:{PATRONI_PORT}/primary"
            try:
                with urllib.request.urlopen(url, timeout=CONNECT_TIMEOUT) as answer:
                    if answer.status == 200:
                        return service
            except OSError:  # 503 (a standby) raises HTTPError, an OSError; so does no route
                continue
    return entry.service


def describe(endpoints: dict[str, Endpoint]) -> str:
    """One line for the report: which path, and each tier's address."""
    direct = [e.network is not None for e in endpoints.values()]
    path = DIRECT if all(direct) else PROXY if not any(direct) else "mixed"
    return f"{path} ({', '.join(str(e) for e in endpoints.values())})"
