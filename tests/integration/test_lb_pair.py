"""The load-balancer pair: one virtual IP held by exactly one node, both nodes serving, and
stick tables shared between them (HAProxy `peers`)."""

import requests

from tests.stack import Stack, haproxy_command, vip_holders, wait_until


def test_exactly_one_lb_node_holds_the_virtual_ip(stack: Stack) -> None:
    holders = vip_holders(stack)
    assert len(holders) == 1, holders


def test_the_virtual_ip_is_the_entry_point(stack: Stack) -> None:
    response = requests.get(stack.vip_url + "/api/whoami", timeout=10)
    assert response.status_code == 200
    assert response.headers["X-LB"] == vip_holders(stack)[0]
    assert "fourtier" in requests.get(stack.vip_url + "/", verify=stack.ca, timeout=10).text


def test_each_lb_node_also_answers_on_its_own_published_port(stack: Stack) -> None:
    assert requests.get(stack.url + "/api/whoami", timeout=10).headers["X-LB"] == "lb1"
    assert requests.get(stack.lb2_url + "/api/whoami", timeout=10).headers["X-LB"] == "lb2"
    assert requests.get(stack.lb2_stats_url + "/healthz", timeout=10).status_code == 200


def test_stick_table_entries_are_shared_with_the_peer(stack: Stack) -> None:
    # Empty both tables, then send requests through lb2 only: the entry for our address must
    # appear in lb1's table too, and lb1 can only have learnt it from lb2.
    for lb in ("lb1", "lb2"):
        haproxy_command(stack, lb, "clear table http")
    assert "key=" not in haproxy_command(stack, "lb1", "show table http")
    for _ in range(3):
        requests.get(stack.lb2_url + "/api/healthz", timeout=10)
    lb2_entries = haproxy_command(stack, "lb2", "show table http")
    assert "key=" in lb2_entries, lb2_entries
    wait_until(
        lambda: "key=" in haproxy_command(stack, "lb1", "show table http"),
        timeout=10,
        what="lb2's stick-table entry to reach lb1 through peers",
    )
