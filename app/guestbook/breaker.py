"""Fail fast while the database is down: a minimal circuit breaker.

When the database is unreachable, each attempt to connect costs a worker thread a second or two
(a DNS lookup that gets no answer, a connect that times out). Under load, requests then pile up
behind those threads and time out at the client, although the app could have answered "database
unavailable" at once. So after a failed connection the breaker "opens": for DB_RETRY_INTERVAL
seconds every request that needs the database gets its 503 immediately; the first request after
that interval tries the database again, and one success closes the breaker.

The state is a single timestamp per worker process (threads share it; a float assignment is
atomic in CPython). Liveness (/api/healthz) never asks the breaker; readiness asks the database.
"""

import time

from flask import Flask, current_app

BREAKER_KEY = "guestbook.breaker"


class DatabaseUnavailable(Exception):
    """Raised instead of trying the database while the breaker is open (errors.py -> 503)."""


class DatabaseBreaker:
    def __init__(self, retry_interval: float) -> None:
        self.retry_interval = retry_interval
        self._open_until = 0.0  # time.monotonic() before which we don't try the database

    def check(self) -> None:
        """Raise the 503 at once while the breaker is open."""
        if time.monotonic() < self._open_until:
            raise DatabaseUnavailable("database unavailable (breaker open)")

    def trip(self) -> None:
        """A connection to the database just failed: stop trying for retry_interval seconds."""
        self._open_until = time.monotonic() + self.retry_interval


def init_app(app: Flask) -> None:
    app.extensions[BREAKER_KEY] = DatabaseBreaker(app.config["DB_RETRY_INTERVAL"])


def get_breaker() -> DatabaseBreaker:
    return current_app.extensions[BREAKER_KEY]
