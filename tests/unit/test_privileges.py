"""The app's database role may read and add messages, and nothing else (least privilege).

These talk to PostgreSQL directly with psycopg, as the app's role, to show what the role itself is
refused, whatever the app's code would try.
"""

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors
from sqlalchemy import URL
from testcontainers.postgres import PostgresContainer


@pytest.fixture
def app_connection(clean_db: None, app_db_url: URL) -> Iterator[psycopg.Connection]:
    with psycopg.connect(
        host=app_db_url.host,
        port=app_db_url.port,
        dbname=app_db_url.database,
        user=app_db_url.username,
        password=app_db_url.password,
        autocommit=True,
    ) as connection:
        yield connection


def test_app_role_can_select_and_insert(app_connection: psycopg.Connection) -> None:
    app_connection.execute("INSERT INTO messages (author, text) VALUES ('a', 't')")
    assert app_connection.execute("SELECT count(*) FROM messages").fetchone() == (1,)


def test_app_role_cannot_create_tables(app_connection: psycopg.Connection) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        app_connection.execute("CREATE TABLE evil (id int)")


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM messages",
        "UPDATE messages SET text = 'changed'",
        "TRUNCATE messages",
        "DROP TABLE messages",
    ],
)
def test_app_role_cannot_change_or_remove_messages(
    app_connection: psycopg.Connection, statement: str
) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        app_connection.execute(statement)


def test_database_port_is_published_on_loopback_only(postgres: PostgresContainer) -> None:
    bindings = postgres.get_wrapped_container().attrs["HostConfig"]["PortBindings"]["5432/tcp"]
    assert [binding["HostIp"] for binding in bindings] == ["127.0.0.1"]
