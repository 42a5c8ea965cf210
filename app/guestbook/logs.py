"""Logging: plain lines on stderr, which Docker collects as the container's log.

Gunicorn configures only its own loggers (gunicorn.error, gunicorn.access); the app's loggers
propagate to the root logger, which is set up here with a format close to Gunicorn's, so both kinds
of line read alike in `docker compose logs`. (Named logs.py, not logging.py, so it never shadows
the standard library's module.)
"""

import logging
import sys

# The same shape as Gunicorn's own lines: [time] [pid] [LEVEL] ..., plus the logger's name.
FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"


def init_app(level: str) -> None:
    # basicConfig does nothing when the root logger already has handlers: a host application
    # (or pytest, which captures logs) that configured logging keeps its own setup.
    logging.basicConfig(level=level.upper(), format=FORMAT, datefmt=DATE_FORMAT, stream=sys.stderr)
