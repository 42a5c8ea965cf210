"""Settings of the guestbook app: defaults, overridden by environment variables.

One flat class, in the style of the Flask Mega-Tutorial's config.py: every setting is one
``os.environ.get(NAME, default)`` line, so the whole configuration surface can be read at a glance.
The values are read once, when this module is imported (at worker start-up); ``create_app`` then
lets a test pass a mapping that overrides any of them.

Two settings are derived after that merge, in ``database_url`` below: the password (a Docker secret
file wins over the plain variable) and the SQLAlchemy URL (DATABASE_URL wins over the parts). The
URL may name several database hosts: libpq then finds the primary among them (see DB_HOST).
"""

import os
import socket
from collections.abc import Mapping

from sqlalchemy import URL, make_url


class Config:
    # --- Database: where it is and who we are --------------------------------------------------
    # One host, or several separated by commas: the nodes of the Patroni cluster. With several,
    # libpq (in psycopg) tries them in this order and keeps the first whose server matches
    # DB_TARGET_SESSION_ATTRS; a node that is down or of the wrong kind costs one attempt. So the
    # app reaches the primary wherever Patroni has put it, with nothing in between to fail.
    DB_HOST = os.environ.get("DB_HOST", "db1,db2,db3")
    DB_PORT = int(os.environ.get("DB_PORT", 5432))
    # Which server a connection may end on (libpq's target_session_attrs): "read-write" is the
    # primary; "any" takes the first that answers; "prefer-standby" a standby if one answers.
    DB_TARGET_SESSION_ATTRS = os.environ.get("DB_TARGET_SESSION_ATTRS", "read-write")
    # Where reads (GETs) go. Empty, the default: to the primary too, so a client always reads what
    # it has just written. "prefer-standby": to a standby if one answers (the primary otherwise),
    # through a second pool; reads then go on while a failover leaves no primary, and the primary
    # does less work, but a read may miss a write acknowledged a few milliseconds before (db.py).
    DB_READ_TARGET_SESSION_ATTRS = os.environ.get("DB_READ_TARGET_SESSION_ATTRS", "")
    DB_NAME = os.environ.get("DB_NAME", "guestbook")
    # The least-privilege role made by db/initdb.d/20-app-role.sh: SELECT and INSERT only.
    DB_USER = os.environ.get("DB_USER", "guestbook_app")
    DB_PASSWORD = os.environ.get("DB_PASSWORD", "")
    # Path of a file holding the password (a Compose secret, /run/secrets/...). Wins if set, so the
    # password never has to appear in `docker inspect` output.
    DB_PASSWORD_FILE = os.environ.get("DB_PASSWORD_FILE", "")
    # A complete SQLAlchemy URL; wins over all the parts above (the tests use it).
    DATABASE_URL = os.environ.get("DATABASE_URL", "")

    # --- Connection pool (one per Gunicorn worker process) -------------------------------------
    # Connections kept open, and extra ones allowed under a burst. With gthread workers a worker
    # runs GUNICORN_THREADS requests at once, so pool size ~ threads keeps them from queueing.
    DB_POOL_SIZE = int(os.environ.get("DB_POOL_SIZE", 4))
    DB_MAX_OVERFLOW = int(os.environ.get("DB_MAX_OVERFLOW", 2))
    # Seconds a request waits for a free pooled connection before giving up (-> 503).
    DB_POOL_TIMEOUT = float(os.environ.get("DB_POOL_TIMEOUT", 5))
    # Seconds to wait for a new TCP connection to PostgreSQL (libpq's connect_timeout).
    DB_CONNECT_TIMEOUT = int(os.environ.get("DB_CONNECT_TIMEOUT", 3))
    # Seconds during which requests get an immediate 503 after a failed connection, before the
    # database is tried again (breaker.py).
    DB_RETRY_INTERVAL = float(os.environ.get("DB_RETRY_INTERVAL", 0.5))
    # Milliseconds any one SQL statement may run before PostgreSQL cancels it.
    DB_STATEMENT_TIMEOUT_MS = int(os.environ.get("DB_STATEMENT_TIMEOUT_MS", 5000))
    # Benchmarks only: milliseconds of simulated network latency on every round trip to the
    # database, as if it ran on another host (latency.py). 0, the default, adds nothing.
    DB_SIMULATED_LATENCY_MS = float(os.environ.get("DB_SIMULATED_LATENCY_MS", 0))

    # --- HTTP -----------------------------------------------------------------------------------
    # This node's name, sent in the X-App header and by /api/whoami. In a container the hostname is
    # the container's (Compose sets it to the service name with `hostname:`).
    NODE_NAME = os.environ.get("NODE_NAME", socket.gethostname())
    # Largest request body accepted, in bytes; Flask answers 413 above it. A message is at most
    # ~1 KB of JSON, so 16 KiB is generous while keeping a client from making us buffer megabytes.
    MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", 16384))
    # How many proxies stand in front of the app and append to X-Forwarded-*: HAProxy and nginx.
    # werkzeug's ProxyFix trusts exactly that many; 0 turns ProxyFix off (app reached directly).
    PROXY_COUNT = int(os.environ.get("PROXY_COUNT", 2))

    # --- Logging and metrics -------------------------------------------------------------------
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
    # Count every request for Prometheus (metrics.py). "0" leaves the request path as it was
    # without monitoring: the load tests' no-monitoring configuration measures the difference.
    METRICS_ENABLED = os.environ.get("METRICS_ENABLED", "1") == "1"
    # (METRICS_FLUSH_SECONDS, how often each worker writes its tally of requests into its metric
    # files and reads its pools' use, is read by metrics.py itself: its request path reads it on
    # every request, with no app at hand. Default 1; 0 writes each request and checkout at once.)


