"""The scenarios: one Locust config file each in loadtests/scenarios/, read here for the harness.

A scenario's first comment line names its tier: `# lb-static (lb tier): ...`. Its `host`, `tags`
and `users` tell the harness where the load goes and how to give the same load to the calibration
tool (wrk, pgbench). Locust reads the same file with --config; the harness only adds what a run
changes (duration, output paths, and the host: the file's host names the port the bench stack
publishes, which works by hand; the harness puts in the address it found for that tier, usually
the container's own, see reach.py).
"""

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .reach import Endpoint

SCENARIO_DIR = Path(__file__).resolve().parents[1] / "scenarios"
# The order of the tables: from the front door inwards, then the generator's own ceiling; within a
# tier, static before dynamic before database-bound.
TIERS = ["lb", "web", "app", "db", "generator"]
KINDS = ["static", "newconn", "whoami", "messages", "database", "ceiling"]
# Bench ports written in the scenario files, and the environment variables that move them (which
# also name the tier's entry point in reach.ENTRIES).
PORT_VARIABLES = {
    28080: "LB_HTTP_PORT",
    28443: "LB_HTTPS_PORT",
    29080: "BENCH_WEB_PORT",
    29000: "BENCH_APP_PORT",
    29432: "BENCH_DB_PORT",
}


@dataclass(frozen=True)
class Scenario:
    name: str
    tier: str
    description: str
    path: Path
    settings: dict[str, str]

    @property
    def tag(self) -> str:
        return self.settings["tags"].split(",")[0].strip()

    @property
    def users(self) -> int:
        return int(self.settings["users"])

    def host(self, endpoints: dict[str, Endpoint]) -> str:
        """The scenario's host URL, pointed at the address the harness found for its tier."""
        url = urlsplit(self.settings["host"])
        endpoint = endpoints.get(PORT_VARIABLES.get(url.port or 0, ""))
        if endpoint is None:
            return self.settings["host"]
        user = f"{url.username}@" if url.username else ""  # the database URL's role
        return urlunsplit(url._replace(netloc=f"{user}{endpoint.host}:{endpoint.port}"))


def load(path: Path) -> Scenario:
    text = path.read_text(encoding="utf-8")
    first = text.splitlines()[0]
    match = re.match(r"#\s*(\S+)\s+\((\w+) tier\):\s*(.*)", first)
    if not match:
        raise ValueError(f"{path}: the first line must read '# <name> (<tier> tier): <what>'")
    settings = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = (part.strip() for part in line.split("=", 1))
            settings[key] = value
    return Scenario(match[1], match[2], match[3], path, settings)


def all_scenarios() -> list[Scenario]:
    found = [load(p) for p in sorted(SCENARIO_DIR.glob("*.conf"))]
    return sorted(found, key=lambda s: (rank(TIERS, s.tier), rank(KINDS, s.tag), s.name))


def rank(order: list[str], item: str) -> int:
    return order.index(item) if item in order else len(order)


def select(names: list[str] | None) -> list[Scenario]:
    """The scenarios named (in the given order), or all of them."""
    scenarios = all_scenarios()
    if not names:
        return scenarios
    by_name = {s.name: s for s in scenarios}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; known: {sorted(by_name)}")
    return [by_name[n] for n in names]
