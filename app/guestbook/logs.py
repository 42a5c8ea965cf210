"""Logging: plain lines on stderr, which Docker collects as the container's log.

Gunicorn's access log (one line per request) is written in batches (BatchedStreamHandler below,
installed by gunicorn.conf.py in each worker); errors and warnings are written at once.

Gunicorn configures only its own loggers (gunicorn.error, gunicorn.access); the app's loggers
propagate to the root logger, which is set up here with a format close to Gunicorn's, so both kinds
of line read alike in `docker compose logs`. (Named logs.py, not logging.py, so it never shadows
the standard library's module.)
"""

import logging
import sys
import threading

# The same shape as Gunicorn's own lines: [time] [pid] [LEVEL] ..., plus the logger's name.
FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"


def init_app(level: str) -> None:
    # basicConfig does nothing when the root logger already has handlers: a host application
    # (or pytest, which captures logs) that configured logging keeps its own setup.
    logging.basicConfig(level=level.upper(), format=FORMAT, datefmt=DATE_FORMAT, stream=sys.stderr)


class BatchedStreamHandler(logging.Handler):
    """Writes log lines in batches: when `max_bytes` have gathered, and every `interval` seconds.

    Why: every write to a container's stdout is carried by containerd-shim and dockerd, which cost
    CPU per write (about as much as the app spends on a small request, measured: README "Load
    testing"). One write per request, as logging's StreamHandler does, pays that on every request;
    one write per batch pays it once for many. nginx's `access_log ... buffer= flush=` does the
    same for the web tier. A line waits at most `interval` seconds, so `docker compose logs` still
    shows a request almost at once. Lines still buffered when the process is killed with SIGKILL
    are lost; a normal stop flushes them (close()).
    """

    def __init__(self, stream, max_bytes: int = 65536, interval: float = 1.0) -> None:
        super().__init__()
        self.stream = stream
        self.max_bytes = max_bytes
        self._lines: list[str] = []
        self._size = 0
        self._stop = threading.Event()
        # A daemon thread: it never keeps the process alive.
        flusher = threading.Thread(
            target=self._flush_every, args=(interval,), name="log-flusher", daemon=True
        )
        flusher.start()

    def emit(self, record: logging.LogRecord) -> None:
        # Called by Handler.handle(), which holds self.lock: threads never interleave here.
        try:
            line = self.format(record) + "\n"
        except Exception:
            self.handleError(record)
            return
        self._lines.append(line)
        self._size += len(line)
        if self._size >= self.max_bytes:
            self.flush()

    def flush(self) -> None:
        with self.lock:  # an RLock: emit() may call this while holding it
            if not self._lines:
                return
            data = "".join(self._lines)
            self._lines.clear()
            self._size = 0
            try:
                self.stream.write(data)
                self.stream.flush()
            except (OSError, ValueError):
                pass  # stdout closed or gone: nothing useful left to do with the lines

    def _flush_every(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self.flush()
        super().close()


def batch_stream_handlers(logger: logging.Logger) -> None:
    """Replace each plain StreamHandler of `logger` by a BatchedStreamHandler on the same stream,
    with the same format. Call it in each process that logs (after any fork: threads don't cross
    fork())."""
    for handler in list(logger.handlers):
        if type(handler) is logging.StreamHandler:
            batched = BatchedStreamHandler(handler.stream)
            batched.setFormatter(handler.formatter)
            batched.setLevel(handler.level)
            for log_filter in handler.filters:
                batched.addFilter(log_filter)
            logger.removeHandler(handler)
            logger.addHandler(batched)
