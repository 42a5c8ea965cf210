"""Metrics for Prometheus: requests by endpoint and status, latency, database pool use, breaker.

Gunicorn runs several worker processes, each with its own counters; Prometheus must see one sum
per node. prometheus_client's multiprocess mode does that: when PROMETHEUS_MULTIPROC_DIR is set,
every metric value lives in a small memory-mapped file per process in that directory, and the
exporter (started in Gunicorn's master by gunicorn.conf.py, on its own port) adds up the files of
every process when Prometheus scrapes it. (Documentation: prometheus.github.io/client_python,
"Multiprocess Mode".) What gunicorn.conf.py does around it, and why:

- the directory is emptied when Gunicorn starts (`on_starting`): files left by an earlier run
  would be added to this run's counters;
- a worker that exits is marked dead (`child_exit`): its gauges leave the "live" sums, while its
  counters stay counted, so a node's request count never goes backwards when a worker is replaced;
- the directory is on /dev/shm (a memory filesystem): an increment is a write into a mapped page,
  never a write to the container's disk, so metrics add no per-request disk write (every tier's
  logs are batched for the same reason, logs.py).

Without PROMETHEUS_MULTIPROC_DIR (the unit tests, `flask run`) the same metrics live in the
process's own memory.

The metrics are module-level objects, made once per process: prometheus_client refuses two metrics
of the same name in one registry, and create_app may run several times in one process (the tests).
"""

import time

from flask import Flask
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import Engine, event

REQUESTS = Counter(
    "guestbook_requests",
    "HTTP requests answered by the app, by endpoint (the URL rule), method, status and the web "
    "node that forwarded them (X-Web).",
    ["endpoint", "method", "status", "web"],
)
# Buckets from 2.5 ms (a request that does not touch the database) to 10 s (beyond the database's
# 5 s statement_timeout): the p95 of any request the app answers falls between two of them.
LATENCY = Histogram(
    "guestbook_request_duration_seconds",
    "Time from the app receiving a request to its response, by endpoint.",
    ["endpoint"],
    buckets=(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
# Gauges say how to add up the processes: "livesum" adds the live workers' values (a dead worker's
# connections are gone with it), "livemax" takes the largest.
POOL_IN_USE = Gauge(
    "guestbook_db_pool_in_use",
    "Database connections checked out of the pools (a request is using them), all workers.",
    multiprocess_mode="livesum",
)
POOL_CAPACITY = Gauge(
    "guestbook_db_pool_capacity",
    "Connections the pools may open at most (pool_size + max_overflow), all workers.",
    multiprocess_mode="livesum",
)
BREAKER_OPEN = Gauge(
    "guestbook_db_breaker_down",
    "1 while the database is considered down by at least one worker (a connection failed and none "
    "has succeeded since: the breaker answers 503 at once), else 0.",
    multiprocess_mode="livemax",
)
BREAKER_TRIPS = Counter(
    "guestbook_db_breaker_trips",
    "Times a worker's breaker opened after a failed connection.",
)


def init_app(app: Flask) -> None:
    if not app.config["METRICS_ENABLED"]:
        return
    app.wsgi_app = CountRequests(app.wsgi_app)


class CountRequests:
    """WSGI middleware: counts every request the app answers, and times it. It wraps the Flask app
    as ProxyFix does (__init__.py): Gunicorn calls it with the request's environ, it calls the app,
    and it sees the status the app answers with. Errors are counted too: our error handlers make
    responses, which pass through here like any other.

    Not Flask's before_request/after_request hooks, which it replaced: with a hook registered,
    Flask checks on every request whether each hook is a coroutine function, and the hooks read
    the request through Flask's context-local proxies. Counted in instructions (callgrind, in the
    app image, /api/whoami called at the WSGI level; the app alone takes ~420,000), the hooks'
    counting took 61,000 a request and this takes 32,000, of which prometheus_client's three
    writes into the worker's mapped file (the counter, the histogram's sum and its bucket) are
    21,000 (docs/monitoring.md, "What monitoring costs").
    """

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict, start_response):
        start = time.perf_counter()
        answered = []  # (status, endpoint), once the app has answered

        def start_response_seen(status: str, headers: list, exc_info=None):
            # Flask calls this while the request is still being handled, when the Flask request
            # object is still in the environ (Werkzeug puts it there as "werkzeug.request"; Flask
            # clears it when the request ends). It knows the URL rule the path matched.
            answered.append((status[:3], endpoint_of(environ.get("werkzeug.request"))))
            return start_response(status, headers, exc_info)

        try:
            return self.wsgi_app(environ, start_response_seen)
        finally:
            # An exception out of the app (none should get here: Flask turns them into 500s) is
            # counted as the 500 Gunicorn will answer.
            status, endpoint = answered[-1] if answered else ("500", "unmatched")
            count(endpoint, environ, status, time.perf_counter() - start)


def endpoint_of(request) -> str:
    # The URL rule, not the path: /api/messages/<int:message_id> is one series, whatever the id.
    # Paths that match no rule (404s) share one label value, so a scan cannot make new series.
    rule = request.url_rule if request is not None else None
    return rule.rule if rule is not None else "unmatched"


# The counter and histogram series of each (endpoint, method, status, web) seen so far. `labels()`
# finds a series from its label values each time (checks, a lock, a lookup); this remembers it,
# one dictionary lookup per request. Bounded as the series are: endpoints are URL rules, statuses
# a few dozen, web a node name. Shared by a worker's threads: two that meet a new key at once both
# store it, and labels() gives both the same series, so no count is lost.
_series: dict[tuple[str, str, str, str], tuple] = {}


def count(endpoint: str, environ: dict, status: str, seconds: float) -> None:
    method = environ["REQUEST_METHOD"]
    # nginx sets X-Web on every request it forwards; anything else is shortened, for the same
    # reason (a client reaching the app directly could send any value).
    web = environ.get("HTTP_X_WEB", "none")[:16]
    key = (endpoint, method, status, web)
    series = _series.get(key)
    if series is None:
        series = _series[key] = (
            REQUESTS.labels(endpoint, method, status, web),
            LATENCY.labels(endpoint),
        )
    requests, latency = series
    requests.inc()
    latency.observe(seconds)


def watch_pool(engine: Engine, capacity: int) -> None:
    """Follow the engine's pool: a connection checked out (in use by a request) or checked in."""
    POOL_CAPACITY.inc(capacity)
    event.listen(engine, "checkout", lambda *args: POOL_IN_USE.inc())
    event.listen(engine, "checkin", lambda *args: POOL_IN_USE.dec())


def breaker_tripped() -> None:
    BREAKER_OPEN.set(1)
    BREAKER_TRIPS.inc()


def breaker_closed() -> None:
    BREAKER_OPEN.set(0)
