"""The connection to PostgreSQL: one engine (with its connection pool) per app, one session per
request.

Gunicorn does not preload the app (preload_app = False in gunicorn.conf.py): every worker process
imports the code and calls create_app() itself, after the fork. So each worker builds its own
engine and pool here, and no worker ever shares an open socket with another (a connection copied
across fork() would have two processes talking over one socket, and corrupt both conversations).
"""

from flask import Flask, current_app, g
from sqlalchemy import Engine, Executable, Result, create_engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from . import latency
from .breaker import get_breaker
from .config import database_url

ENGINE_KEY = "guestbook.engine"


def init_app(app: Flask) -> None:
    """Create the app's engine and close each request's session when the request ends."""
    config = app.config
    engine = create_engine(
        database_url(config),
        # The pool: DB_POOL_SIZE connections kept open, DB_MAX_OVERFLOW more under a burst, and a
        # request waits at most DB_POOL_TIMEOUT seconds for one (then TimeoutError -> 503).
        pool_size=config["DB_POOL_SIZE"],
        max_overflow=config["DB_MAX_OVERFLOW"],
        pool_timeout=config["DB_POOL_TIMEOUT"],
        # No ping before each use (pool_pre_ping, default off; it was on here). A ping is a round
        # trip to PostgreSQL on every request, to guard against something that happens only when
        # the database restarts. Instead the pool handles a dead connection when it meets one
        # (SQLAlchemy's "optimistic" disconnect handling): the statement fails, SQLAlchemy discards
        # *every* connection the pool opened before that moment, and `execute` below tries a read
        # or a keyed write once more on a fresh connection (anything else gets a 503, errors.py).
        # See README "Design choices".
        pool_pre_ping=False,
        # Every statement commits by itself (PostgreSQL's autocommit), with no BEGIN before it and
        # no COMMIT or ROLLBACK after it (default: a transaction around each session's work, two
        # extra round trips). Each request sends a single statement, and a single statement is
        # atomic on its own: INSERT ... ON CONFLICT included. A request that ever needs several
        # statements to succeed or fail together must open a transaction explicitly
        # (`with session.begin():` on a connection with another isolation_level).
        isolation_level="AUTOCOMMIT",
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
    # A benchmark may make the database "remote" (DB_SIMULATED_LATENCY_MS, see latency.py).
    latency.init_engine(engine, config["DB_SIMULATED_LATENCY_MS"])
    app.extensions[ENGINE_KEY] = engine
    app.teardown_appcontext(close_session)


def get_engine() -> Engine:
    """The current app's engine (used directly for the readiness check)."""
    return current_app.extensions[ENGINE_KEY]


def get_session() -> Session:
    """The session of the current request, opened on first use (like flaskr's get_db)."""
    if "db_session" not in g:
        # While the database is known to be down, answer 503 at once (breaker.py).
        get_breaker().check()
        g.db_session = Session(get_engine())
    return g.db_session


def execute(statement: Executable, *, retry: bool = True) -> Result:
    """Run one statement in the request's session.

    A connection that PostgreSQL closed while it sat in the pool (the database restarted, or
    failed over) fails on first use; SQLAlchemy then discards every pooled connection opened
    before that moment (db.py keeps no ping before each use). When `retry` is true, the statement
    is safe to run twice (a read, or a write made idempotent by its key) and is tried once more,
    on a new connection: the client never notices the stale one. If the database is really down,
    the second try fails too, and errors.py answers 503. A write without a key is never retried:
    if the connection broke after PostgreSQL received it, it may have been stored already.
    """
    session = get_session()
    try:
        return session.execute(statement)
    except DBAPIError as error:
        if not (retry and error.connection_invalidated):
            raise
        session.rollback()  # forget the broken connection; the next statement checks out another
        return session.execute(statement)


def close_session(exc: BaseException | None = None) -> None:
    """Return the request's connection to the pool (in autocommit there is nothing to roll back,
    so this costs no round trip)."""
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
