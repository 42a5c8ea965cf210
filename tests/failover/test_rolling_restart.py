"""Scenario 8: `make rolling-restart` under load: every replicated tier restarted one node at a
time (LBs, then web servers, then app servers; the single database is scenario 7)."""

import subprocess

from tests.failover.conftest import Timeline, assert_no_message_lost_or_doubled
from tests.stack import ROOT, Stack, vip_holders

# When the VIP moves from one LB node to the other, a TCP connection that is open on the old
# holder at that instant cannot be carried over: its next packets reach the new holder, which
# knows nothing of it. At 30 requests/s and a few milliseconds per request, that is usually none
# and rarely more than one request. This is the one cost the design cannot avoid.
VIP_MOVE_BUDGET = 3


def test_rolling_restart_of_every_tier_costs_no_request(failover_stack: Stack, load):
    """Budget: 0 failed requests while the web and app nodes restart in turn; at most
    VIP_MOVE_BUDGET (requests open on the VIP holder as the VIP moves) while the LBs restart;
    one VIP holder afterwards; no acknowledged message lost."""
    phases: dict[str, tuple[float, float]] = {}
    with load(duration=150, rate=30) as client:
        timeline = Timeline(client)
        timeline.wait_until_load_time(2)
        for tier in ("lb", "web", "app"):
            began = timeline.mark(f"rolling restart of the {tier} tier begins")
            restart = subprocess.run(
                [str(ROOT / "scripts" / "rolling-restart.sh"), tier],
                capture_output=True,
                text=True,
                timeout=60,
            )
            print(restart.stdout, restart.stderr)
            assert restart.returncode == 0
            phases[tier] = (began, timeline.mark(f"rolling restart of the {tier} tier done"))
        timeline.wait_until_load_time(client.now() + 2)
        client.stop()
    print(timeline.report("scenario 8: rolling restart"))

    def failed_during(tier: str) -> list:
        began, done = phases[tier]
        return [o for o in client.failed() if began <= o.start <= done]

    print(f"failed while the LBs restarted: {len(failed_during('lb'))}")
    assert len(failed_during("lb")) <= VIP_MOVE_BUDGET
    assert failed_during("web") == []
    assert failed_during("app") == []
    assert len(client.failed()) == len(failed_during("lb"))
    assert len(vip_holders(failover_stack)) == 1
    assert_no_message_lost_or_doubled(failover_stack, client)
