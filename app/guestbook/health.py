"""Health endpoints, for the load balancer, the orchestrator and people.

- /api/healthz (liveness): the process is up and answering HTTP. It touches nothing else, so a
  database outage never makes every app node look dead at once (and get restarted for nothing).
- /api/readyz (readiness): this node can do useful work, i.e. it can reach the database. While
  the breaker is open (breaker.py), the answer is "not ready" without asking the database, as
  every other request would get its 503 then too.
"""

from flask import Blueprint
from sqlalchemy import text

from .db import execute

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    # The cheapest possible query, on a pooled connection like any request's (retried once on a
    # new connection if the pooled one has gone stale: db.execute). If the database is
    # unreachable this raises, and errors.py turns it into 503 {"error": "database unavailable"};
    # while the breaker is open, it answers that at once (db.get_session).
    execute(text("SELECT 1"))
    return {"status": "ready"}
