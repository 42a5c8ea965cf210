"""Lab 09: worker models: with a distant database, find Gunicorn settings that serve at least 2.5 x
the throughput of the tutorial default (one sync worker per node).

`make lab` recreates the app nodes with the overlay remote-db.yml (100 ms per database round trip,
Gunicorn settings from gunicorn.env: sync, 1 worker, 1 thread) and measures the throughput of
GET /api/messages through lb1: 24 clients, each sending its next request when the last one is
answered, for 6 s. The checker measures the same way with the student's settings and compares:
a ratio measured on the same machine in the same session, never an absolute figure.
"""

import threading
import time

from labs.lablib import Check, Lab, LabError, Stack

TITLE = "Worker models: 2.5 x the throughput with a distant database"
TIER = "app (Gunicorn)"
MINUTES = 40
SERVICES = ("app1", "app2")
OVERLAY = "labs/09-worker-models/remote-db.yml"
CLIENTS = 24
SECONDS = 6.0
TARGET = 2.5
# Requests per second the load never exceeds (haproxy.cfg may limit API reads per client).
MAX_RATE = 80
LATENCY = 0.1


def throughput(stack: Stack) -> tuple[float, int]:
    """(answers per second, failed) of a closed-loop load: CLIENTS threads, SECONDS long, each
    sending its next request when the last is answered, but all together at most MAX_RATE a
    second: below the load balancer's rate limit for API reads per client, and far above what
    the target needs (TARGET x the sync default's ~17-20 answers/s)."""
    counts = [0] * CLIENTS
    failures = [0] * CLIENTS
    end = time.monotonic() + SECONDS
    interval = CLIENTS / MAX_RATE  # per client

    def client(n: int) -> None:
        while time.monotonic() < end:
            began = time.monotonic()
            if stack.get("/api/messages?limit=5", timeout=10).status == 200:
                counts[n] += 1
            else:
                failures[n] += 1
            time.sleep(max(0.0, began + interval - time.monotonic()))

    began = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SECONDS + 15)
    return sum(counts) / (time.monotonic() - began), sum(failures)


def start(lab: Lab) -> None:
    lab.use_overlay(OVERLAY)
    print("   recreating app1 app2: 100 ms per database round trip, Gunicorn from gunicorn.env")
    if not lab.stack.up_and_wait("app1", "app2"):
        raise LabError("app1 and app2 did not become healthy: `docker compose ps`")
    lab.stack.get("/api/readyz")  # the pools' first connections, before measuring
    rate, failed = throughput(lab.stack)
    if failed or rate <= 0:
        raise LabError(f"the starting measurement failed ({failed} errors): is the stack healthy?")
    lab.remember("baseline", rate)
    print(f"   measured with the starting settings: {rate:.0f} answers/s")


def check(lab: Lab, check: Check) -> None:
    baseline = lab.recall("baseline")
    if not check.point(
        bool(baseline),
        f"the starting throughput is known ({baseline or 0:.0f} answers/s)",
        "the checker has no starting measurement",
        "run `make lab LAB=09` first: it sets the distant database up and measures",
    ):
        return
    slowest = min(lab.stack.get("/api/messages?limit=1").seconds for _ in range(3))
    check.point(
        slowest >= LATENCY * 0.9,
        f"the database is still distant: a request takes {slowest * 1000:.0f} ms",
        f"a request takes {slowest * 1000:.0f} ms: the simulated latency is gone",
        'restart the app tier with the lab\'s overlay: make lab-up SERVICES="app1 app2"',
    )
    rate, failed = throughput(lab.stack)
    check.note(f"{CLIENTS} clients for {SECONDS:.0f} s: {rate:.0f} answers/s, {failed} failed")
    check.point(
        failed == 0,
        "no request failed under the load",
        f"{failed} requests failed under the load",
        "`docker compose logs app1`: are workers timing out, is the database pool too small "
        "(DB_POOL_SIZE, DB_MAX_OVERFLOW)?",
    )
    check.point(
        rate >= TARGET * baseline,
        f"{rate / baseline:.1f} x the starting throughput ({rate:.0f} against {baseline:.0f}"
        f" answers/s): at least {TARGET:g} x",
        f"{rate / baseline:.1f} x the starting throughput ({rate:.0f} against {baseline:.0f}"
        f" answers/s): the target is {TARGET:g} x",
        "while a sync worker waits 100 ms for the database it serves nobody: "
        "what lets one process overlap those waits? (app/gunicorn.conf.py, worker_class)",
    )
