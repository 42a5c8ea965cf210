"""Configuration: defaults, the password file, DATABASE_URL, and the test mapping on top."""

from pathlib import Path

from flask import request
from guestbook.config import Config, database_url
from guestbook.db import ENGINE_KEY
from sqlalchemy import create_engine, make_url, text

from .conftest import dispose, make_app

PARTS = {
    "DB_HOST": "db",
    "DB_PORT": 5432,
    "DB_NAME": "guestbook",
    "DB_USER": "guestbook_app",
    "DB_PASSWORD": "from-env",
    "DB_PASSWORD_FILE": "",
    "DATABASE_URL": "",
}


def test_url_is_built_from_the_parts() -> None:
    url = database_url(PARTS)
    assert url.render_as_string(hide_password=False) == (
        "postgresql+psycopg://guestbook_app:from-env@db:5432/guestbook"
        "?target_session_attrs=read-write"
    )


def test_several_hosts_become_libpq_multi_host_parameters() -> None:
    # The Patroni cluster: libpq tries db1, db2, db3 and keeps the one that accepts writes.
    url = database_url({**PARTS, "DB_HOST": "db1, db2,db3"})
    engine = create_engine(url)
    _, params = engine.dialect.create_connect_args(engine.url)
    assert params["host"] == "db1,db2,db3"
    assert params["port"] == "5432,5432,5432"
    assert params["target_session_attrs"] == "read-write"
    assert (params["dbname"], params["user"], params["password"]) == (
        "guestbook",
        "guestbook_app",
        "from-env",
    )
    engine.dispose()


def test_target_session_attrs_can_be_chosen() -> None:
    url = database_url({**PARTS, "DB_HOST": "db1,db2", "DB_TARGET_SESSION_ATTRS": "any"})
    assert url.query["target_session_attrs"] == "any"


def test_password_file_wins_and_loses_its_trailing_newline(tmp_path: Path) -> None:
    secret = tmp_path / "db_app_password"
    secret.write_text("s3cr@t/pw\n")
    url = database_url({**PARTS, "DB_PASSWORD_FILE": str(secret)})
    # Special characters are quoted in the URL and come back intact.
    assert make_url(url.render_as_string(hide_password=False)).password == "s3cr@t/pw"


def test_database_url_wins_over_the_parts() -> None:
    url = "postgresql+psycopg://u:p@elsewhere:6543/other"
    assert database_url({**PARTS, "DATABASE_URL": url}) == url


def test_defaults() -> None:
    # The environment of the test run sets none of these.
    assert (Config.DB_HOST, Config.DB_PORT, Config.DB_NAME) == ("db1,db2,db3", 5432, "guestbook")
    assert Config.DB_TARGET_SESSION_ATTRS == "read-write"
    assert Config.DB_USER == "guestbook_app"
    assert (Config.DB_POOL_SIZE, Config.DB_MAX_OVERFLOW, Config.DB_POOL_TIMEOUT) == (4, 2, 5)
    assert (Config.DB_CONNECT_TIMEOUT, Config.DB_STATEMENT_TIMEOUT_MS) == (3, 5000)
    assert Config.MAX_CONTENT_LENGTH == 16384
    assert Config.PROXY_COUNT == 2
    assert Config.NODE_NAME


def test_the_test_mapping_overrides_everything_and_sizes_the_pool() -> None:
    app = make_app(DB_HOST="127.0.0.1", DB_PASSWORD="x", DB_POOL_SIZE=3, DB_MAX_OVERFLOW=1)
    engine = app.extensions[ENGINE_KEY]
    assert engine.url.host == "127.0.0.1"
    assert engine.pool.size() == 3
    assert engine.pool._max_overflow == 1
    assert app.config["NODE_NAME"] == "app-test"
    dispose(app)


def test_proxy_fix_takes_the_client_address_behind_two_proxies(app) -> None:
    app.add_url_rule("/api/addr", view_func=lambda: {"addr": request.remote_addr})
    # X-Forwarded-For as it arrives from nginx: whatever the client claimed, then the client's real
    # address (appended by HAProxy), then HAProxy's address (appended by nginx).
    headers = {"X-Forwarded-For": "6.6.6.6, 203.0.113.7, 172.18.0.2"}
    response = app.test_client().get("/api/addr", headers=headers)
    assert response.get_json() == {"addr": "203.0.113.7"}


def test_session_settings_reach_the_server(app) -> None:
    with app.extensions[ENGINE_KEY].connect() as connection:
        show = {
            name: connection.execute(text(f"SHOW {name}")).scalar_one()
            for name in ("statement_timeout", "TimeZone", "application_name")
        }
    assert show == {"statement_timeout": "5s", "TimeZone": "UTC", "application_name": "app-test"}
