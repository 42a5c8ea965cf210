"""Lab 05, a reference solution, performed while the checker's load runs (`during_check`).

By hand, in a second terminal while `make lab-check LAB=05` runs:
    api() { docker compose exec -T -u haproxy "$1" sh -c \
              "echo '$2' | socat stdio /var/run/haproxy/admin.sock"; }
    for lb in lb1 lb2; do api $lb "set server web/web1 state drain"; done
    api lb1 "show stat" | cut -d, -f1,2,5,18 | grep ^web     # wait for scur 0 on both LBs
    docker compose restart web1                              # healthy again: docker compose ps
    for lb in lb1 lb2; do api $lb "set server web/web1 state ready"; done
(`make rolling-restart` does the same for every node: scripts/rolling-restart.sh.)
"""

from labs.lablib import Lab, poll

LBS = ("lb1", "lb2")


def apply(lab: Lab) -> None:
    """Nothing to change in the files: the procedure is the solution."""


def during_check(lab: Lab) -> None:
    lab.stack.wait_for_load()  # the checker's load has begun: answers go through the LBs
    for lb in LBS:
        lab.stack.haproxy(lb, "set server web/web1 state drain")
    poll(
        lambda: all(lab.stack.web_servers(lb)["web1"]["scur"] == "0" for lb in LBS),
        timeout=30,
    )
    lab.stack.compose("restart", "web1", check=True)
    poll(
        lambda: lab.stack.container("web1")["State"].get("Health", {}).get("Status") == "healthy",
        timeout=60,
    )
    for lb in LBS:
        lab.stack.haproxy(lb, "set server web/web1 state ready")
