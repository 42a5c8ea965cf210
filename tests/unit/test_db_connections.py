"""How the app uses its database connections: one round trip per request, no ping before use,
and pooled connections that PostgreSQL closed are replaced without the client noticing.

Round trips are counted in libpq's own protocol trace (every message the client sends), so the
count is what really crossed the network, whatever SQLAlchemy or psycopg do internally.
"""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from guestbook.db import ENGINE_KEY
from sqlalchemy import Engine, event, text

from tests.unit.conftest import APP_USER, count_messages, dispose, make_app

MESSAGE = {"author": "ada", "text": "hello"}


class ProtocolTrace:
    """libpq's trace of every connection the app opens, read back as the client's messages."""

    def __init__(self, engine: Engine, path: Path) -> None:
        # Append mode: libpq writes through its own buffered handle on the same descriptor.
        self.file = path.open("a")
        self.connections: list = []
        event.listen(engine, "connect", self.start)

    def start(self, dbapi_connection, _record) -> None:
        self.connections.append(dbapi_connection)
        dbapi_connection.pgconn.trace(self.file.fileno())

    def _pause(self) -> None:
        # libpq buffers its trace; untrace() writes the buffer out.
        for connection in self.connections:
            if not connection.closed:
                connection.pgconn.untrace()

    def client_messages(self) -> list[str]:
        """Message names the client sent (Query, Parse, Bind, Execute, Sync, ...)."""
        self._pause()
        lines = Path(self.file.name).read_text().splitlines()
        for connection in self.connections:
            if not connection.closed:
                connection.pgconn.trace(self.file.fileno())
        # Tab-separated: <timestamp> F|B <length> <MessageName> ...  (F: from the client)
        fields = [line.split("\t") for line in lines]
        return [f[3] for f in fields if len(f) > 3 and f[1] == "F"]

    def round_trips(self) -> int:
        """Exchanges that wait for the server: a Sync ends an extended-protocol statement, a
        Query is one simple-protocol statement (BEGIN, COMMIT, a ping)."""
        return sum(name in ("Sync", "Query") for name in self.client_messages())

    def reset(self) -> None:
        self._pause()
        self.file.truncate(0)
        for connection in self.connections:
            if not connection.closed:
                connection.pgconn.trace(self.file.fileno())


@pytest.fixture
def traced(app: Flask, tmp_path: Path) -> Iterator[tuple[FlaskClient, ProtocolTrace]]:
    trace = ProtocolTrace(app.extensions[ENGINE_KEY], tmp_path / "libpq.trace")
    yield app.test_client(), trace
    trace.file.close()


def test_each_request_is_one_round_trip_once_connected(traced) -> None:
    """No ping before use, no BEGIN/COMMIT/ROLLBACK around a single statement (autocommit)."""
    client, trace = traced
    assert client.post("/api/messages", json=MESSAGE).status_code == 201  # opens the connection
    location = client.post("/api/messages", json=MESSAGE).headers["Location"]
    for request in (
        lambda: client.get("/api/messages"),
        lambda: client.get(location),
        lambda: client.post("/api/messages", json=MESSAGE),
        lambda: client.get("/api/readyz"),
    ):
        trace.reset()
        assert request().status_code in (200, 201)
        assert trace.round_trips() == 1, trace.client_messages()


def terminate_app_connections(owner_engine: Engine) -> int:
    """What a database restart does to the app's pooled connections: PostgreSQL closes them."""
    with owner_engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = :u"
            ),
            {"u": APP_USER},
        ).scalar_one()


def test_reads_and_keyed_writes_survive_connections_closed_by_the_database(
    client: FlaskClient, owner_engine: Engine
) -> None:
    assert client.post("/api/messages", json=MESSAGE).status_code == 201
    assert terminate_app_connections(owner_engine) >= 1

    # The pooled connection is dead; the read is retried once on a new one.
    response = client.get("/api/messages")
    assert response.status_code == 200, response.get_json()
    assert terminate_app_connections(owner_engine) >= 1
    keyed = client.post("/api/messages", json=MESSAGE, headers={"Idempotency-Key": "k-1"})
    assert keyed.status_code == 201, keyed.get_json()
    assert terminate_app_connections(owner_engine) >= 1
    assert client.get("/api/readyz").status_code == 200
    assert count_messages(owner_engine) == 2


def test_an_unkeyed_write_on_a_closed_connection_is_a_503_not_retried_and_not_stored(
    client: FlaskClient, owner_engine: Engine
) -> None:
    """It may not be retried (had it reached PostgreSQL, it could be stored twice). The broken
    connection says nothing about the database now, so the breaker stays closed: the very next
    request is served."""
    assert client.post("/api/messages", json=MESSAGE).status_code == 201
    assert terminate_app_connections(owner_engine) >= 1

    response = client.post("/api/messages", json=MESSAGE)
    assert response.status_code == 503
    assert response.get_json() == {"error": "database unavailable"}
    assert count_messages(owner_engine) == 1
    assert client.post("/api/messages", json=MESSAGE).status_code == 201


def test_simulated_remote_database_waits_on_each_round_trip(app_db_url, clean_db) -> None:
    """DB_SIMULATED_LATENCY_MS (loadtests/configs/remote-db.yml): a request waits that long per
    statement. 0 (the default) installs nothing at all."""
    url = app_db_url.render_as_string(hide_password=False)
    plain, slow = make_app(DATABASE_URL=url), make_app(DATABASE_URL=url, DB_SIMULATED_LATENCY_MS=80)
    try:
        assert not plain.extensions[ENGINE_KEY].dispatch.before_cursor_execute
        client = slow.test_client()
        client.get("/api/messages")  # connects: handshake round trips wait too
        started = time.monotonic()
        assert client.get("/api/messages").status_code == 200
        assert time.monotonic() - started >= 0.080
    finally:
        dispose(plain)
        dispose(slow)
