"""Day two: the database's roles no longer match the secret files the app reads (say `.secrets/`
was made anew beside old database volumes). Every request would be a 503; what matters is that
the stack says why. `make up` ends with scripts/wait-ready.sh, which must name the cause and the
fix at once instead of waiting out its timeout, and service must come back once the passwords
match again, with nothing restarted."""

import os
import secrets
import subprocess
import time

from tests.stack import ROOT, Stack, db_primary, wait_until

APP_SECRET = ROOT / ".secrets" / "db_app_password"


def as_superuser(stack: Stack, node: str, sql: str) -> None:
    """Run SQL on a db node as the cluster's superuser, over the Unix socket with peer
    authentication, as Patroni does (the container runs as the OS user postgres): no password."""
    result = stack.exec(
        node, "psql", "-h", "/var/run/postgresql", "-U", "guestbook_owner", "-d", "guestbook",
        "-v", "ON_ERROR_STOP=1", "-c", sql,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def wait_ready(timeout: int) -> tuple[subprocess.CompletedProcess, float]:
    """Run `make up`'s last step against the test stack; return its result and how long it took."""
    env = {**os.environ, "READY_TIMEOUT": str(timeout)}
    start = time.monotonic()
    result = subprocess.run(
        [str(ROOT / "scripts" / "wait-ready.sh")], env=env, capture_output=True, text=True
    )
    return result, time.monotonic() - start


def test_a_password_mismatch_is_named_at_once_and_service_returns_when_fixed(stack: Stack):
    primary = db_primary(stack)
    assert primary, "no database primary"
    password = APP_SECRET.read_text(encoding="utf-8").rstrip("\r\n")
    # The role gets a password the app does not have; its open connections are cut, so the next
    # request must log in again.
    as_superuser(stack, primary, f"ALTER ROLE guestbook_app PASSWORD '{secrets.token_hex(16)}'")
    try:
        as_superuser(
            stack,
            primary,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE usename = 'guestbook_app'",
        )
        answer = stack.get("/api/readyz")
        assert answer.status_code == 503
        assert answer.json() == {"error": "database unavailable: it rejects the app's credentials"}

        result, took = wait_ready(timeout=60)
        print(f"wait-ready.sh gave up after {took:.1f}s:\n{result.stderr}")
        assert result.returncode == 1
        assert "the database rejects the app's password" in result.stderr
        assert "make clean && make up" in result.stderr
        assert took < 15  # it names the cause at once, not after its 60 s timeout
        assert "database configuration error" in stack.logs("app1", "app2")
    finally:
        as_superuser(stack, primary, f"ALTER ROLE guestbook_app PASSWORD '{password}'")

    # Nothing restarted: each app worker's breaker lets a new connection try within 0.5 s.
    took = wait_until(
        lambda: all(stack.get("/api/readyz").status_code == 200 for _ in range(4)),
        timeout=30,
        what="readiness through the LB once the passwords match again",
    )
    print(f"ready again {took:.1f}s after the password was put back")
    result, _ = wait_ready(timeout=30)
    assert result.returncode == 0, result.stderr
