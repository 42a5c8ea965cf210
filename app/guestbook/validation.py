"""Checks on what a client sends, before anything reaches the database.

Each check raises ApiError with the status to answer and a message naming the field at fault, so
the client learns exactly what to fix. The database enforces the same limits again (varchar sizes,
CHECK constraints): these checks exist to give a clear 400 instead of a database error.
"""

import re
from typing import Any

from flask import Request
from werkzeug.exceptions import BadRequest

from .errors import ApiError
from .models import AUTHOR_MAX, IDEMPOTENCY_KEY_MAX, TEXT_MAX

LIMIT_DEFAULT = 20
LIMIT_MAX = 100
# Fields a new message has, with their maximum length in characters.
MESSAGE_FIELDS = {"author": AUTHOR_MAX, "text": TEXT_MAX}
# Printable ASCII (space to tilde), 1 to 200 of them, beginning and ending with a visible one: HTTP
# drops the spaces around a header's value on the way, so a key "a  " would arrive as "a" (the
# same key as "a") and "   " as nothing. Found by describing the key in openapi.yaml for the fuzzer.
IDEMPOTENCY_KEY_RE = re.compile(
    rf"[\x21-\x7e]([\x20-\x7e]{{0,{IDEMPOTENCY_KEY_MAX - 2}}}[\x21-\x7e])?"
)


def parse_limit(raw: str | None) -> int:
    """?limit=N: a plain decimal integer from 1 to 100; absent means the default."""
    if raw is None:
        return LIMIT_DEFAULT
    # A regular expression rather than int(): int() also accepts " 7", "+7", "0_7" and non-ASCII
    # digits, none of which a client should rely on.
    if re.fullmatch(r"[0-9]{1,3}", raw) and 1 <= int(raw) <= LIMIT_MAX:
        return int(raw)
    raise ApiError(400, f"limit must be an integer from 1 to {LIMIT_MAX}")


def parse_message(request: Request) -> dict[str, str]:
    """The body of POST /api/messages: a JSON object with exactly `author` and `text`."""
    # Only JSON is accepted; a form post or text/plain is a different media type (415).
    if request.mimetype != "application/json":
        raise ApiError(415, "Content-Type must be application/json")

    # get_json() raises BadRequest on a body that is not valid JSON (or not UTF-8, or empty).
    # A body larger than MAX_CONTENT_LENGTH raises RequestEntityTooLarge instead, which is not a
    # BadRequest: it goes on to errors.py and becomes a 413.
    try:
        payload: Any = request.get_json()
    except BadRequest as e:
        raise ApiError(400, "request body is not valid JSON") from e

    if not isinstance(payload, dict):
        raise ApiError(400, "request body must be a JSON object")

    unexpected = sorted(set(payload) - set(MESSAGE_FIELDS))
    if unexpected:
        raise ApiError(400, f"unexpected field(s): {', '.join(unexpected)}")

    # A missing field and an explicit null are both "required".
    return {
        field: check_text(field, payload.get(field), limit)
        for field, limit in MESSAGE_FIELDS.items()
    }


def check_text(field: str, value: Any, max_length: int) -> str:
    """A required, non-blank string of at most max_length characters, storable in PostgreSQL."""
    if value is None:
        raise ApiError(400, f"{field} is required")
    if not isinstance(value, str):
        raise ApiError(400, f"{field} must be a string")
    if not value.strip():
        raise ApiError(400, f"{field} must not be empty or blank")
    # Characters, not bytes: the same count as PostgreSQL's varchar(n).
    if len(value) > max_length:
        raise ApiError(400, f"{field} must be at most {max_length} characters")
    # Two things valid JSON may carry that PostgreSQL text cannot store: the NUL character, and a
    # lone UTF-16 surrogate ("\ud800"), which is not encodable as UTF-8. Refuse them here, or they
    # would surface as a 500 from the driver.
    if "\x00" in value:
        raise ApiError(400, f"{field} must not contain the NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, f"{field} must be valid Unicode text") from None
    return value


def parse_idempotency_key(raw: str | None) -> str | None:
    """The optional Idempotency-Key header: 1 to 200 printable ASCII characters, not beginning or
    ending with a space."""
    if raw is None:
        return None
    if not IDEMPOTENCY_KEY_RE.fullmatch(raw):
        raise ApiError(
            400,
            f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters, "
            "not beginning or ending with a space",
        )
    return raw