def read_secret(path: str) -> str:
    """The content of a secret file, without the trailing newline editors and `echo` add."""
    with open(path, encoding="utf-8") as f:
        return f.read().rstrip("\r\n")


def database_url(config: Mapping, target_session_attrs: str | None = None) -> str | URL:
    """The SQLAlchemy URL to connect with, from the merged configuration; `target_session_attrs`
    overrides DB_TARGET_SESSION_ATTRS (the engine for reads passes its own)."""
    if config.get("DATABASE_URL"):
        if target_session_attrs is None:
            return config["DATABASE_URL"]
        url = make_url(config["DATABASE_URL"])
        return url.update_query_dict({"target_session_attrs": target_session_attrs})

    password = config.get("DB_PASSWORD") or None
    if config.get("DB_PASSWORD_FILE"):
        password = read_secret(config["DB_PASSWORD_FILE"])

    # Several hosts go into the query string, each with its port (SQLAlchemy's psycopg dialect
    # turns host=db1:5432&host=db2:5432 into libpq's host=db1,db2 port=5432,5432); one host is an
    # ordinary URL. The query's other keys are handed to libpq as they are.
    hosts = [host.strip() for host in str(config["DB_HOST"]).split(",") if host.strip()]
    port = int(config["DB_PORT"])
    query: dict[str, str | list[str]] = {
        "target_session_attrs": target_session_attrs
        or config.get("DB_TARGET_SESSION_ATTRS")
        or "read-write"
    }
    if len(hosts) > 1:
        query["host"] = [f"{host}:{port}" for host in hosts]
    # URL.create quotes every part itself, so a password with '@' or '/' needs no escaping.
    # "postgresql+psycopg" = the PostgreSQL dialect through the psycopg 3 driver.
    return URL.create(
        "postgresql+psycopg",
        username=config["DB_USER"],
        password=password,
        host=hosts[0] if len(hosts) == 1 else None,
        port=port if len(hosts) == 1 else None,
        database=config["DB_NAME"],
        query=query,
    )
