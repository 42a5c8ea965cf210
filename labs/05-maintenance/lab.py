"""Lab 05: maintenance without errors: take a web node out of rotation through HAProxy's runtime
API, restart it, put it back, while a load runs.

The checker sends a steady load through lb1 (10 requests/s, one POST in four) and watches, about
once a second, both LBs' runtime API (`show servers state`: taken out by an operator, by drain,
maintenance or weight 0) and the web containers (restarted: a new start time or a new
container). It stops once a node has been taken out on both LBs, restarted while out, and put
back UP on both; or after LAB_WAIT seconds.
"""

import time

from labs.lablib import Check, Lab, Stack
from tests.failover.load import LoadClient

TITLE = "Maintenance without errors: drain, restart, put back"
TIER = "lb + web"
MINUTES = 30
SERVICES = ()
LBS = ("lb1", "lb2")
WEBS = ("web1", "web2")
RATE = 10


def start(lab: Lab) -> None:
    lab.stack.put_web_nodes_in_rotation()
    print("   both web nodes are in rotation on lb1 and lb2")


def reset(stack: Stack) -> None:
    stack.put_web_nodes_in_rotation()


class Watch:
    """What has happened to each web node since the check began."""

    def __init__(self, lab: Lab) -> None:
        self.stack = lab.stack
        self.out_both = {w: False for w in WEBS}  # out of rotation on both LBs, at last look
        self.started = self.starts()
        self.drained = {w: False for w in WEBS}
        self.restarted = {w: False for w in WEBS}
        self.restarted_while_out = {w: False for w in WEBS}
        self.back_at: dict[str, float] = {}

    def starts(self) -> dict[str, tuple]:
        containers = {w: self.stack.container(w) for w in WEBS}
        return {
            w: (c.get("Id"), c.get("State", {}).get("StartedAt")) for w, c in containers.items()
        }

    def look(self, at: float) -> None:
        out = {lb: self.stack.out_of_rotation(lb) for lb in LBS}
        started = self.starts()
        for web in WEBS:
            out_both = all(out[lb].get(web) for lb in LBS)
            self.drained[web] |= out_both
            if started[web] != self.started[web]:
                self.restarted[web] = True
                # Out at the look before the restart, or still out at the first look after it.
                self.restarted_while_out[web] |= self.out_both[web] or out_both
            if (
                self.restarted[web]
                and web not in self.back_at
                and not any(out[lb].get(web) for lb in LBS)
            ):
                statuses = {self.stack.web_servers(lb).get(web, {}).get("status") for lb in LBS}
                if statuses == {"UP"}:
                    self.back_at[web] = at
            self.out_both[web] = out_both
        self.started = started

    def node(self) -> str:
        """The node that went furthest through the procedure."""
        return max(
            WEBS, key=lambda w: (w in self.back_at, self.restarted[w], self.drained[w], w == "web1")
        )


def check(lab: Lab, check: Check) -> None:
    check.note(
        f"sending {RATE} requests/s through lb1; within {lab.wait:.0f} s: take a web node out of "
        "rotation on lb1 and lb2, restart it, put it back"
    )
    duration = lab.wait + 15
    load = LoadClient(
        lab.stack.url, rate=RATE, duration=duration, max_requests=int(duration * RATE)
    )
    with load:
        watch = Watch(lab)
        deadline = time.monotonic() + lab.wait
        while time.monotonic() < deadline and not watch.back_at:
            watch.look(load.now())
            time.sleep(0.3)
        # A few more seconds of load, to see the node answer again.
        end = load.now() + 4
        while load.now() < end:
            time.sleep(0.2)
    node = watch.node()
    results = load.results()
    failed = load.failed()

    check.point(
        watch.drained[node],
        f"{node} was taken out of rotation on both lb1 and lb2",
        "no web node was taken out of rotation on both load balancers",
        "`set server web/web1 state drain` on each LB's runtime API (README 'Where to look')",
    )
    check.point(
        watch.restarted_while_out[node],
        f"{node} was restarted while out of rotation",
        f"{node} was not restarted while out of rotation"
        + (" (it was restarted while still in rotation)" if watch.restarted[node] else ""),
        "wait until it has no request in progress (`scur` in `show stat`), then "
        f"`docker compose restart {node}`",
    )
    back = watch.back_at.get(node)
    served_after = back is not None and any(o.web == node and o.start > back for o in results)
    check.point(
        served_after,
        f"{node} is back in rotation (UP on both LBs) and answers requests again",
        f"{node} is not back in rotation on both LBs, answering requests",
        f"`set server web/{node} state ready` on both LBs, once the container is healthy",
    )
    check.point(
        bool(results) and not failed,
        f"0 of {len(results)} requests failed during the maintenance",
        f"{len(failed)} of {len(results)} requests failed: "
        + ", ".join(f"{o.start:.1f}s {o.status or o.error}" for o in failed[:5]),
        "a node must have no request in progress when it stops: drain, wait, then restart",
    )
