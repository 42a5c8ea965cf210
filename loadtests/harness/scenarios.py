"""The scenarios: one Locust config file each in loadtests/scenarios/, read here for the harness.

A scenario's first comment line names its tier: `# lb-static (lb tier): ...`. Its `host`, `tags`
and `users` tell the harness where the load goes and how to give the same load to the calibration
tool (wrk, pgbench). Locust reads the same file with --config; the harness only adds what a run
changes (duration, host ports of the stack it started, output paths).
"""

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

SCENARIO_DIR = Path(__file__).resolve().parents[1] / "scenarios"
# The order of the tables: from the front door inwards, then the generator's own ceiling; within a
# tier, static before dynamic before database-bound.
TIERS = ["lb", "web", "app", "db", "generator"]
KINDS = ["static", "whoami", "messages", "database", "ceiling"]
# Bench ports written in the scenario files, and the environment variables that move them.
PORT_VARIABLES = {
    28080: "LB_HTTP_PORT",
    29080: "BENCH_WEB_PORT",
    29000: "BENCH_APP_PORT",
    29432: "BENCH_DB_PORT",
    29433: "BENCH_DB2_PORT",
    29434: "BENCH_DB3_PORT",
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

    def host(self, ports: dict[str, int]) -> str:
        """The scenario's host URL, with the ports of the stack the harness started (every one of
        them: a libpq URL may list several hosts, host1:port1,host2:port2)."""
        url = urlsplit(self.settings["host"])

        def moved(port: re.Match) -> str:
            variable = PORT_VARIABLES.get(int(port[1]))
            return f":{ports[variable]}" if variable in ports else port[0]

        netloc = re.sub(r":(\d+)(?=,|$)", moved, url.netloc)
        return urlunsplit(url._replace(netloc=netloc))


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
