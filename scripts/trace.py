#!/usr/bin/env python3
"""trace.py - one request's journey through the stack, from every tier's log (`make trace ID=...`).

Every tier logs the request id that HAProxy made (X-Request-ID): HAProxy as `rid=`, nginx as
`rid=`, Gunicorn as `rid=`. This reads the logs of every LB, web and app node of the Compose
project (COMPOSE_PROJECT_NAME, as `docker compose` does), keeps the lines with the id, puts them
in the order the request crossed the tiers, and prints each tier's own timing:

  HAProxy   TR/Tw/Tc/Tr/Ta: waiting for the client's request, in HAProxy's queue, connecting to
            the web node, until the web node's response headers, and the whole request (ms)
  nginx     request_time (the whole request at this node) and upstream_time (the app's answer)
  Gunicorn  the app's own time for the request (ms)

The database tier logs no request ids (PostgreSQL logs statements slower than 250 ms only).
Lines are written in batches (at most a second late): a request made just now may need a moment.
Standard library only, so it runs with the host's python3.
"""

import re
import subprocess
import sys

# In the order a request crosses them.
TIERS = (("lb", ("lb1", "lb2")), ("web", ("web1", "web2")), ("app", ("app1", "app2")))

# HAProxy's HTTP log format: ... frontend backend/server TR/Tw/Tc/Tr/Ta status ...
HAPROXY = re.compile(
    r" (?P<backend>\S+)/(?P<server>\S+) (?P<TR>-?\d+)/(?P<Tw>-?\d+)/(?P<Tc>-?\d+)/(?P<Tr>-?\d+)/"
    r"(?P<Ta>-?\d+) (?P<status>\d{3}) .*?\"(?P<request>[^\"]*)\""
)
# nginx's `tiers` format (nginx.conf).
NGINX = re.compile(
    r"\"(?P<request>[^\"]*)\" (?P<status>\d{3}) .*upstream=(?P<upstream>\S+) "
    r"upstream_status=(?P<upstream_status>\S+) upstream_time=(?P<upstream_time>\S+) "
    r"request_time=(?P<request_time>\S+)"
)
# Gunicorn's access_log_format (gunicorn.conf.py).
GUNICORN = re.compile(r"\"(?P<request>[^\"]*)\" (?P<status>\d{3}) .* (?P<ms>\d+)ms$")


# Terminal control sequences `docker compose logs` may add even with --no-color.
CONTROL = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def lines_of(service: str, request_id: str) -> list[str]:
    """The service's log lines that carry the id. (Docker's own timestamps are left out: every
    tier writes its log in batches, so they say when a batch was written, not when a request
    passed. HAProxy's and nginx's lines carry their own time.)"""
    result = subprocess.run(
        ["docker", "compose", "logs", "--no-color", "--no-log-prefix", service],
        capture_output=True,
        text=True,
    )
    return [CONTROL.sub("", line) for line in result.stdout.splitlines() if request_id in line]


def timing(tier: str, line: str) -> str:
    """The tier's own figures, from its line."""
    if tier == "lb" and (m := HAPROXY.search(line)):
        return (
            f"{m['request']} -> {m['server']}, status {m['status']}; HAProxy: request "
            f"{m['TR']} ms, queue {m['Tw']} ms, connect {m['Tc']} ms, response {m['Tr']} ms, "
            f"total {m['Ta']} ms"
        )
    if tier == "web" and (m := NGINX.search(line)):
        upstream = m["upstream"] if m["upstream"] != "-" else "none (served here)"
        return (
            f"{m['request']}, status {m['status']}, upstream {upstream}; nginx: request "
            f"{m['request_time']} s, upstream {m['upstream_time']} s"
        )
    if tier == "app" and (m := GUNICORN.search(line)):
        return f"{m['request']}, status {m['status']}; Gunicorn: {m['ms']} ms"
    return "(no timing in this line)"


def trace(request_id: str) -> list[tuple[str, str, str]]:
    """(tier, node, line) in the order the request crossed the tiers."""
    return [
        (tier, node, line)
        for tier, services in TIERS
        for node in services
        for line in lines_of(node, request_id)
    ]


def main() -> int:
    if len(sys.argv) != 2 or not re.fullmatch(r"[0-9A-Za-z-]{8,64}", sys.argv[1]):
        print(
            "usage: trace.py <request id>   (an X-Request-ID, e.g. from curl -i)", file=sys.stderr
        )
        return 2
    request_id = sys.argv[1]
    journey = trace(request_id)
    if not journey:
        print(f"request {request_id}: in no log of {', '.join(n for _, s in TIERS for n in s)}")
        print("(lines are written in batches, up to a second late: try again in a moment)")
        return 1
    print(f"request {request_id}")
    for step, (tier, node, line) in enumerate(journey, 1):
        print(f"{step}. {tier:<3} {node:<5} {timing(tier, line)}")
        print(f"       {line}")
    tiers = {tier for tier, *_ in journey}
    if "app" not in tiers:
        print("(no app tier: a static file, answered by nginx, or an error before the app)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
