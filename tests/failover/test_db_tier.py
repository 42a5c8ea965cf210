"""Scenario 7: the database restarts under load.

The app answers a JSON 503 while PostgreSQL is away (no 500, no HTML); its pool checks each
connection before use (`pool_pre_ping`), so service resumes by itself when the database is back.
"""

from tests.failover.conftest import Timeline, assert_no_message_lost_or_doubled, run_for
from tests.stack import Stack


def test_database_restart_gives_json_503s_then_no_errors(failover_stack: Stack, load):
    """Scenario 7: `docker compose stop db`, then start, under 40 req/s. Budget: while it is down,
    every failure is a JSON 503; 0 errors from the breaker's retry interval (0.5 s) after it is
    healthy again; every acknowledged message is still there afterwards."""
    with load(duration=18) as client:
        timeline = Timeline(client)
        healthy_at = timeline.stop_then_start(failover_stack, "db", "stop", at=3, start_at=8)
        # A worker that found the database down just before it came back waits out its breaker's
        # retry interval (DB_RETRY_INTERVAL, 0.5 s) before trying again.
        back_at = healthy_at + 0.5
        run_for(client)
    print(timeline.report("scenario 7: restart the database"))

    for outcome in client.failed():
        assert outcome.status == 503, outcome
        assert outcome.content_type.startswith("application/json"), outcome
    assert client.failed(after=back_at) == []
    assert any(not o.ok for o in client.results()), "the outage was not seen at all"
    assert_no_message_lost_or_doubled(failover_stack, client)
