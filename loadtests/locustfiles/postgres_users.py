"""The database tier on its own: the app's two queries, sent straight to PostgreSQL.

Locust ships no PostgreSQL client worth measuring with (locust.contrib.postgres rounds times to
whole milliseconds), so this is a small User that times psycopg 3 calls and reports each one with
the `request` event, as any Locust client does. psycopg notices gevent's monkey-patching (Locust
applies it) and then waits for the server cooperatively, so one process runs many users at once.

The scenario's `host` is a libpq URL without password; the password is read from
--pg-password-file (the app's secret). Each user holds one connection, in autocommit mode like
pgbench, and prepares the statements on first use, like the app's driver does for repeated queries.
"""

import time
from pathlib import Path

import hooks  # noqa: F401  (registers the tag filter, the thresholds and the run summary)
import psycopg
import targets
from locust import User, constant, tag, task


class DatabaseUser(User):
    """The guestbook's database work: 4 SELECTs of the newest messages for each INSERT."""

    wait_time = constant(0)

    def on_start(self):
        password = Path(self.environment.parsed_options.pg_password_file).read_text().strip()
        self.conn = psycopg.connect(self.host, password=password, autocommit=True)

    def on_stop(self):
        self.conn.close()

    def query(self, name: str, sql: str, params: tuple | None = None) -> None:
        start = time.perf_counter()
        rows, exception = 0, None
        try:
            cursor = self.conn.execute(sql, params, prepare=True)
            rows = len(cursor.fetchall())
        except psycopg.Error as e:
            exception = e
        self.environment.events.request.fire(
            request_type="SQL",
            name=name,
            response_time=(time.perf_counter() - start) * 1000,
            response_length=rows,
            exception=exception,
            context={},
        )

    @tag("database", "read")
    @task(targets.READ_WEIGHT)
    def select_newest(self):
        self.query("SELECT newest 20", targets.SELECT_NEWEST)

    @tag("database", "write")
    @task(targets.WRITE_WEIGHT)
    def insert_message(self):
        message = targets.MESSAGE
        self.query("INSERT message", targets.INSERT_MESSAGE, (message["author"], message["text"]))
