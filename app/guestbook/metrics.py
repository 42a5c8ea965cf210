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

from flask import Flask, Response, g, request
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
    app.before_request(start_timer)
    app.after_request(count_request)


def start_timer() -> None:
    g.metrics_start = time.perf_counter()


# The counter and histogram series of each (endpoint, method, status, web) seen so far. `labels()`
# finds a series from its label values each time (checks, a lock, a lookup); this remembers it,
# one dictionary lookup per request. Bounded as the series are: endpoints are URL rules, statuses
# a few dozen, web a node name. Shared by a worker's threads: two that meet a new key at once both
# store it, and labels() gives both the same series, so no count is lost.
_series: dict[tuple[str, str, int, str], tuple] = {}


def count_request(response: Response) -> Response:
    """Count every answered request, errors included (our error handlers make responses too, and
    after_request runs for them)."""
    start = g.pop("metrics_start", None)
    # The request itself, not the `request` proxy: each use of the proxy first looks up the
    # current request, and this reads four of its fields.
    req = request._get_current_object()
    # The URL rule, not the path: /api/messages/<int:message_id> is one series, whatever the id.
    # Paths that match no rule (404s) share one label value, so a scan cannot make new series.
    endpoint = req.url_rule.rule if req.url_rule is not None else "unmatched"
    # nginx sets X-Web on every request it forwards; anything else is shortened, for the same
    # reason (a client reaching the app directly could send any value).
    web = req.headers.get("X-Web", "none")[:16]
    key = (endpoint, req.method, response.status_code, web)
    series = _series.get(key)
    if series is None:
        series = _series[key] = (
            REQUESTS.labels(endpoint, req.method, str(response.status_code), web),
            LATENCY.labels(endpoint),
        )
    requests, latency = series
    requests.inc()
    if start is not None:
        latency.observe(time.perf_counter() - start)
    return response


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
