"""The app tier's access log: written in batches, at most a second late."""

import io
import logging
import threading

from guestbook.logs import BatchedStreamHandler, batch_stream_handlers


class CountingStream(io.StringIO):
    """A stream that counts the writes made to it: one per batch is the point."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.written = threading.Event()

    def write(self, text: str) -> int:
        self.writes += 1
        self.written.set()
        return super().write(text)


def make_logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"test.{id(handler)}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger


def test_lines_are_written_in_one_write_per_batch() -> None:
    stream = CountingStream()
    handler = BatchedStreamHandler(stream, interval=3600)
    log = make_logger(handler)
    for i in range(100):
        log.info("request %d", i)
    assert stream.writes == 0  # still gathering
    handler.flush()
    assert stream.writes == 1
    assert stream.getvalue().splitlines() == [f"request {i}" for i in range(100)]
    handler.close()


def test_a_full_batch_is_written_at_once() -> None:
    stream = CountingStream()
    handler = BatchedStreamHandler(stream, max_bytes=1000, interval=3600)
    log = make_logger(handler)
    for _ in range(10):
        log.info("x" * 199)  # 200 bytes with the newline: the fifth line fills 1000
    assert stream.writes == 2
    assert len(stream.getvalue().splitlines()) == 10
    handler.close()


def test_a_lone_line_is_written_within_the_interval() -> None:
    stream = CountingStream()
    handler = BatchedStreamHandler(stream, interval=0.05)
    make_logger(handler).info("only one")
    assert stream.written.wait(timeout=5)
    assert stream.getvalue() == "only one\n"
    handler.close()


def test_close_writes_what_is_left() -> None:
    stream = CountingStream()
    handler = BatchedStreamHandler(stream, interval=3600)
    make_logger(handler).info("last words")
    handler.close()
    assert stream.getvalue() == "last words\n"


def test_batching_keeps_the_handlers_format_and_filters() -> None:
    stream = io.StringIO()
    plain = logging.StreamHandler(stream)
    plain.setFormatter(logging.Formatter("access: %(message)s"))
    plain.addFilter(lambda record: "secret" not in record.getMessage())
    log = make_logger(plain)
    batch_stream_handlers(log)
    (handler,) = log.handlers
    assert isinstance(handler, BatchedStreamHandler)
    log.info("%(U)s", {"U": "/api/whoami"})
    log.info("%(U)s", {"U": "/secret"})  # the filter, carried over to the batched handler
    log.info("%(U)s", {"U": "/api/healthz"})
    handler.close()
    assert stream.getvalue().splitlines() == ["access: /api/whoami", "access: /api/healthz"]
