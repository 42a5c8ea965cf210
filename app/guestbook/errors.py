"""Every error the app answers is JSON: {"error": "<what went wrong>"}, never an HTML page.

Three kinds of failure, three handlers:
- the client's mistake: ApiError raised by our views, or an HTTPException raised by Flask/werkzeug
  itself (404 unknown URL, 405 wrong method, 413 body too large, ...) -> 4xx with a message;
- the database is unreachable or overloaded -> 503, so a load balancer or client can retry later;
- anything else is our bug -> 500, logged with its traceback, with no details given to the client.
"""

import logging

import psycopg
from flask import Flask, current_app, jsonify, request
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from .breaker import DatabaseUnavailable, get_breaker

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
    trying for a moment. A broken pooled connection (connection_invalidated) says nothing about
    the database now: SQLAlchemy has already dropped it and the next request connects afresh."""
    return (
        isinstance(e, OperationalError | InterfaceError)
        and not isinstance(getattr(e, "orig", None), psycopg.errors.QueryCanceled)
        and not getattr(e, "connection_invalidated", False)
    )


def handle_database_error(e: Exception):
    if not is_unavailable(e):
        return handle_unexpected(e)
    if is_connection_failure(e):
        get_breaker().trip()
    # Not our bug and not the client's: no traceback, one line naming the cause.
    log.warning(
        "database unavailable: %s %s (request id %s): %s",
        request.method,
        request.path,
        request.headers.get("X-Request-ID", "-"),
        str(e).splitlines()[0] if str(e) else type(e).__name__,
    )
    return error_response(503, "database unavailable")


def handle_unexpected(e: Exception):
    log.exception(
        "unhandled error: %s %s (request id %s)",
        request.method,
        request.path,
        request.headers.get("X-Request-ID", "-"),
    )
    return error_response(500, "internal server error")
