"""An unexpected exception is our bug: a generic 500 JSON answer, with the traceback in the log.
The database's failures are 503s, told apart in the log: an outage, a standby where the primary
was, credentials the database rejects."""

import logging

import pytest
from flask.testing import FlaskClient
from guestbook.breaker import BREAKER_KEY
from guestbook.db import ENGINE_KEY
from sqlalchemy import URL, event

from .conftest import dispose, make_app


def test_unexpected_exception_is_500_json_and_logged(app, caplog: pytest.LogCaptureFixture) -> None:
    def boom():
        raise RuntimeError("a bug")

    app.add_url_rule("/api/boom", view_func=boom)
    client: FlaskClient = app.test_client()
    with caplog.at_level(logging.ERROR, logger="guestbook"):
        response = client.get("/api/boom", headers={"X-Request-ID": "rid-500"})

    assert response.status_code == 500
    assert response.get_json() == {"error": "internal server error"}
    assert response.headers["X-App"] == "app-test"
    # The details go to the log, not to the client.
    assert "a bug" not in response.get_data(as_text=True)
    record = next(r for r in caplog.records if "rid-500" in r.getMessage())
    assert record.exc_info is not None
    assert "RuntimeError: a bug" in caplog.text


def test_database_unavailable_is_logged_as_a_warning(
    offline_client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="guestbook"):
        offline_client.get("/api/readyz", headers={"X-Request-ID": "rid-503"})
    [record] = [r for r in caplog.records if "rid-503" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "database unavailable" in record.getMessage()


def test_a_write_refused_by_a_standby_is_a_503_and_empties_the_pool(app, caplog) -> None:
    # After a failover, pooled connections may lead to the former primary, now a read-only
    # standby. Made here by turning this app's new connections read-only, as a standby's are.
    engine = app.extensions[ENGINE_KEY]
    client: FlaskClient = app.test_client()
    assert client.get("/api/messages").status_code == 200  # one pooled, writable connection

    def read_only(dbapi_connection, connection_record) -> None:
        dbapi_connection.autocommit = True
        dbapi_connection.execute("SET default_transaction_read_only = on")
        dbapi_connection.autocommit = False

    engine.dispose()  # the pool starts again, with connections that are read-only
    event.listen(engine, "connect", read_only)
    with caplog.at_level(logging.WARNING, logger="guestbook"):
        refused = client.post("/api/messages", json={"author": "a", "text": "on a standby"})
    assert refused.status_code == 503
    assert refused.get_json() == {"error": "database unavailable"}
    assert "read-only transaction" in caplog.text
    # Treated as a disconnect: SQLAlchemy marked the whole pool invalid (each connection opened
    # before now is replaced at its next checkout), and the breaker opened (retry interval 0.5 s).
    assert engine.pool._invalidate_time > 0
    assert client.get("/api/messages").status_code == 503

    event.remove(engine, "connect", read_only)
    app.extensions[BREAKER_KEY]["primary"].connected()
    app.extensions[BREAKER_KEY]["primary"]._open_until = 0.0  # as if the interval had passed
    assert client.post("/api/messages", json={"author": "a", "text": "primary"}).status_code == 201


def test_rejected_credentials_are_a_configuration_error_not_an_outage(
    app_db_url: URL, caplog: pytest.LogCaptureFixture
) -> None:
    # As after `.secrets/` was made anew beside an old database volume: a wrong password.
    url = app_db_url.set(password="not-the-password")
    app = make_app(DATABASE_URL=url.render_as_string(hide_password=False))
    try:
        with caplog.at_level(logging.WARNING, logger="guestbook"):
            response = app.test_client().get("/api/readyz", headers={"X-Request-ID": "rid-auth"})
        assert response.status_code == 503
        assert response.get_json() == {
            "error": "database unavailable: it rejects the app's credentials"
        }
        [record] = [r for r in caplog.records if "rid-auth" in r.getMessage()]
        assert record.levelno == logging.ERROR
        assert "database configuration error" in record.getMessage()
        assert "password authentication failed" in record.getMessage()
        assert "not-the-password" not in caplog.text
    finally:
        dispose(app)


def test_routing_redirect_has_a_json_body_and_keeps_the_clients_host_and_port(
    client: FlaskClient,
) -> None:
    # `//` is merged by werkzeug's router with a 308. Behind the proxies, the Host header is the
    # client's own (port included) and X-Forwarded-Proto says whether it came over HTTPS.
    response = client.get(
        "/api/messages//1",
        headers={"Host": "127.0.0.1:8443", "X-Forwarded-Proto": "https"},
    )
    assert response.status_code == 308
    assert response.headers["Location"] == "https://127.0.0.1:8443/api/messages/1"
    assert response.content_type == "application/json"
    assert response.get_json() == {
        "error": "permanent redirect",
        "location": "https://127.0.0.1:8443/api/messages/1",
    }
