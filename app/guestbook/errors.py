"""Every error the app answers is JSON: {"error": "<what went wrong>"}, never an HTML page.

Three kinds of failure, three handlers:
- the client's mistake: ApiError raised by our views, or an HTTPException raised by Flask/werkzeug
  itself (404 unknown URL, 405 wrong method, 413 body too large, ...) -> 4xx with a message;
- the database is unreachable or overloaded -> 503, so a load balancer or client can retry later.
  Two cases are told apart in the log: an outage (a warning: it passes) and a database that rejects
  our credentials (an error: a configuration mistake, which no waiting will fix);
- anything else is our bug -> 500, logged with its traceback, with no details given to the client.

After a failover, a pooled connection may still lead to the former primary, now a read-only
standby: a write there fails with ReadOnlySqlTransaction. That is treated as a lost connection (the
pool is emptied; a keyed write is retried once on a new connection, db.execute; otherwise the
breaker opens and the client gets a 503), not as our bug. (db.execute opens the breaker of the
engine that failed; here the exception becomes the answer.)
"""

import logging

import psycopg
from flask import Flask, current_app, jsonify, request
from sqlalchemy import Engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from .breaker import DatabaseUnavailable

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A client error found by our own checks: raise ApiError(400, "author must be a string")."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def init_app(app: Flask) -> None:
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    # Flask picks the most specific handler for an exception's class, so database errors come
    # here and every other exception goes to handle_unexpected.
    app.register_error_handler(DBAPIError, handle_database_error)
    app.register_error_handler(PoolTimeoutError, handle_database_error)
    app.register_error_handler(DatabaseUnavailable, handle_database_error)
    app.register_error_handler(Exception, handle_unexpected)
    app.after_request(json_body_for_redirects)
    # For every engine (a listener on the Engine class), once per process.
    if not event.contains(Engine, "handle_error", treat_read_only_as_disconnect):
        event.listen(Engine, "handle_error", treat_read_only_as_disconnect)


def treat_read_only_as_disconnect(context: ExceptionContext) -> None:
    """A write refused because the server is a standby means the primary has moved: tell
    SQLAlchemy it is a disconnect. It then discards this connection and every other pooled one
    opened before it (they lead to the same former primary), so the next checkout connects anew
    and libpq finds the new primary (target_session_attrs=read-write)."""
    if isinstance(context.original_exception, psycopg.errors.ReadOnlySqlTransaction):
        context.is_disconnect = True


def error_response(status: int, message: str):
    return jsonify(error=message), status


def handle_api_error(e: ApiError):
    return error_response(e.status, e.message)


def handle_http_exception(e: HTTPException):
    # Keep werkzeug's response (status and headers, e.g. `Allow:` on a 405) and replace only the
    # HTML body with JSON. e.name is the short reason phrase: "Not Found", "Method Not Allowed".
    message = e.name.lower()
    if e.code == 413:
        # The same words as nginx's own 413 for /api/, plus the limit, so a client knows what fits.
        message = f"request body too large (limit {current_app.config['MAX_CONTENT_LENGTH']} bytes)"
    response = e.get_response()
    response.set_data(jsonify(error=message).get_data())
    response.content_type = "application/json"
    return response


def json_body_for_redirects(response):
    """Werkzeug's routing answers some URLs with a redirect of its own (`/api/messages//1` ->
    308 to `/api/messages/1`, merged slashes). Flask hands such a RequestRedirect straight back
    to the client, past every error handler, with an HTML body; give it a JSON one instead, as
    every other answer under /api/ has. The Location itself is built from the request's Host
    (host and port as the client sent them: nginx passes it unchanged) and X-Forwarded-Proto
    (set by HAProxy, trusted through ProxyFix), so it points where the client came from."""
    if 300 <= response.status_code < 400 and response.mimetype == "text/html":
        message = HTTP_STATUS_CODES.get(response.status_code, "redirect").lower()
        response.set_data(jsonify(error=message, location=response.location).get_data())
        response.content_type = "application/json"
    return response


def is_unavailable(e: Exception) -> bool:
    """True when a database error means "can't talk to the database" rather than a bad query:
    refused or lost connections, no free pooled connection in time, and statements cancelled by
    statement_timeout (psycopg reports those as OperationalError too)."""
    return (
        isinstance(e, OperationalError | InterfaceError | PoolTimeoutError | DatabaseUnavailable)
        # Any other driver error that broke the connection (SQLAlchemy sets the flag).
        or getattr(e, "connection_invalidated", False)
    )


def is_connection_failure(e: Exception) -> bool:
    """True when the database could not be reached at all (not a slow or cancelled statement,
    not a busy pool, not one pooled connection found broken): the case in which the breaker stops
    trying for a moment (db.execute). A broken pooled connection (connection_invalidated) says
    nothing about the database now: SQLAlchemy has already dropped it and the next request
    connects afresh."""
    return (
        isinstance(e, OperationalError | InterfaceError)
        and not isinstance(getattr(e, "orig", None), psycopg.errors.QueryCanceled)
        and not getattr(e, "connection_invalidated", False)
    )


def is_on_a_standby(e: Exception) -> bool:
    """True when a write reached a standby: the primary has moved (a failover or switchover) and
    this connection still led to the old one. The breaker stops trying for a moment too: Patroni
    may still be promoting the new primary."""
    return isinstance(getattr(e, "orig", None), psycopg.errors.ReadOnlySqlTransaction)


# What libpq says when the server refuses who we are (no SQLSTATE reaches the client for a failed
# connection, only the server's message).
CREDENTIAL_ERRORS = (
    "password authentication failed",
    "no pg_hba.conf entry",
    "does not exist",  # role "..." / database "..." does not exist
)


def is_configuration_error(e: Exception) -> bool:
    """True when the database answered but rejected our credentials: a wrong password (say, new
    secret files beside an old database volume), an unknown role or database. Waiting won't help."""
    message = str(getattr(e, "orig", None) or e)
    return isinstance(e, OperationalError) and any(s in message for s in CREDENTIAL_ERRORS)


def handle_database_error(e: Exception):
    if not is_unavailable(e):
        return handle_unexpected(e)
    # Not our bug and not the client's: no traceback, one line naming the cause.
    cause = str(e).splitlines()[0] if str(e) else type(e).__name__
    where = (request.method, request.path, request.headers.get("X-Request-ID", "-"))
    if is_configuration_error(e):
        log.error(
            "database configuration error: %s %s (request id %s): %s -- the database rejects the "
            "app's credentials; check DB_USER and the password file against the database's roles",
            *where,
            cause,
        )
        return error_response(503, "database unavailable: it rejects the app's credentials")
    log.warning("database unavailable: %s %s (request id %s): %s", *where, cause)
    return error_response(503, "database unavailable")


def handle_unexpected(e: Exception):
    log.exception(
        "unhandled error: %s %s (request id %s)",
        request.method,
        request.path,
        request.headers.get("X-Request-ID", "-"),
    )
    return error_response(500, "internal server error")
