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

Requests are tallied in the worker's own memory and written into those files once a second
(`flush`, by a thread of each worker; and when a worker exits): a write into a mapped file goes
through prometheus_client's lock and its struct packing, and three of them per request (the
counter, the histogram's sum and its bucket) were two thirds of the counting's cost. The price:
the figures reach Prometheus up to a second later, and a worker that is killed outright loses
its last second's tally (docs/monitoring.md, "What monitoring costs"). The same thread reads
the database pools' use once a second, instead of following every checkout (`sample_pools`).

Without PROMETHEUS_MULTIPROC_DIR (the unit tests, `flask run`) the same metrics live in the
process's own memory.

The metrics are module-level objects, made once per process: prometheus_client refuses two metrics
of the same name in one registry, and create_app may run several times in one process (the tests).
"""

import logging
import os
import threading
import time
import weakref
from bisect import bisect_left

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
LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LATENCY = Histogram(
    "guestbook_request_duration_seconds",
    "Time from the app receiving a request to its response, by endpoint.",
    ["endpoint"],
    buckets=LATENCY_BUCKETS,
)
# The histogram's upper bounds as prometheus_client keeps them (+Inf last): a duration falls in
# the first bucket whose bound is >= it, as Histogram.observe decides.
_BOUNDS = (*LATENCY_BUCKETS, float("inf"))
log = logging.getLogger(__name__)
# How often each worker writes its tally into its metric files and reads its pools (Prometheus
# scrapes every 2 s). 0: no tally, every request and every pool checkout written at once, as
# before (the load tests' metrics-unbatched configuration measures the difference).
FLUSH_SECONDS = float(os.environ.get("METRICS_FLUSH_SECONDS", "1"))
# How long a worker reports its breaker's last trip (guestbook_db_breaker_down), when nothing has
# tried the database since: a worker that gets no request after an outage learns nothing new, and
# without this it would report the database down until its next request, minutes later perhaps.
# Longer than the breaker's retry interval and a scrape interval, so that an outage with traffic
# reads as one steady 1, not as blinks.
BREAKER_REPORTED_FOR = 5.0
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
    "1 while at least one worker holds the database for down: a connection failed, none has "
    f"succeeded since, and its breaker tripped less than {BREAKER_REPORTED_FOR:g} s ago (while the "
    "database stays down, the requests that try it trip it again every retry interval), else 0.",
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
    start_flushing()


class CountRequests:
    """WSGI middleware: counts every request the app answers, and times it. It wraps the Flask app
    as ProxyFix does (__init__.py): Gunicorn calls it with the request's environ, it calls the app,
    and it sees the status the app answers with. Errors are counted too: our error handlers make
    responses, which pass through here like any other.

    Not Flask's before_request/after_request hooks, which it replaced: with a hook registered,
    Flask checks on every request whether each hook is a coroutine function, and the hooks read
    the request through Flask's context-local proxies. Counted in instructions (callgrind, in the
    app image, /api/whoami called at the WSGI level; the app alone takes ~420,000), the hooks'
    counting took 61,000 a request and this took 32,000, of which prometheus_client's three
    writes into the worker's mapped file (the counter, the histogram's sum and its bucket) were
    21,000; those writes are now made once a second for all the requests since (`count`, `flush`;
    docs/monitoring.md, "What monitoring costs").
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


# The worker's tally since its last flush: for each (endpoint, method, status, web), a list of
# [requests, seconds in all, requests in each latency bucket...]. Bounded as the series are:
# endpoints are URL rules, statuses a few dozen, web a node name. A worker's threads share it, so
# it is changed under a lock (an uncontended lock costs far less than one write into a mapped file).
_tally: dict[tuple[str, str, str, str], list] = {}
_tally_lock = threading.Lock()


def count(endpoint: str, environ: dict, status: str, seconds: float) -> None:
    """Add one answered request to the worker's tally (written out by `flush`)."""
    method = environ["REQUEST_METHOD"]
    # nginx sets X-Web on every request it forwards; anything else is shortened, for the same
    # reason (a client reaching the app directly could send any value).
    web = environ.get("HTTP_X_WEB", "none")[:16]
    key = (endpoint, method, status, web)
    if FLUSH_SECONDS == 0:
        write_at_once(key, seconds)
        return
    bucket = 2 + bisect_left(_BOUNDS, seconds)
    with _tally_lock:
        tally = _tally.get(key)
        if tally is None:
            tally = _tally[key] = [0, 0.0] + [0] * len(_BOUNDS)
        tally[0] += 1
        tally[1] += seconds
        tally[bucket] += 1


def flush() -> None:
    """Write the tally into the metrics (in multiprocess mode, the worker's mapped files) and
    start a new one. What Histogram.observe would have written, request by request: the sum, and
    one count per bucket (prometheus_client stores the buckets uncumulated, as here)."""
    global _tally
    with _tally_lock:
        tally, _tally = _tally, {}
    for (endpoint, method, status, web), (requests, seconds, *buckets) in tally.items():
        REQUESTS.labels(endpoint, method, status, web).inc(requests)
        latency = LATENCY.labels(endpoint)
        latency._sum.inc(seconds)
        for value, requests_in_bucket in zip(latency._buckets, buckets, strict=True):
            if requests_in_bucket:
                value.inc(requests_in_bucket)


