"""The breaker: after a failed connection, requests get their 503 without trying the database,
until DB_RETRY_INTERVAL has passed; then the database is tried again."""

from flask import Flask
from guestbook.breaker import BREAKER_KEY
from sqlalchemy import URL, event

from .conftest import DB_NAME, HOST, closed_port, dispose, make_app


def offline_app(**config) -> Flask:
    url = f"postgresql+psycopg://guestbook_app:x@{HOST}:{closed_port()}/{DB_NAME}"
    return make_app(DATABASE_URL=url, DB_CONNECT_TIMEOUT=1, **config)


def connection_attempts(app: Flask) -> list[int]:
    """Count the engine's connection attempts, through SQLAlchemy's connect hook."""
    attempts: list[int] = []
    engine = app.extensions["guestbook.engine"]
    event.listen(engine, "do_connect", lambda *args: attempts.append(1))
    return attempts


def test_failed_connection_opens_the_breaker_and_later_requests_skip_the_database() -> None:
    app = offline_app(DB_RETRY_INTERVAL=60)
    attempts = connection_attempts(app)
    client = app.test_client()
    try:
        first = client.get("/api/messages")
        assert first.status_code == 503
        assert len(attempts) == 1
        for _ in range(5):
            again = client.get("/api/messages")
            assert again.status_code == 503
            assert again.get_json() == {"error": "database unavailable"}
        assert len(attempts) == 1  # none of the five tried the database
        assert client.get("/api/readyz").status_code == 503  # not ready, and no attempt either
        assert len(attempts) == 1
    finally:
        dispose(app)


def test_after_the_retry_interval_the_database_is_tried_again() -> None:
    app = offline_app(DB_RETRY_INTERVAL=0)
    attempts = connection_attempts(app)
    client = app.test_client()
    try:
        for _ in range(3):
            assert client.get("/api/messages").status_code == 503
        assert len(attempts) == 3
    finally:
        dispose(app)


def test_a_tripped_breaker_lets_requests_through_once_its_interval_is_over(
    clean_db: None, app_db_url: URL
) -> None:
    app = make_app(
        DATABASE_URL=app_db_url.render_as_string(hide_password=False), DB_RETRY_INTERVAL=0
    )
    try:
        # As after a failure; an interval of 0 has passed.
        app.extensions[BREAKER_KEY]["primary"].trip()
        assert app.test_client().get("/api/messages").status_code == 200
    finally:
        dispose(app)


def test_while_the_database_is_down_one_thread_tries_to_connect_at_a_time() -> None:
    # With three db nodes gone, one attempt costs seconds of unanswered DNS; the other threads of
    # the worker must not queue behind it, each trying too: they get their 503 at once.
    app = offline_app(DB_RETRY_INTERVAL=0)
    breaker = app.extensions[BREAKER_KEY]["primary"]
    client = app.test_client()
    try:
        assert client.get("/api/messages").status_code == 503  # the database is known to be down
        breaker.before_connect()  # as if another thread had just started an attempt
        attempts = connection_attempts(app)
        response = client.get("/api/messages")
        assert response.status_code == 503
        assert response.get_json() == {"error": "database unavailable"}
        assert attempts == []  # it did not try
        breaker.trip()  # the other thread's attempt failed: the next one may try
        assert client.get("/api/messages").status_code == 503
        assert attempts == [1]
    finally:
        dispose(app)
