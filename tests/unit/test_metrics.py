"""The app's request counting (guestbook/metrics.py), read back from prometheus_client's registry:
each request counted once in its own series, its latency observed once, errors included."""

from flask.testing import FlaskClient
from prometheus_client import REGISTRY

from .conftest import dispose, make_app


def requests(endpoint: str, status: str, web: str) -> float:
    labels = {"endpoint": endpoint, "method": "GET", "status": status, "web": web}
    return REGISTRY.get_sample_value("guestbook_requests_total", labels) or 0.0


def latencies(endpoint: str) -> float:
    labels = {"endpoint": endpoint}
    return REGISTRY.get_sample_value("guestbook_request_duration_seconds_count", labels) or 0.0


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
