"""The guestbook itself: list, read and add messages.

    GET  /api/messages?limit=N   newest first, N from 1 to 100 (default 20)
    POST /api/messages           {"author": ..., "text": ...} -> 201 + Location
    GET  /api/messages/<id>      one message, or 404

Reads may be served by a standby (db.py, DB_READ_TARGET_SESSION_ATTRS); writes always go to the
primary. POST honours an optional Idempotency-Key header, so a client whose request timed out can
send it again without risk: the retry finds the row the first attempt made instead of adding a
second one.
"""

from flask import Blueprint, request
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from .db import PRIMARY, READS, execute, reads_from_standbys
from .errors import ApiError
from .models import ID_MAX, PUBLIC_COLUMNS, Message, message_json
from .validation import parse_idempotency_key, parse_limit, parse_message

bp = Blueprint("messages", __name__)


@bp.get("/messages")
def list_messages():
    limit = parse_limit(request.args.get("limit"))
    # created_at can tie (rows inserted in the same transaction): id breaks the tie, so the order
    # is stable. The index messages_newest_first serves exactly this ORDER BY.
    query = (
        select(*PUBLIC_COLUMNS).order_by(Message.created_at.desc(), Message.id.desc()).limit(limit)
    )
    # From a standby, the list may lack a message acknowledged a few milliseconds ago: fine for a
    # list, which is out of date as soon as it is sent anyway.
    rows = execute(query, role=READS)
    return {"messages": [message_json(row) for row in rows]}


@bp.get("/messages/<int:message_id>")
def get_message(message_id: int):
    # An id beyond bigint's range can't exist (and would be a database error, not a 404).
    row = None
    if message_id <= ID_MAX:
        query = select(*PUBLIC_COLUMNS).where(Message.id == message_id)
        row = execute(query, role=READS).one_or_none()
        if row is None and reads_from_standbys():
            # A client that follows the Location of its POST at once may reach a standby that has
            # not yet replayed the insert (a synchronous standby has it on disk, not necessarily
            # applied). The primary has every committed row: ask it before answering 404.
            row = execute(query, role=PRIMARY).one_or_none()
    if row is None:
        raise ApiError(404, f"message {message_id} not found")
    return message_json(row)


@bp.post("/messages")
def create_message():
    # Validate everything first: nothing invalid ever reaches the database.
    fields = parse_message(request)
    key = parse_idempotency_key(request.headers.get("Idempotency-Key"))

    # One statement for both cases:
    #   INSERT ... ON CONFLICT (idempotency_key) DO NOTHING RETURNING *
    # Without a key, idempotency_key is NULL, and NULLs never conflict: a plain insert.
    # With a key already stored, nothing is inserted and nothing is returned. The check and the
    # insert are one atomic statement, so two concurrent retries cannot both insert: the second
    # waits on the unique index until the first commits, then does nothing. The statement commits
    # by itself (the engine runs in autocommit, db.py): no COMMIT to send afterwards.
    statement = (
        insert(Message)
        .values(**fields, idempotency_key=key)
        .on_conflict_do_nothing(index_elements=[Message.idempotency_key])
        .returning(*PUBLIC_COLUMNS)
    )
    # Retried on a broken pooled connection only if it carries a key (see db.execute).
    row = execute(statement, retry=key is not None).one_or_none()

    replayed = False
    if row is None:
        # The key was used before: this is a retry of an earlier POST, or a client reusing a key.
        query = select(*PUBLIC_COLUMNS).where(Message.idempotency_key == key)
        row = execute(query).one()
        if (row.author, row.text) != (fields["author"], fields["text"]):
            raise ApiError(422, "Idempotency-Key was already used with a different message")
        replayed = True

    headers = {"Location": f"/api/messages/{row.id}"}
    if replayed:
        # The same answer as the first time, marked so the client can tell it was a replay.
        headers["Idempotent-Replayed"] = "true"
    return message_json(row), 201, headers
