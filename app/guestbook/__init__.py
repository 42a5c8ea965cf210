"""guestbook: the application tier of fourtier, a small JSON API in front of PostgreSQL.

Gunicorn starts it with the app factory:  gunicorn "guestbook:create_app()"
The factory pattern (as in Flask's tutorial, flaskr) lets every Gunicorn worker, and every test,
build its own app with its own settings and its own database connection pool.
"""

from collections.abc import Mapping

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import db, errors, health, logs, messages, metrics, nodes, openapi, whoami
from .config import Config


def create_app(config: Mapping | None = None) -> Flask:
    # No static folder (Flask's default is ./static, served at /static/<path>): nginx serves the
    # static site, and an app route nobody uses would be one more thing to describe and fuzz.
    app = Flask(__name__, static_folder=None)

    # Settings, each layer overriding the one before: defaults and environment variables (read by
    # the Config class), then the mapping a test passes in.
    app.config.from_object(Config)
    if config is not None:
        app.config.update(config)

    logs.init_app(app.config["LOG_LEVEL"])

    # HAProxy and nginx stand in front of us. ProxyFix takes the client's address from the
    # X-Forwarded-For header they append to, trusting exactly PROXY_COUNT hops (a client can forge
    # extra entries on the left, never the ones our proxies appended). X-Forwarded-Proto is set
    # (not appended) by nginx alone: one value to trust.
    if app.config["PROXY_COUNT"] > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["PROXY_COUNT"], x_proto=1)

    db.init_app(app)  # the engine(s), each with its breaker (breaker.py)
    errors.init_app(app)
    nodes.init_app(app)
    metrics.init_app(app)

    # Every endpoint lives under /api: nginx forwards /api/ here and serves everything else itself.
    for blueprint in (health.bp, whoami.bp, messages.bp, openapi.bp):
        app.register_blueprint(blueprint, url_prefix="/api")

    return app
