"""Fail fast while the database is down: a minimal circuit breaker.

When the database is unreachable, each attempt to connect costs a worker thread a second or two
(a DNS lookup that gets no answer, a connect that times out). Under load, requests then pile up
behind those threads and time out at the client, although the app could have answered "database
unavailable" at once. So after a failed connection the breaker "opens": for DB_RETRY_INTERVAL
seconds every request that needs the database gets its 503 immediately; the first request after
that interval tries the database again, and one success closes the breaker.

While the database is down, one connection attempt at a time: a worker's threads would otherwise
all try at once as soon as the interval is over, each for as long as an attempt takes (with three
db nodes, up to 1 s of unanswered DNS per node that is gone), and requests would queue behind them.
So until a connection succeeds again, a thread that wants a new connection while another thread
of the same process is already trying gets its 503 at once.

The state is a few timestamps and a flag per engine in each worker process, shared by its
threads. An app has one engine for the primary and, when reads go to the standbys
(DB_READ_TARGET_SESSION_ATTRS, db.py), a second one: each has its own breaker, so a primary that
is gone stops the writes but not the reads. Liveness (/api/healthz) never asks the breaker;
readiness asks the database.
"""

import threading
import time

from flask import current_app
from sqlalchemy import Engine, event

from . import metrics

# app.extensions[BREAKER_KEY]: the breaker of each engine, by its role ("primary", "reads").
BREAKER_KEY = "guestbook.breakers"


class DatabaseUnavailable(Exception):
    """Raised instead of trying the database while the breaker is open (errors.py -> 503)."""


class DatabaseBreaker:
    # The longest a connection attempt may keep the others waiting: past it (an attempt that
    # neither succeeded nor failed, which should not happen), another thread may try.
    ATTEMPT_TIMEOUT = 10.0

    def __init__(self, retry_interval: float) -> None:
        self.retry_interval = retry_interval
        self._open_until = 0.0  # time.monotonic() before which we don't try the database
        self._down = False  # a connection failed, and none has succeeded since
        self._attempt_until = 0.0  # while down: a thread is trying to connect until then
        self._lock = threading.Lock()

    def check(self) -> None:
        """Raise the 503 at once while the breaker is open."""
        if time.monotonic() < self._open_until:
            raise DatabaseUnavailable("database unavailable (breaker open)")

    def trip(self) -> None:
        """A connection to the database just failed: stop trying for retry_interval seconds."""
        self._open_until = time.monotonic() + self.retry_interval
        self._down = True
        self._attempt_until = 0.0
        metrics.breaker_tripped(self, self._open_until)

    def before_connect(self) -> None:
        """Before a new connection: while the database is down, let one thread try at a time."""
        if not self._down:
            return
        with self._lock:
            now = time.monotonic()
            if now < self._attempt_until:
                raise DatabaseUnavailable("database unavailable (another thread is reconnecting)")
            self._attempt_until = now + self.ATTEMPT_TIMEOUT

    def connected(self) -> None:
        """A new connection succeeded: the database is back."""
        if self._down:
            metrics.breaker_closed(self)
        self._down = False
        self._attempt_until = 0.0

    def watch(self, engine: Engine) -> "DatabaseBreaker":
        """Hook this breaker to SQLAlchemy's events around each new connection of `engine`."""
        # Before opening a connection (a listener returning None lets SQLAlchemy connect).
        event.listen(engine, "do_connect", lambda *args: self.before_connect())
        # Once the pool has a new open connection.
        event.listen(engine, "connect", lambda *args: self.connected())
        return self


def get_breaker(role: str = "primary") -> DatabaseBreaker:
    """The breaker of the current app's engine for `role` (db.py: "primary" or "reads")."""
    return current_app.extensions[BREAKER_KEY][role]
