"""The app's request counting (guestbook/metrics.py), read back from prometheus_client's registry:
each request counted once in its own series, its latency observed once, errors included."""

import sys
import threading
import time
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from guestbook import metrics
from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from sqlalchemy import URL

from .conftest import dispose, make_app


def requests(endpoint: str, status: str, web: str, method: str = "GET") -> float:
    """The series' count as Prometheus would read it, once the tally is written (flush)."""
    metrics.flush()
    labels = {"endpoint": endpoint, "method": method, "status": status, "web": web}
    return REGISTRY.get_sample_value("guestbook_requests_total", labels) or 0.0


def latencies(endpoint: str) -> float:
    metrics.flush()
    labels = {"endpoint": endpoint}
    return REGISTRY.get_sample_value("guestbook_request_duration_seconds_count", labels) or 0.0


def latency_samples(registry: CollectorRegistry, name: str, endpoint: str) -> dict[str, float]:
    """A histogram's buckets (by `le`), sum and count for one endpoint."""
    return {
        sample.labels.get("le", sample.name.rsplit("_", 1)[-1]): sample.value
        for metric in registry.collect()
        if metric.name == name
        for sample in metric.samples
        if sample.labels.get("endpoint") == endpoint and not sample.name.endswith("_created")
    }


def within_flush_periods(periods: int, done: Callable[[], object], what: str) -> None:
    """Wait until the flushing thread has done something: `done()` true within `periods` of its
    periods (a second each when METRICS_FLUSH_SECONDS=0), checked every 50 ms."""
    deadline = time.monotonic() + periods * (metrics.FLUSH_SECONDS or 1.0)
    while not done():
        assert time.monotonic() < deadline, f"{what}: not done within {periods} flush periods"
        time.sleep(0.05)


def test_each_request_is_counted_once_in_its_own_series(client: FlaskClient) -> None:
    # The counters are process-wide and other tests' requests add to them: compare before/after.
    whoami_web1 = requests("/api/whoami", "200", "web1")
    whoami_web2 = requests("/api/whoami", "200", "web2")
    unmatched = requests("unmatched", "404", "none")
    whoami_latencies = latencies("/api/whoami")

    for _ in range(3):
        assert client.get("/api/whoami", headers={"X-Web": "web1"}).status_code == 200
    assert client.get("/api/whoami", headers={"X-Web": "web2"}).status_code == 200
    assert client.get("/api/no-such-thing").status_code == 404  # an error is counted too

    assert requests("/api/whoami", "200", "web1") == whoami_web1 + 3
    assert requests("/api/whoami", "200", "web2") == whoami_web2 + 1
    assert requests("unmatched", "404", "none") == unmatched + 1
    assert latencies("/api/whoami") == whoami_latencies + 4


def test_nothing_is_counted_with_metrics_off() -> None:
    # The load tests' no-monitoring configuration (METRICS_ENABLED=0). /api/whoami needs no
    # database, so the app may point at none.
    app = make_app(METRICS_ENABLED=False, DATABASE_URL="postgresql+psycopg://u:x@127.0.0.1:1/db")
    assert app.test_client().get("/api/whoami", headers={"X-Web": "off"}).status_code == 200
    assert requests("/api/whoami", "200", "off") == 0.0
    dispose(app)


def test_a_handler_that_fails_is_counted_as_its_500_under_its_own_rule() -> None:
    # The counting wraps the app (a WSGI middleware): it learns the URL rule while the app is
    # answering, so a 500 made by our error handler is counted under the rule that failed.
    # TESTING off, as in production: Flask turns the exception into a response, not a raise.
    app = make_app(TESTING=False, DATABASE_URL="postgresql+psycopg://u:x@127.0.0.1:1/db")

    def fail(n: int) -> None:
        raise RuntimeError(f"a bug, on {n}")

    app.add_url_rule("/api/fails/<int:n>", view_func=fail)
    before = requests("/api/fails/<int:n>", "500", "web1")
    answer = app.test_client().get("/api/fails/7", headers={"X-Web": "web1"})
    assert answer.status_code == 500 and "error" in answer.get_json()
    assert requests("/api/fails/<int:n>", "500", "web1") == before + 1
    dispose(app)


