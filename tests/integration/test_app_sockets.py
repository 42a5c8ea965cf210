"""Each Gunicorn worker of an app node listens on its own socket (reuse_port, app/gunicorn.conf.py),
so the kernel shares a burst of new keep-alive connections out over the workers, instead of letting
one worker take them all while the other idles.

Read inside app1 from /proc, as the kernel sees it: which process holds which listening socket on
port 8000, and which worker holds each connection of a burst this test opens."""

import json

from tests.stack import Stack

# Runs inside app1 (its image's python3, as its own user, which may read its own processes' /proc).
# Prints, for the master and each worker, the port-8000 sockets it holds: listening ones, and the
# accepted ends of a burst of keep-alive connections opened, each answered once, then closed.
INSPECT = r"""
import json, os, socket

PORT, BURST = 8000, 32


def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode()


def ppid(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def sockets_of(pid):
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            found.add(link[8:-1])
    return found


def port_sockets(state):
    # /proc/net/tcp: local address as HEXIP:HEXPORT, state 0A = listening, 01 = established.
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return {r[9] for r in rows if int(r[1].split(":")[1], 16) == PORT and r[3] == state}


# Every Gunicorn process but this one (whose command line, this script, names it too).
others = sorted((p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()), key=int)
gunicorns = [p for p in others if "gunicorn" in cmdline(p)]
master = next(p for p in gunicorns if str(ppid(p)) not in gunicorns)
workers = [p for p in gunicorns if str(ppid(p)) == master]

clients = [socket.create_connection(("127.0.0.1", PORT), timeout=10) for _ in range(BURST)]
for c in clients:
    c.sendall(b"GET /api/healthz HTTP/1.1\r\nHost: app1\r\n\r\n")
for c in clients:
    assert c.recv(4096).startswith(b"HTTP/1.1 200"), "no answer"
listening, accepted = port_sockets("0A"), port_sockets("01")
report = {
    pid: {
        "listening": len(sockets_of(pid) & listening),
        "listening_sockets": sorted(sockets_of(pid) & listening),
        "connections": len(sockets_of(pid) & accepted),
    }
    for pid in [master, *workers]
}
for c in clients:
    c.close()
print(json.dumps({"master": master, "workers": workers, "burst": BURST, "report": report}))
"""


def inspect_app1(stack: Stack) -> dict:
    result = stack.exec("app1", "python3", "-c", INSPECT)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_each_worker_listens_on_its_own_socket_and_the_master_on_none(stack: Stack) -> None:
    found = inspect_app1(stack)
    report = found["report"]
    assert len(found["workers"]) == 2, found
    assert report[found["master"]]["listening"] == 0, found
    for worker in found["workers"]:
        assert report[worker]["listening"] == 1, found
    sockets = {report[w]["listening_sockets"][0] for w in found["workers"]}
    assert len(sockets) == len(found["workers"]), f"the workers share a socket: {found}"


def test_a_burst_of_keepalive_connections_is_shared_out_over_the_workers(stack: Stack) -> None:
    # Each of the 32 connections goes to one of the two sockets by a hash: were it random, all to
    # one worker would have a chance of 2 in 2^32, fewer than 4 on either a few in 10^6. With one
    # shared socket, 8 such bursts gave 32:0, 5:27, 31:1, 32:0, 4:28, 0:32, 26:6, 31:1: this check
    # would have failed 5 times (docs/load-testing.md).
    found = inspect_app1(stack)
    report = found["report"]
    held = {w: report[w]["connections"] for w in found["workers"]}
    assert sum(held.values()) == found["burst"], found
    assert min(held.values()) >= 4, f"one worker took (nearly) every connection: {held}"
