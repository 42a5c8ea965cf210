"""The connection to PostgreSQL: one engine (with its connection pool) per app, one session per
request.

Gunicorn does not preload the app (preload_app = False in gunicorn.conf.py): every worker process
imports the code and calls create_app() itself, after the fork. So each worker builds its own
engine and pool here, and no worker ever shares an open socket with another (a connection copied
across fork() would have two processes talking over one socket, and corrupt both conversations).
"""

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from .breaker import get_breaker
from .config import database_url

ENGINE_KEY = "guestbook.engine"


def init_app(app: Flask) -> None:
    """Create the app's engine and close each request's session when the request ends."""
    config = app.config
    app.extensions[ENGINE_KEY] = create_engine(
        database_url(config),
        # The pool: DB_POOL_SIZE connections kept open, DB_MAX_OVERFLOW more under a burst, and a
        # request waits at most DB_POOL_TIMEOUT seconds for one (then TimeoutError -> 503).
        pool_size=config["DB_POOL_SIZE"],
        max_overflow=config["DB_MAX_OVERFLOW"],
        pool_timeout=config["DB_POOL_TIMEOUT"],
        # Test each pooled connection with a cheap round trip before handing it out. After a
        # database restart every pooled connection is dead; without the ping the next request on
        # each of them would fail. With it, the pool silently replaces dead connections, so the app
        # survives a database restart without restarting itself.
        pool_pre_ping=True,
        connect_args={
            # Give up on an unreachable database after a few seconds instead of libpq's default of
            # waiting forever: the request fails fast with 503 and the worker thread is freed.
            "connect_timeout": config["DB_CONNECT_TIMEOUT"],
            # Session settings sent at connect time. statement_timeout: PostgreSQL cancels any
            # statement running longer, so a stuck query cannot hold a worker thread past Gunicorn's
            # timeout. TimeZone=UTC: timestamps come back in UTC, whatever the server's zone.
            "options": f"-c statement_timeout={config['DB_STATEMENT_TIMEOUT_MS']} -c TimeZone=UTC",
            # Shown in pg_stat_activity and in PostgreSQL's logs: which app node holds a connection.
            "application_name": str(config["NODE_NAME"])[:63],
        },
    )
    app.teardown_appcontext(close_session)


def get_engine() -> Engine:
    """The current app's engine (used directly for the readiness check)."""
    return current_app.extensions[ENGINE_KEY]


def get_session() -> Session:
    """The session of the current request, opened on first use (like flaskr's get_db)."""
    if "db_session" not in g:
        # While the database is known to be down, answer 503 at once (breaker.py).
        get_breaker().check()
        # expire_on_commit=False: after commit the objects keep their loaded values, so a stored
        # message can be turned into JSON without a second SELECT.
        g.db_session = Session(get_engine(), expire_on_commit=False)
    return g.db_session


def close_session(exc: BaseException | None = None) -> None:
    """Return the request's connection to the pool; an uncommitted transaction is rolled back."""
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
