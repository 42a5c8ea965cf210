"""The app's access log (app/access_log.py): Gunicorn's lines exactly, for less work, and no
line for the container's own healthcheck."""

import datetime
import logging
import runpy
from pathlib import Path

import pytest
from access_log import AccessLogger
from gunicorn import glogging
from gunicorn.config import Config

# The format the app nodes really use, read from their Gunicorn configuration.
GUNICORN_CONF = Path(__file__).parents[2] / "app" / "gunicorn.conf.py"
OUR_FORMAT = runpy.run_path(str(GUNICORN_CONF))["access_log_format"]
# Gunicorn's default without %(t)s (the time, which could change between the two lines compared),
# plus fields with no fast rule (%(D)s, %(p)s, an environ entry) and a header nobody sent.
OTHER_FORMAT = (
    '%(h)s %(l)s %(u)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)s %(p)s %({wsgi.url_scheme}e)s '
    "%({x-nobody}i)s %(U)s?%(q)s"
)


class Request:
    # Gunicorn's parsed request: header names in capitals, in the order received.
    headers = [
        ("HOST", "app1:8000"),
        ("USER-AGENT", 'curl/8 "quoted"'),
        ("X-REQUEST-ID", "5f952691-07d1-4f35-8a21-4da8de5d333d"),
        ("X-WEB", "web1"),
        ("X-WEB", "web2"),  # sent twice: the last one counts, as in Gunicorn's own
    ]


class Response:
    status = "201 CREATED"
    sent = 57
    headers = [("Content-Type", "application/json"), ("X-App", "app1")]


def environ(path: str = '/api/messages?limit="5"', peer: str = "10.213.240.11") -> dict:
    uri_path, _, query = path.partition("?")
    return {
        "REQUEST_METHOD": "POST",
        "RAW_URI": path,
        "PATH_INFO": uri_path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": peer,
        "HTTP_USER_AGENT": 'curl/8 "quoted"',
        "wsgi.url_scheme": "http",
    }


REQUEST_TIME = datetime.timedelta(seconds=1, microseconds=234567)


def logger(cls: type, log_format: str, accesslog: str | None = "-") -> tuple[glogging.Logger, list]:
    cfg = Config()
    cfg.set("accesslog", accesslog)
    cfg.set("access_log_format", log_format)
    log = cls(cfg)
    lines: list[str] = []
    capture = logging.Handler()
    capture.emit = lambda record: lines.append(record.getMessage())
    log.access_log.handlers = [capture]
    return log, lines


@pytest.mark.parametrize("log_format", [OUR_FORMAT, OTHER_FORMAT], ids=["ours", "other"])
def test_lines_are_gunicorns_own(log_format: str) -> None:
    # One after the other: every Gunicorn Logger writes through the same `gunicorn.access` logger.
    stock, stock_lines = logger(glogging.Logger, log_format)
    stock.access(Response, Request, environ(), REQUEST_TIME)
    lean, lean_lines = logger(AccessLogger, log_format)
    lean.access(Response, Request, environ(), REQUEST_TIME)
    assert len(stock_lines) == 1
    assert lean_lines == stock_lines
    assert '\\"' in lean_lines[0]  # the quotes in the URL were escaped, as Gunicorn escapes them


def test_our_line_has_the_fields_a_student_follows() -> None:
    lean, lines = logger(AccessLogger, OUR_FORMAT)
    lean.access(Response, Request, environ("/api/whoami"), REQUEST_TIME)
    assert lines == [
        '10.213.240.11 "POST /api/whoami HTTP/1.1" 201 57 '
        "rid=5f952691-07d1-4f35-8a21-4da8de5d333d app=app1 1234ms"
    ]


def test_the_containers_healthcheck_is_not_logged_and_the_same_url_through_the_stack_is() -> None:
    lean, lines = logger(AccessLogger, "%(h)s %(U)s")
    lean.access(Response, Request, environ("/api/healthz", peer="127.0.0.1"), REQUEST_TIME)
    lean.access(Response, Request, environ("/api/healthz", peer="10.213.240.11"), REQUEST_TIME)
    assert lines == ["10.213.240.11 /api/healthz"]


def test_no_access_log_means_no_line() -> None:
    lean, lines = logger(AccessLogger, OUR_FORMAT, accesslog=None)
    lean.access(Response, Request, environ(), REQUEST_TIME)
    assert lines == []
