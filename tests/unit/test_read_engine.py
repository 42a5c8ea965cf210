"""Reads from the standbys (DB_READ_TARGET_SESSION_ATTRS): a second engine for GETs, with its own
pool and its own breaker, so a primary that is gone stops the writes and not the reads.

The unit tests' database is a single server, a primary: libpq's "prefer-standby" then falls back
to it, which is what lets these tests use it. That reads really land on a standby, and go on while
the primary is killed, is shown on the cluster (tests/failover/test_db_tier.py)."""

from collections.abc import Iterator

import pytest
from flask import Flask
from guestbook.breaker import BREAKER_KEY
from guestbook.config import database_url
from guestbook.db import ENGINE_KEY, READ_ENGINE_KEY
from sqlalchemy import URL

from .conftest import dispose, make_app
from .test_config import PARTS


@pytest.fixture
def split_app(clean_db: None, app_db_url: URL) -> Iterator[Flask]:
    app = make_app(
        DATABASE_URL=app_db_url.render_as_string(hide_password=False),
        DB_READ_TARGET_SESSION_ATTRS="prefer-standby",
    )
    yield app
    dispose(app)


def test_by_default_reads_and_writes_share_one_engine(app: Flask) -> None:
    assert app.extensions[READ_ENGINE_KEY] is app.extensions[ENGINE_KEY]
    assert set(app.extensions[BREAKER_KEY]) == {"primary"}


def test_the_engine_for_reads_asks_for_a_standby_and_spreads_over_the_hosts(
    split_app: Flask,
) -> None:
    reads = split_app.extensions[READ_ENGINE_KEY]
    assert reads is not split_app.extensions[ENGINE_KEY]
    _, params = reads.dialect.create_connect_args(reads.url)
    assert params["target_session_attrs"] == "prefer-standby"
    # The writes' engine keeps the URL as given (DATABASE_URL: no target_session_attrs added).
    primary = split_app.extensions[ENGINE_KEY]
    assert "target_session_attrs" not in primary.url.query
    # load_balance_hosts=random reaches libpq through the engine's connect arguments (libpq lists
    # only the parameters that differ from their defaults: the writes' engine has none).
    with reads.connect() as connection:
        info = connection.connection.dbapi_connection.info
        assert info.get_parameters()["load_balance_hosts"] == "random"
    with primary.connect() as connection:
        info = connection.connection.dbapi_connection.info
        assert "load_balance_hosts" not in info.get_parameters()


def test_the_url_built_from_parts_takes_the_reads_target() -> None:
    url = database_url({**PARTS, "DB_HOST": "db1,db2,db3"}, "prefer-standby")
    assert url.query["target_session_attrs"] == "prefer-standby"


def test_reads_and_writes_work_through_their_own_engines(split_app: Flask) -> None:
    client = split_app.test_client()
    created = client.post("/api/messages", json={"author": "ada", "text": "hello"})
    assert created.status_code == 201
    assert client.get(created.headers["Location"]).get_json()["text"] == "hello"
    assert [m["text"] for m in client.get("/api/messages").get_json()["messages"]] == ["hello"]


def test_an_open_primary_breaker_stops_writes_but_not_reads(split_app: Flask) -> None:
    client = split_app.test_client()
    assert client.post("/api/messages", json={"author": "ada", "text": "one"}).status_code == 201
    split_app.config["DB_RETRY_INTERVAL"] = 60
    breakers = split_app.extensions[BREAKER_KEY]
    breakers["primary"].retry_interval = 60
    breakers["primary"].trip()  # as after the primary was found gone
    refused = client.post("/api/messages", json={"author": "ada", "text": "two"})
    assert refused.status_code == 503
    assert refused.get_json() == {"error": "database unavailable"}
    listed = client.get("/api/messages")
    assert listed.status_code == 200
    assert [m["text"] for m in listed.get_json()["messages"]] == ["one"]
    # A message the read engine can't find is looked up on the primary before a 404; with the
    # primary's breaker open, that answer is a 503, never a wrong 404.
    assert client.get("/api/messages/999").status_code == 503