def test_the_tally_writes_what_observing_each_request_would_have() -> None:
    # Durations on a bucket's bound (le is "less than or equal"), between bounds, and past the
    # last one (+Inf): the flushed histogram must equal one that observed each request itself.
    durations = [0.001, 0.0025, 0.003, 0.005, 0.2, 0.25, 9.0, 10.0, 12.5, 0.0]
    direct = CollectorRegistry()
    observed = Histogram(
        "direct_seconds", "d", ["endpoint"], buckets=metrics.LATENCY_BUCKETS, registry=direct
    )
    before = latency_samples(REGISTRY, "guestbook_request_duration_seconds", "/tally/check")
    for seconds in durations:
        observed.labels("/tally/check").observe(seconds)
        metrics.count("/tally/check", {"REQUEST_METHOD": "GET"}, "200", seconds)
    assert requests("/tally/check", "200", "none") == len(durations)  # flushes

    after = latency_samples(REGISTRY, "guestbook_request_duration_seconds", "/tally/check")
    expected = latency_samples(direct, "direct_seconds", "/tally/check")
    assert set(after) == set(expected) and len(expected) == len(metrics.LATENCY_BUCKETS) + 3
    for label, value in expected.items():
        assert after[label] - before.get(label, 0.0) == value, label


def test_no_count_is_lost_between_threads() -> None:
    # Gunicorn's gthread worker answers on several threads at once, each adding to one tally,
    # while the worker's flushing thread takes the tally away. Threads switch every 5 ms by
    # default, rarely at the wrong moment; switching as often as the interpreter allows, with a
    # flush after every few hundred counts, makes a tally without its lock lose counts (checked).
    before = requests("/tally/threads", "200", "web1", method="POST")
    environ = {"REQUEST_METHOD": "POST", "HTTP_X_WEB": "web1"}
    counting = threading.Event()

    def answer_many() -> None:
        for _ in range(5000):
            metrics.count("/tally/threads", environ, "200", 0.001)

    def flush_meanwhile() -> None:
        while counting.is_set():
            metrics.flush()

    threads = [threading.Thread(target=answer_many) for _ in range(4)]
    flusher = threading.Thread(target=flush_meanwhile)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    counting.set()
    try:
        flusher.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        counting.clear()
        flusher.join()
        sys.setswitchinterval(interval)
    assert requests("/tally/threads", "200", "web1", method="POST") == before + 20_000


def test_the_flushing_thread_writes_the_tally_by_itself() -> None:
    # An app with metrics on starts the process's flushing thread (once); a request's count then
    # reaches the registry within about FLUSH_SECONDS, with no flush called here.
    if metrics.FLUSH_SECONDS == 0:
        pytest.skip("METRICS_FLUSH_SECONDS=0: every request is written at once, no thread")
    app = make_app(DATABASE_URL="postgresql+psycopg://u:x@127.0.0.1:1/db")
    labels = {"endpoint": "/api/whoami", "method": "GET", "status": "200", "web": "flusher"}
    assert app.test_client().get("/api/whoami", headers={"X-Web": "flusher"}).status_code == 200
    within_flush_periods(
        10, lambda: REGISTRY.get_sample_value("guestbook_requests_total", labels), "the tally"
    )
    assert [t.name for t in threading.enumerate()].count("metrics-flush") == 1
    dispose(app)


# --- The breaker's gauge -------------------------------------------------------------------------


def breaker_down() -> float | None:
    return REGISTRY.get_sample_value("guestbook_db_breaker_down")


