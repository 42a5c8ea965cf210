"""Lab 06: scale out: add a third app node, app3, to the pool while the site is in use, with no
failed request.

The checker sends a steady load through lb1 (10 requests/s, one POST in four) and waits until
app3 has answered requests through both web nodes (X-Web and X-App of the answers), then a few
seconds more; or LAB_WAIT seconds. It also checks that app3 writes to the database and sits on
the app tier's networks only.
"""

import time

from labs.lablib import Check, Lab, Stack
from tests.failover.load import LoadClient

TITLE = "Scale out: a third app node, no failed request"
TIER = "app + web"
MINUTES = 40
SERVICES = ("app1", "app2", "web1", "web2")  # reset: the files' pool (an app3 not in them goes)
RATE = 10
NEW = "app3"


def start(lab: Lab) -> None:
    print(f"   the app pool is app1 and app2; add {NEW} while `make lab-check LAB=06` runs")


def reset(stack: Stack) -> None:
    stack.put_web_nodes_in_rotation()


def check(lab: Lab, check: Check) -> None:
    check.note(
        f"sending {RATE} requests/s through lb1; within {lab.wait:.0f} s: add {NEW} to the pool "
        "of both web nodes"
    )
    duration = lab.wait + 15
    load = LoadClient(
        lab.stack.url, rate=RATE, duration=duration, max_requests=int(duration * RATE)
    )

    def paths() -> set[tuple[str, str]]:
        return {(o.web, o.app) for o in load.results() if o.ok}

    with load:
        deadline = time.monotonic() + lab.wait
        while time.monotonic() < deadline:
            if {("web1", NEW), ("web2", NEW)} <= paths():
                break
            time.sleep(0.5)
        end = load.now() + 4
        while load.now() < end:
            time.sleep(0.2)
    results, failed = load.results(), load.failed()
    via = sorted(web for web, app in paths() if app == NEW)

    check.point(
        bool(via),
        f"{NEW} answers requests through the load balancer",
        f"no request was answered by {NEW}",
        f"add {NEW} to docker-compose.yml (like app2) and start it: "
        f"docker compose up -d --no-deps {NEW}",
    )
    check.point(
        via == ["web1", "web2"],
        f"both web nodes send requests to {NEW}",
        f"{NEW} is reached only through {via or 'no web node'}",
        "add it to the upstream (nginx/conf.d/upstream-app.conf) and rebuild web1 and web2, "
        "one at a time, each drained in HAProxy first (lab 05)",
    )
    check.point(
        any(o.method == "POST" and o.status == 201 and o.app == NEW for o in results),
        f"{NEW} stores messages (a POST it answered got 201)",
        f"{NEW} stored no message (no POST answered 201 by it)",
        "does it have the database password (secrets:) and DB_HOST? Copy app2's definition",
    )
    networks = set(lab.stack.container(NEW).get("NetworkSettings", {}).get("Networks", {}))
    tiers = {name.removeprefix(f"{lab.stack.project}_") for name in networks}
    check.point(
        tiers == {"web_app", "app_db"},
        f"{NEW} is on the app tier's networks only (web_app, app_db)",
        f"{NEW} is on these networks: {sorted(tiers) or 'none'} (expected web_app and app_db)",
        "each tier shares a network only with its neighbours (README 'The tiers')",
    )
    check.point(
        bool(results) and not failed,
        f"0 of {len(results)} requests failed while {NEW} joined",
        f"{len(failed)} of {len(results)} requests failed: "
        + ", ".join(f"{o.start:.1f}s {o.status or o.error} via {o.web}" for o in failed[:5]),
        "start app3 before any nginx names it; take each web node out of rotation before its "
        "restart (lab 05)",
    )
