"""Fixtures for the failover scenarios: a whole, healthy stack before and after each one, a load
client aimed at the virtual IP, and the check that no acknowledged message was lost or doubled."""

from collections.abc import Callable, Iterator

import pytest

from tests.failover.load import LoadClient
from tests.stack import (
    SERVICES,
    Stack,
    db_cluster_healthy,
    db_primary,
    haproxy_command,
    psql,
    start_and_wait_healthy,
    wait_until,
)


def bring_everything_back(stack: Stack) -> None:
    """Every service running and healthy, both web nodes in rotation on both LBs, and the
    database cluster whole: a leader and two synchronous standbys streaming from it."""
    start_and_wait_healthy(stack, *SERVICES)
    for lb in ("lb1", "lb2"):
        for web in ("web1", "web2"):
            haproxy_command(stack, lb, f"set server web/{web} state ready")
    wait_until(lambda: db_cluster_healthy(stack), 90, "a leader and two streaming standbys")


@pytest.fixture
def failover_stack(stack: Stack) -> Iterator[Stack]:
    bring_everything_back(stack)
    yield stack
    bring_everything_back(stack)


@pytest.fixture
def load(failover_stack: Stack) -> Callable[..., LoadClient]:
    """Make a load client for the stack's entry point, the virtual IP."""

    def make(
        duration: float, rate: float = 40.0, post_retries: int = 0, timeout: float = 5.0
    ) -> LoadClient:
        return LoadClient(
            failover_stack.vip_url,
            rate=rate,
            duration=duration,
            post_retries=post_retries,
            timeout=timeout,
        )

    return make


class Timeline:
    """What the scenario did, and when, on the load client's clock; printed with the results."""

    def __init__(self, client: LoadClient) -> None:
        self.client = client
        self.events: list[tuple[float, str]] = []

    def mark(self, what: str) -> float:
        at = self.client.now()
        self.events.append((at, what))
        return at

    def wait_until_load_time(self, seconds: float) -> None:
        """Let the load run until `seconds` on its clock (bounded by the load's own duration)."""
        wait_until(
            lambda: self.client.now() >= seconds, timeout=seconds + 1, what=f"load time {seconds}s"
        )

    def stop_then_start(
        self, stack: Stack, service: str, how: str, at: float, start_at: float
    ) -> float:
        """`docker compose <how> <service>` (stop: graceful; kill: SIGKILL) at `at` seconds of
        load, start it again at `start_at`; return the load time at which it was healthy."""
        self.wait_until_load_time(at)
        self.mark(f"docker compose {how} {service}")
        stack.docker_compose(how, service)
        self.mark(f"{service} down")
        self.wait_until_load_time(start_at)
        self.mark(f"docker compose start {service}")
        start_and_wait_healthy(stack, service)
        return self.mark(f"{service} healthy")

    def add(self, at: float, what: str) -> None:
        """An event seen after the fact (by a watcher or in the results), at load time `at`."""
        self.events.append((at, what))

    def report(self, title: str) -> str:
        events = "\n".join(f"{at:7.2f}s  {what}" for at, what in sorted(self.events))
        return f"{self.client.summary(title)}\nevents:\n{events}"


def assert_no_message_lost_or_doubled(stack: Stack, client: LoadClient) -> None:
    """Every POST answered 201 is readable with its text; no Idempotency-Key made two rows and no
    text was stored twice. Unanswered POSTs may or may not have been stored: either is fine."""
    for key, message_id in client.acknowledged().items():
        response = stack.get(f"/api/messages/{message_id}")
        assert response.status_code == 200, f"acknowledged message {message_id} is lost"
        assert response.json()["text"] == f"load {key}"
    sql = (
        "SELECT count(*) FROM (SELECT text FROM messages "
        f"WHERE text LIKE 'load {client.run_id}-%' GROUP BY text HAVING count(*) > 1) AS d"
    )
    primary = db_primary(stack)
    assert primary, "no database primary to count duplicates on"
    result = psql(stack, primary, sql)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0", "a message was stored twice"


def run_for(client: LoadClient) -> None:
    """Wait for the load to end by itself (it is bounded by its duration)."""
    wait_until(
        lambda: client.now() >= client.duration,
        timeout=client.duration + 2,
        what="the end of the load",
    )