# METRICS_FLUSH_SECONDS=0 only: the counter and histogram series of each key seen so far (labels()
# finds a series from its label values each time: checks, a lock, a lookup).
_series: dict[tuple[str, str, str, str], tuple] = {}


def write_at_once(key: tuple[str, str, str, str], seconds: float) -> None:
    """One request written into the metrics at once: three writes into the worker's mapped file
    (the counter, the histogram's sum and its bucket)."""
    series = _series.get(key)
    if series is None:
        series = _series[key] = (REQUESTS.labels(*key), LATENCY.labels(key[0]))
    requests, latency = series
    requests.inc()
    latency.observe(seconds)


# The process whose flushing thread runs: threads do not survive a fork, so each Gunicorn worker
# (which loads the app after the fork: preload_app is off) starts its own, once.
_flushing_in_pid = 0


def start_flushing() -> None:
    """Start this process's thread that flushes the tally every FLUSH_SECONDS (once per process,
    however many apps it creates), reads the pools (`sample_pools`) and lets old breaker trips go
    (`forget_old_trips`). With METRICS_FLUSH_SECONDS=0 there is no tally and the pools report
    every checkout themselves: the thread only does the last, every second.
    A daemon thread: it never holds a worker's exit up; Gunicorn's worker_exit hook flushes what
    is left (gunicorn.conf.py)."""
    global _flushing_in_pid
    if _flushing_in_pid == os.getpid():
        return
    _flushing_in_pid = os.getpid()

    def flush_periodically() -> None:
        while True:
            time.sleep(FLUSH_SECONDS or 1.0)
            tick()

    threading.Thread(target=flush_periodically, name="metrics-flush", daemon=True).start()


def tick() -> None:
    """What the flushing thread does each period. An error is logged, never raised: the thread
    would die with it, and the worker's figures would stop moving without a word."""
    for step in (flush, sample_pools, forget_old_trips):
        try:
            step()
        except Exception:
            log.exception("metrics: %s failed; the figures may lag", step.__name__)


# The engines whose pools this worker reports (an app has one or two; the unit tests make many
# apps in one process: a weak set, so an app that is gone takes its engines out of it).
_engines: "weakref.WeakSet[Engine]" = weakref.WeakSet()


def watch_pool(engine: Engine, capacity: int) -> None:
    """Report the engine's pool: connections checked out (in use by a request) against capacity.

    Read once a second by the flushing thread (`sample_pools`), not followed on every checkout
    and checkin: SQLAlchemy's pool events, with a listener, and two writes into the mapped file
    cost every database request something, for a gauge Prometheus reads every few seconds anyway.
    With METRICS_FLUSH_SECONDS=0 the events are followed as before (the metrics-unbatched load
    test configuration)."""
    POOL_CAPACITY.inc(capacity)
    if FLUSH_SECONDS == 0:
        event.listen(engine, "checkout", lambda *args: POOL_IN_USE.inc())
        event.listen(engine, "checkin", lambda *args: POOL_IN_USE.dec())
    else:
        _engines.add(engine)


def sample_pools() -> None:
    """Set the pool gauge to the connections this worker's pools have checked out now. Read
    without the pools' lock: a count that a checkout changes while it is read is off by one for
    a second."""
    if FLUSH_SECONDS == 0:
        return
    # engine.pool, not a pool kept from before: engine.dispose() gives the engine a new pool.
    POOL_IN_USE.set(sum(engine.pool.checkedout() for engine in list(_engines)))


# The worker's breakers that hold their database for down (an app has one per engine, breaker.py;
# the unit tests make many apps in one process), each with the time.monotonic() until which it is
# reported: BREAKER_REPORTED_FOR after its last trip, or longer if it stays open longer.
_breakers_down: dict[object, float] = {}
_breakers_lock = threading.Lock()


def breaker_tripped(breaker: object, open_until: float) -> None:
    with _breakers_lock:
        _breakers_down[breaker] = max(time.monotonic() + BREAKER_REPORTED_FOR, open_until)
        BREAKER_OPEN.set(1)
    BREAKER_TRIPS.inc()


def breaker_closed(breaker: object) -> None:
    """A connection succeeded: this breaker's database is back."""
    with _breakers_lock:
        _breakers_down.pop(breaker, None)
        BREAKER_OPEN.set(1 if _breakers_down else 0)


def forget_old_trips(now: float | None = None) -> None:
    """Stop reporting the breakers whose report time is over at `now` (time.monotonic() if not
    given; the flushing thread calls this every second or so)."""
    now = time.monotonic() if now is None else now
    with _breakers_lock:
        over = [breaker for breaker, until in _breakers_down.items() if until < now]
        if not over:
            return
        for breaker in over:
            del _breakers_down[breaker]
        BREAKER_OPEN.set(1 if _breakers_down else 0)
