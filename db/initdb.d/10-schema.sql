-- 10-schema.sql - the guestbook schema. Run once per cluster, by the entrypoint (on the primary
-- that bootstraps a Patroni cluster, or on a standalone server's first start), as the database
-- owner ($POSTGRES_USER): the owner creates and owns every table. Standbys copy it.

CREATE TABLE messages (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The same limits the API validates; the database enforces them too, so nothing invalid is
    -- stored even if a future client skips the API's checks.
    author          varchar(80)   NOT NULL CHECK (char_length(author) >= 1),
    text            varchar(1000) NOT NULL CHECK (char_length(text) >= 1),
    created_at      timestamptz   NOT NULL DEFAULT now(),
    -- Client-chosen key of a POST (the Idempotency-Key header): a retried POST with the same key
    -- finds the first row instead of making a second one. NULL when the client sent none.
    idempotency_key varchar(200)  UNIQUE
);

-- "Newest first" is the only listing order: an index matching it keeps the read cheap.
CREATE INDEX messages_newest_first ON messages (created_at DESC, id DESC);
