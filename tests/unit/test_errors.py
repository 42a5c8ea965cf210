"""An unexpected exception is our bug: a generic 500 JSON answer, with the traceback in the log."""

import logging

import pytest
from flask.testing import FlaskClient


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
