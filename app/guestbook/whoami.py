"""/api/whoami: which node of each tier handled this request. No database involved.

Each tier names itself in a request header on the way in: HAProxy sets X-LB, nginx sets X-Web and
passes on the X-Request-ID that HAProxy made. The app adds its own name. Calling whoami a few times
through the stack shows the load balancing at work.
"""

from flask import Blueprint, current_app, request

bp = Blueprint("whoami", __name__)


@bp.get("/whoami")
def whoami():
    return {
        # None (JSON null) when a tier was bypassed, e.g. a request sent straight to the app.
        "lb": request.headers.get("X-LB"),
        "web": request.headers.get("X-Web"),
        "app": current_app.config["NODE_NAME"],
        "request_id": request.headers.get("X-Request-ID"),
    }
