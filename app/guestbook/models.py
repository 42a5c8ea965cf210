"""The tables the app reads and writes, as typed SQLAlchemy 2.0 classes.

The schema itself belongs to the database tier (db/initdb.d/10-schema.sql) and is created there, by
the table's owner. The app's role may not create tables, so these classes only describe the table
to SQLAlchemy; they must match the SQL file, and nothing here ever runs CREATE TABLE.
"""

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Limits shared with the schema's varchar sizes, and used by the API's validation.
AUTHOR_MAX = 80
TEXT_MAX = 1000
IDEMPOTENCY_KEY_MAX = 200
# The largest bigint: no id is larger, and PostgreSQL refuses to compare a bigint with a larger one.
ID_MAX = 2**63 - 1


class Base(DeclarativeBase):
    pass


class Message(Base):
    __tablename__ = "messages"

    # GENERATED ALWAYS AS IDENTITY: PostgreSQL numbers the rows; INSERTs never send an id.
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    author: Mapped[str] = mapped_column(String(AUTHOR_MAX))
    text: Mapped[str] = mapped_column(String(TEXT_MAX))
    # Set by the database (DEFAULT now()), so every app node stamps rows with the same clock.
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The client's Idempotency-Key header, if it sent one (UNIQUE; NULL otherwise).
    idempotency_key: Mapped[str | None] = mapped_column(String(IDEMPOTENCY_KEY_MAX), unique=True)


# What the API shows of a message: every column but the idempotency key, which is the client's
# business. The views select exactly these columns and get plain rows back: a list of 20 messages
# needs no Message objects (no identity map, no change tracking), only their values.
PUBLIC_COLUMNS = (Message.id, Message.author, Message.text, Message.created_at)


def message_json(row) -> dict:
    """The public representation of a row of PUBLIC_COLUMNS."""
    return {
        "id": row.id,
        "author": row.author,
        "text": row.text,
        "created_at": row.created_at.isoformat(),
    }
