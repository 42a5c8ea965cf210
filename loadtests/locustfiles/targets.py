"""What the scenarios ask for, in one place: URL paths, the message they post, the SQL they run.

Imported by the Locust users and by the harness, which gives the very same requests to wrk and
pgbench when it calibrates Locust. No Locust import here: the harness must not load gevent.
"""

# Static: a stylesheet nginx serves from disk (5.6 KB). Dynamic without database: /api/whoami.
STATIC_PATH = "/static/css/site.css"
WHOAMI_PATH = "/api/whoami"
# The cheapest answer in the stack (nginx's `return 200`): Locust's own ceiling on this machine.
CEILING_PATH = "/healthz"

# Database-bound: the newest 20 messages, and a new message; 4 reads for every write.
MESSAGES_PATH = "/api/messages"
LIST_PATH = "/api/messages?limit=20"
READ_WEIGHT = 4
WRITE_WEIGHT = 1
MESSAGE = {"author": "locust", "text": "a message from the load generator"}

# The same work, as the SQL the app sends for it (what SQLAlchemy generates for messages.py).
SELECT_NEWEST = (
    "SELECT id, author, text, created_at, idempotency_key FROM messages"
    " ORDER BY created_at DESC, id DESC LIMIT 20"
)
INSERT_MESSAGE = (
    "INSERT INTO messages (author, text) VALUES (%s, %s)"
    " ON CONFLICT (idempotency_key) DO NOTHING"
    " RETURNING id, author, text, created_at, idempotency_key"
)
