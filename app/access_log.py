"""Gunicorn's access log, the same lines for less CPU (gunicorn.conf.py: logger_class).

Beside gunicorn.conf.py, outside the guestbook package, because Gunicorn's master loads it before
any worker exists: importing guestbook there would make the app's metrics in the master, before
on_starting has prepared their directory.

Gunicorn writes one access-log line per request, in the shape of `access_log_format`. To fill it,
its Logger.access() first builds every field the format *could* use: ~20 fixed ones (the time by
strftime, the process id, ...) plus one per request header, response header and WSGI environ
entry (~40 on one of our requests), each name lowercased, then copies them all once more to escape
quotes. Our format prints seven. On `/api/whoami` that building was 16% of the app's CPU (py-spy,
docs/load-testing.md "Where a request's time goes").

AccessLogger hands the format a LazyFields mapping instead: a field is worked out when the format
asks for it, by the same rules as Gunicorn's (the same text, quotes escaped the same way), and a
field it has no fast rule for comes from Gunicorn's own full set, so any format still works. It
also drops the container healthcheck's requests before any of that (they say nothing about the
traffic, and would bury it when a student reads the log; nginx's /healthz is left out the same
way, `access_log off`).
"""

from gunicorn import glogging


def escape(value):
    # Gunicorn's SafeAtoms does the same to every text field: a quote in a URL or header cannot
    # end a quoted field early and forge the rest of the line.
    return value.replace('"', '\\"') if isinstance(value, str) else value


class LazyFields(dict):
    """The fields of one access line, each worked out when the format asks for it (`format %
    fields` calls __getitem__ once per field). A dict subclass because logging hands a single dict
    argument to the format as the mapping; the one real entry keeps it truthy (logging only does so
    for a non-empty one)."""

    def __init__(self, logger, resp, req, environ, request_time):
        super().__init__(lazy=True)
        self.logger, self.resp, self.req = logger, resp, req
        self.environ, self.request_time = environ, request_time
        self.everything = None  # Gunicorn's full set, only built for a field without a fast rule

    def __getitem__(self, name):
        environ = self.environ
        if name == "h":  # the peer's address: nginx's, or the client's when asked directly
            return environ.get("REMOTE_ADDR", "-")
        if name == "r":  # the request line, as received
            method, uri = environ["REQUEST_METHOD"], environ["RAW_URI"]
            return escape(f"{method} {uri} {environ['SERVER_PROTOCOL']}")
        if name == "s":  # the status code alone ("200", not "200 OK")
            status = self.resp.status
            return status.split(None, 1)[0] if isinstance(status, str) else status
        if name == "b":  # bytes of body sent
            sent = getattr(self.resp, "sent", None)
            return str(sent) if sent is not None else "-"
        if name == "M":  # the time the request took, in whole milliseconds
            request_time = self.request_time
            return request_time.seconds * 1000 + request_time.microseconds // 1000
        if name.startswith("{") and name[-2:] in ("}i", "}o"):
            # A request header ({x-request-id}i) or a response header ({x-app}o), by name, any case.
            # A header sent twice gives its last value, as in Gunicorn's.
            wanted = name[1:-2].lower()
            headers = self.req.headers if name[-1] == "i" else self.resp.headers
            found = "-"
            for header, value in headers:
                if header.lower() == wanted:
                    found = value
            return escape(found)
        if self.everything is None:
            # Logger.atoms is Gunicorn's own, not changed here: every field any format could use.
            full = self.logger.atoms(self.resp, self.req, environ, self.request_time)
            self.everything = glogging.SafeAtoms(full)
        return self.everything[name]


class AccessLogger(glogging.Logger):
    """Gunicorn's Logger; only its access() is changed (every other log line is its own)."""

    def access(self, resp, req, environ, request_time):
        # The container healthcheck (Docker runs it inside the container: from 127.0.0.1) is not
        # logged. The same URL asked through the load balancer is logged as any request is.
        if environ.get("PATH_INFO") == "/api/healthz" and environ.get("REMOTE_ADDR") == "127.0.0.1":
            return
        if not self.logs_access():
            return
        fields = LazyFields(self, resp, req, environ, request_time)
        try:
            self.access_log.info(self.cfg.access_log_format, fields)
        except Exception:  # as Gunicorn's own access(): a bad format must not fail the request
            self.exception("access log line")

    def logs_access(self):
        # Gunicorn's own test in access(): is there an access log at all? (Default: none.)
        cfg = self.cfg
        return bool(
            cfg.accesslog
            or cfg.logconfig
            or cfg.logconfig_dict
            or cfg.logconfig_json
            or (cfg.syslog and not cfg.disable_redirect_access_to_syslog)
        )
