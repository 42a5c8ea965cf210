"""A simulated remote database: DB_SIMULATED_LATENCY_MS of waiting on every round trip.

For benchmarks only (loadtests/configs/remote-db.yml); 0, the default, adds nothing at all.

On one small machine the database answers in a fraction of a millisecond, so a request spends
almost all its time on the CPU and the worker model hardly matters. In production the database
is usually another host: every round trip then costs a network latency (0.5 ms in one data
centre, 1-2 ms across availability zones, more across regions) during which the worker waits and
the CPU is free. How a Gunicorn configuration fills that wait (sync workers cannot, gthread
workers can) is exactly what the README's worker-model comparison shows.

The wait is made here, in the app, just before each statement goes out (and a few times per new
connection, for the handshake): the request's thread sleeps, which releases the interpreter lock
and costs no CPU, like waiting on a real network. Alternatives that were not chosen: the kernel's
`netem` qdisc (adds delay to packets; not available on every Docker host, ours lacks it), or a
delaying TCP proxy between app and database (works anywhere, but copies every byte and so costs
CPU on the very machine being measured).
"""

import time

from sqlalchemy import Engine, event

# Round trips of a new connection: TCP handshake, startup, SCRAM authentication (two exchanges).
CONNECT_ROUND_TRIPS = 4


def init_engine(engine: Engine, latency_ms: float) -> None:
    """Make every round trip of `engine` wait `latency_ms` milliseconds (nothing if 0)."""
    if latency_ms <= 0:
        return
    seconds = latency_ms / 1000

    # One round trip per statement: the app runs in autocommit (db.py), so there is no BEGIN or
    # COMMIT to add, and psycopg sends a statement with its parameters in one exchange.
    @event.listens_for(engine, "before_cursor_execute")
    def wait_for_statement(*_args) -> None:
        time.sleep(seconds)

    @event.listens_for(engine, "connect")
    def wait_for_handshake(*_args) -> None:
        time.sleep(CONNECT_ROUND_TRIPS * seconds)
