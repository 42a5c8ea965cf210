"""Scenarios 1 and 2: losing one application server.

nginx sends a request that could not reach an app node to the other one (`proxy_next_upstream`),
except a POST that may already have been received: that one is answered 503, never replayed
blindly, and the client may retry it with the same Idempotency-Key.
"""

from tests.failover.conftest import Timeline, assert_no_message_lost_or_doubled, run_for
from tests.stack import Stack, wait_until


def serves_again(stack: Stack, app: str) -> bool:
    """True once a few requests through the entry point reach `app` (nginx keeps a node that
    failed out of rotation for fail_timeout, 5 s, before trying it again)."""
    return any(stack.get("/api/whoami").headers.get("X-App") == app for _ in range(4))


def test_kill_app_node_costs_no_get_and_loses_no_acknowledged_post(failover_stack: Stack, load):
    """Scenario 1: `docker kill app1` under 40 req/s, started again 5 s later.
    Budget: 0 failed GETs. POSTs in flight on app1 may fail (never acknowledged then); every
    acknowledged POST is stored exactly once. Recovery: app1 serves again within 10 s of being
    healthy."""
    with load(duration=16) as client:
        timeline = Timeline(client)
        timeline.stop_then_start(failover_stack, "app1", "kill", at=4, start_at=9)
        back = wait_until(lambda: serves_again(failover_stack, "app1"), 10, "app1 to serve again")
        timeline.mark("app1 serves requests again")
        run_for(client)
    print(timeline.report("scenario 1: kill an app node"))
    print(f"app1 back in rotation {back:.2f}s after it was healthy")

    assert client.failed("GET") == []
    assert_no_message_lost_or_doubled(failover_stack, client)


def test_graceful_restart_of_app_node_costs_no_request(failover_stack: Stack, load):
    """Scenario 2: `docker compose stop app1` (SIGTERM: Gunicorn finishes in-flight requests),
    then start it again, under 40 req/s. Budget: 0 failed requests of any kind."""
    with load(duration=16) as client:
        timeline = Timeline(client)
        timeline.stop_then_start(failover_stack, "app1", "stop", at=3, start_at=8)
        run_for(client)
    print(timeline.report("scenario 2: graceful restart of an app node"))

    assert client.failed() == []
    assert_no_message_lost_or_doubled(failover_stack, client)
