"""Scenarios 5 and 6: reloading and losing a load balancer.

HAProxy runs in master-worker mode: a reload starts a new worker on the same listening sockets and
lets the old one finish its connections. keepalived moves the virtual IP to the other LB node when
the holder's VRRP announcements stop (every 0.5 s; declared dead after ~1.8 s).
"""

from tests.failover.conftest import Timeline, assert_no_message_lost_or_doubled, run_for
from tests.stack import Stack, start_and_wait_healthy, vip_holders, wait_until


def master_cli(stack: Stack, lb: str, command: str) -> str:
    # As the haproxy user, who owns the socket (see haproxy_command in tests/stack.py).
    result = stack.exec(
        lb,
        "sh",
        "-c",
        f"echo '{command}' | socat stdio /var/run/haproxy/master.sock",
        user="haproxy",
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_reloading_haproxy_under_load_costs_no_request(failover_stack: Stack, load):
    """Scenario 5: `reload` on the master CLI of the VIP holder, twice, under 40 req/s.
    Budget: 0 failed requests. The reload is checked: the worker's pid changes."""
    lb = vip_holders(failover_stack)[0]
    workers_before = master_cli(failover_stack, lb, "show proc")
    with load(duration=12) as client:
        timeline = Timeline(client)
        for at in (3, 7):
            timeline.wait_until_load_time(at)
            timeline.mark(f"reload HAProxy on {lb}")
            master_cli(failover_stack, lb, "reload")
        run_for(client)
    workers_after = master_cli(failover_stack, lb, "show proc")
    print(timeline.report("scenario 5: reload HAProxy"))
    print(f"before:\n{workers_before}\nafter:\n{workers_after}")

    assert client.failed() == []
    assert workers_after != workers_before
    assert_no_message_lost_or_doubled(failover_stack, client)


def test_killing_the_vip_holder_moves_the_vip_within_3s(failover_stack: Stack, load):
    """Scenario 6: `docker kill` the LB node holding the VIP under 40 req/s. Budget: the VIP
    answers from the other node within 3 s of the kill; requests fail only inside that window;
    after the killed node returns, exactly one node holds the VIP.
    Both ends of the window are on the load client's clock. It opens when `docker kill` is sent
    and closes when the first answer from the other node arrives. The 3 s are counted from when
    `docker kill` returned, the signal delivered: the command itself takes 0.5 s here, up to a
    second on a busy machine, and the refusals start inside it (once HAProxy has died, the node's
    kernel refuses connections to the VIP until the container's network is gone)."""
    holder = vip_holders(failover_stack)
    assert len(holder) == 1, f"VIP holders before the test: {holder}"
    old, new = holder[0], {"lb1": "lb2", "lb2": "lb1"}[holder[0]]
    with load(duration=16) as client:
        timeline = Timeline(client)
        timeline.wait_until_load_time(3)
        killed_at = timeline.mark(f"docker kill {old} (VIP holder)")
        failover_stack.docker_compose("kill", old)
        killed_returned_at = timeline.mark(f"{old} killed (docker kill returned)")

        def first_answer_from_new() -> float | None:
            """When the first answer from `new` to a request sent after the kill arrived. Any
            request still in flight when one is seen arrives later: the first seen is the first."""
            ends = [o.end for o in client.results() if o.lb == new and o.start > killed_at]
            return min(ends, default=None)

        wait_until(
            lambda: first_answer_from_new() is not None,
            timeout=10,
            what=f"an answer through the VIP from {new}",
        )
        answered_at = first_answer_from_new()
        timeline.add(answered_at, f"first answer from {new}")
        timeline.wait_until_load_time(8)
        timeline.mark(f"docker compose start {old}")
        start_and_wait_healthy(failover_stack, old)
        timeline.mark(f"{old} healthy")
        run_for(client)
    print(timeline.report("scenario 6: kill the VIP holder"))
    took = answered_at - killed_returned_at
    print(
        f"VIP answered from {new} {took:.2f}s after `docker kill` returned "
        f"({answered_at - killed_at:.2f}s after it was sent)"
    )

    assert took <= 3.0
    late = [o for o in client.failed() if o.start > answered_at]
    assert late == [], f"{len(late)} requests failed after the VIP moved"
    # Exactly one holder, at every look over two seconds (VRRP announces every 0.5 s).
    for _ in range(5):
        assert len(vip_holders(failover_stack)) == 1
    assert vip_holders(failover_stack) == [new], "the returning node must not take the VIP back"
    assert_no_message_lost_or_doubled(failover_stack, client)
