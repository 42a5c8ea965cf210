"""Lab 08: failover tuning: make the virtual IP move to the other load balancer in under a second.

`make lab` measures the takeover as the stack is: it kills the LB holding the VIP, asks the VIP
every 20 ms until the other LB answers, and starts the killed LB again. The checker measures the
same way after the student's change, and compares. This is the one lab that sends requests to the
virtual IP (the stack's own address on its LB network, reachable from a Linux host).
"""

import subprocess
import time

from labs.lablib import Check, Lab, LabError, Stack

TITLE = "Failover tuning: the VIP moves in under a second"
TIER = "lb (keepalived)"
MINUTES = 40
SERVICES = ("lb1", "lb2")
TARGET = 1.0  # seconds


def takeover(stack: Stack) -> tuple[float | None, str, str]:
    """Kill the VIP holder; return (seconds until the other LB answers on the VIP, old, new).
    The killed LB is started again before returning."""
    holders = stack.vip_holders()
    if len(holders) != 1:
        raise LabError(f"the VIP should have one holder, it has {holders or 'none'}")
    old = holders[0]
    new = "lb2" if old == "lb1" else "lb1"
    # The clock starts when the kill is sent, and `docker kill` itself is quick: `docker compose
    # kill` spends a second or more starting up on a busy machine, while the VIP is moving.
    container = stack.container(old).get("Id", "")
    killed = time.monotonic()
    subprocess.run(["docker", "kill", container], capture_output=True, check=True)
    took = None
    while time.monotonic() - killed < 10:
        answer = stack.get("/healthz", base=stack.vip_url, timeout=0.2)
        if answer.header("X-LB") == new:
            took = time.monotonic() - killed
            break
        time.sleep(0.02)
    stack.compose("up", "--detach", "--wait", "--no-deps", "--no-recreate", old)
    return took, old, new


def start(lab: Lab) -> None:
    took, old, new = takeover(lab.stack)
    if took is None:
        raise LabError("the VIP did not move within 10 s: is the stack healthy? (make vip)")
    lab.remember("baseline", took)
    print(f"   killed {old}, the VIP holder: {new} answered on the VIP after {took:.2f} s")


def check(lab: Lab, check: Check) -> None:
    baseline = lab.recall("baseline")
    holders_before = lab.stack.vip_holders()
    if not check.point(
        len(holders_before) == 1,
        f"one LB holds the VIP ({holders_before[0] if holders_before else ''})",
        f"the VIP should have exactly one holder, it has {holders_before or 'none'}",
        "`make vip`; `docker compose logs lb1 lb2 | grep STATE` shows keepalived's elections",
    ):
        return
    took, old, new = takeover(lab.stack)
    check.point(
        took is not None,
        f"killing {old} moved the VIP: {new} answered on it after {took or 0:.2f} s",
        f"killing {old} did not move the VIP to {new} within 10 s",
        "are both LBs running keepalived with the same virtual_router_id and each other as peer?",
    )
    if took is None:
        return
    check.point(
        took < TARGET,
        f"the takeover took {took:.2f} s, under {TARGET:.0f} s",
        f"the takeover took {took:.2f} s, not under {TARGET:.0f} s",
        "the backup declares the master dead after 3 missed adverts (+ a skew): "
        "advert_int in haproxy/keepalived.conf.template",
    )
    if baseline is not None:
        check.point(
            took < baseline,
            f"faster than at the start of the lab ({baseline:.2f} s, {baseline / took:.1f} x)",
            f"not faster than at the start of the lab ({baseline:.2f} s)",
        )
    else:
        check.note("no measurement from the start of the lab: `make lab LAB=08` makes one")
    holders = []
    for _ in range(5):  # over about two seconds
        holders = lab.stack.vip_holders()
        if len(holders) != 1:
            break
    check.point(
        len(holders) == 1,
        f"after {old} came back, exactly one LB holds the VIP ({holders[0] if holders else ''})",
        f"after {old} came back, the VIP holders are {holders or 'none'}",
        "both nodes must agree on the election: same VRRP version, router id, advert_int",
    )
