"""The connection to PostgreSQL: an engine (with its connection pool) per app, a session per
request.

Two roles. Every write, and by default every read, goes to the primary (PRIMARY: libpq's
target_session_attrs=read-write among db1,db2,db3). With DB_READ_TARGET_SESSION_ATTRS set (e.g.
prefer-standby), the app opens a second engine for reads (READS): GETs then go to a standby, and
keep being answered while a failover leaves the cluster without a primary for ~20 s. The price is
that a read may not yet see a write acknowledged a moment before (see get_message for the case a
client notices, and README "The database tier"). Each engine has its own pool and its own breaker.

Gunicorn does not preload the app (preload_app = False in gunicorn.conf.py): every worker process
imports the code and calls create_app() itself, after the fork. So each worker builds its own
engine and pool here, and no worker ever shares an open socket with another (a connection copied
across fork() would have two processes talking over one socket, and corrupt both conversations).
"""

from collections.abc import Mapping

from flask import Flask, current_app, g
from sqlalchemy import Engine, Executable, Result, create_engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from . import latency, metrics
from .breaker import BREAKER_KEY, DatabaseBreaker, get_breaker
from .config import database_url
from .errors import is_connection_failure, is_on_a_standby

PRIMARY, READS = "primary", "reads"
# app.extensions[ENGINE_KEY]: the primary's engine; [READ_ENGINE_KEY]: the engine for reads (the
# same object unless reads go to the standbys).
ENGINE_KEY = "guestbook.engine"
READ_ENGINE_KEY = "guestbook.read_engine"


def init_app(app: Flask) -> None:
    """Create the app's engine(s), each with its breaker; close each request's sessions when the
    request ends."""
    config = app.config
    engines = {PRIMARY: make_engine(config)}
    if config["DB_READ_TARGET_SESSION_ATTRS"]:
        engines[READS] = make_engine(config, config["DB_READ_TARGET_SESSION_ATTRS"])
    app.extensions[BREAKER_KEY] = {
        role: DatabaseBreaker(config["DB_RETRY_INTERVAL"]).watch(engine)
        for role, engine in engines.items()
    }
    app.extensions[ENGINE_KEY] = engines[PRIMARY]
    app.extensions[READ_ENGINE_KEY] = engines.get(READS, engines[PRIMARY])
    app.teardown_appcontext(close_sessions)


def make_engine(config: Mapping, target_session_attrs: str | None = None) -> Engine:
    """An engine whose connections end on a server of the kind `target_session_attrs` names
    (None: DB_TARGET_SESSION_ATTRS, the primary)."""
    engine = create_engine(
        database_url(config, target_session_attrs),
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
            # The engine for reads: each new connection tries the hosts in a random order (libpq
            # 16+; default "disable": in the listed order), so reads spread over both standbys
            # instead of all landing on the first one listed.
            **({"load_balance_hosts": "random"} if target_session_attrs else {}),
        },
    )
    # A benchmark may make the database "remote" (DB_SIMULATED_LATENCY_MS, see latency.py).
    latency.init_engine(engine, config["DB_SIMULATED_LATENCY_MS"])
    # Pool use for Prometheus (metrics.py): connections in use against what the pool may open.
    if config["METRICS_ENABLED"]:
        metrics.watch_pool(engine, config["DB_POOL_SIZE"] + config["DB_MAX_OVERFLOW"])
    return engine


def reads_from_standbys() -> bool:
    """True when reads have an engine of their own (DB_READ_TARGET_SESSION_ATTRS is set)."""
    return current_app.extensions[READ_ENGINE_KEY] is not current_app.extensions[ENGINE_KEY]


def get_session(role: str = PRIMARY) -> Session:
    """The request's session for `role`, opened on first use (like flaskr's get_db)."""
    if role == READS and not reads_from_standbys():
        role = PRIMARY
    sessions = g.setdefault("db_sessions", {})
    if role not in sessions:
        # While this engine's database is known to be down, answer 503 at once (breaker.py).
        get_breaker(role).check()
        engine_key = READ_ENGINE_KEY if role == READS else ENGINE_KEY
        sessions[role] = Session(current_app.extensions[engine_key])
    return sessions[role]


def execute(statement: Executable, *, retry: bool = True, role: str = PRIMARY) -> Result:
    """Run one statement in the request's session for `role` (READS: a read that may be served by
    a standby, when the app is configured so; PRIMARY otherwise).

    A connection that PostgreSQL closed while it sat in the pool (the database restarted, or
    failed over) fails on first use; SQLAlchemy then discards every pooled connection opened
    before that moment (db.py keeps no ping before each use). When `retry` is true, the statement
    is safe to run twice (a read, or a write made idempotent by its key) and is tried once more,
    on a new connection: the client never notices the stale one. If the database is really down,
    the second try fails too, and errors.py answers 503. A write without a key is never retried:
    if the connection broke after PostgreSQL received it, it may have been stored already.

    When the database cannot be reached at all, or a write reached a standby (the primary has
    moved), the engine's breaker opens: its requests get a 503 at once for DB_RETRY_INTERVAL.
    errors.py turns the exception into that JSON 503.
    """
    if role == READS and not reads_from_standbys():
        role = PRIMARY
    session = get_session(role)
    try:
        try:
            return session.execute(statement)
        except DBAPIError as error:
            if not (retry and error.connection_invalidated):
                raise
            session.rollback()  # forget the broken connection; the next statement checks out anew
            return session.execute(statement)
    except DBAPIError as error:
        if is_connection_failure(error) or is_on_a_standby(error):
            get_breaker(role).trip()
        raise


def close_sessions(exc: BaseException | None = None) -> None:
    """Return the request's connections to their pools (in autocommit there is nothing to roll
    back, so this costs no round trip)."""
    for session in g.pop("db_sessions", {}).values():
        session.close()