@pytest.fixture
def no_breaker_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process with no breaker down: other tests' apps trip theirs (their databases are absent),
    and those trips would be reported for a few seconds more."""
    monkeypatch.setattr(metrics, "_breakers_down", {})
    metrics.BREAKER_OPEN.set(0)


def test_the_gauge_stays_up_until_every_breaker_of_the_worker_has_reconnected(
    no_breaker_down: None,
) -> None:
    # An app with reads on the standbys has two breakers in each worker and the gauge is the
    # worker's: the reads' engine reconnecting says nothing of the primary's.
    primary, reads = object(), object()
    metrics.breaker_tripped(primary, time.monotonic())
    metrics.breaker_tripped(reads, time.monotonic())
    assert breaker_down() == 1
    metrics.breaker_closed(reads)
    assert breaker_down() == 1
    metrics.breaker_closed(primary)
    assert breaker_down() == 0


def test_a_trip_nothing_has_followed_up_is_reported_for_a_few_seconds_only(
    no_breaker_down: None,
) -> None:
    # A worker that gets no request after an outage never reconnects: without this, it would
    # report the database down for as long as it stays idle (it failed one CI run's check).
    breaker, still_open = object(), object()
    tripped = time.monotonic()
    metrics.breaker_tripped(breaker, tripped)
    metrics.breaker_tripped(still_open, tripped + 60)  # a long retry interval
    metrics.forget_old_trips(now=tripped + metrics.BREAKER_REPORTED_FOR - 1)
    assert breaker_down() == 1  # too early to forget either
    metrics.forget_old_trips(now=tripped + metrics.BREAKER_REPORTED_FOR + 1)
    assert set(metrics._breakers_down) == {still_open}  # reported while it answers 503s
    assert breaker_down() == 1
    metrics.breaker_closed(still_open)
    assert breaker_down() == 0


def test_the_flushing_thread_forgets_old_trips_by_itself(
    no_breaker_down: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics, "BREAKER_REPORTED_FOR", 0.0)
    app = make_app(DATABASE_URL="postgresql+psycopg://u:x@127.0.0.1:1/db")  # starts the thread
    metrics.breaker_tripped(object(), time.monotonic())
    assert breaker_down() == 1
    within_flush_periods(10, lambda: breaker_down() == 0, "forgetting the trip")
    dispose(app)


# --- The pools' gauge ----------------------------------------------------------------------------


def test_the_pool_gauge_reads_what_the_pools_have_checked_out(app_db_url: URL) -> None:
    if metrics.FLUSH_SECONDS == 0:
        pytest.skip("METRICS_FLUSH_SECONDS=0: each checkout is written at once, nothing is read")
    app = make_app(DATABASE_URL=app_db_url.render_as_string(hide_password=False))
    engine = app.extensions["guestbook.engine"]

    def in_use() -> float | None:
        metrics.sample_pools()
        return REGISTRY.get_sample_value("guestbook_db_pool_in_use")

    try:
        before = in_use()  # other tests' apps may still be alive, their pools idle
        with engine.connect(), engine.connect():
            assert in_use() == before + 2
        assert in_use() == before
        engine.dispose()  # the engine gets a new pool; the gauge follows it
        with engine.connect():
            assert in_use() == before + 1
    finally:
        dispose(app)


def test_an_error_in_one_step_of_the_flushing_thread_is_logged_and_the_others_still_run(
    no_breaker_down: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise OSError("No space left on device")  # /dev/shm full, say

    broken.__name__ = "flush"
    monkeypatch.setattr(metrics, "flush", broken)
    monkeypatch.setattr(metrics, "BREAKER_REPORTED_FOR", 0.0)
    metrics.breaker_tripped(object(), time.monotonic())
    metrics.tick()  # must not raise: it runs in a thread that would die with the error
    assert "metrics: flush failed" in caplog.text and "No space left" in caplog.text
    assert breaker_down() == 0  # the step after the failed one ran
