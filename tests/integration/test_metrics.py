"""Monitoring: Prometheus scrapes every node of every tier, and each tier's key series move when
requests flow. Asked through Prometheus' own query API (published on 127.0.0.1), as the live stack
page and the load-test reports ask it."""

import uuid

import pytest
import requests

from tests.stack import Stack, db_primary, vip_holders, wait_until

# Every scrape job of monitor/prometheus.yml and the nodes it must see.
EXPECTED_TARGETS = {
    "prometheus": {"prometheus"},
    "lb": {"lb1", "lb2"},
    "web": {"web1", "web2"},
    "app": {"app1", "app2"},
    "postgres": {"db1", "db2", "db3"},
    "patroni": {"db1", "db2", "db3"},
    "etcd": {"etcd1", "etcd2", "etcd3"},
}


def query(stack: Stack, promql: str) -> list[dict]:
    """An instant query: the list of {"metric": labels, "value": [time, "value"]}."""
    response = requests.get(
        f"{stack.prometheus_url}/api/v1/query", params={"query": promql}, timeout=10
    )
    response.raise_for_status()
    return response.json()["data"]["result"]


def values_by_node(stack: Stack, promql: str) -> dict[str, float]:
    return {r["metric"].get("node", ""): float(r["value"][1]) for r in query(stack, promql)}


def targets_up(stack: Stack) -> dict[str, set[str]]:
    """Job -> the nodes whose last scrape succeeded."""
    response = requests.get(f"{stack.prometheus_url}/api/v1/targets", timeout=10)
    up: dict[str, set[str]] = {}
    for target in response.json()["data"]["activeTargets"]:
        if target["health"] == "up":
            labels = target["labels"]
            up.setdefault(labels["job"], set()).add(labels.get("node", ""))
    return up


@pytest.fixture(scope="module")
def monitored(stack: Stack) -> Stack:
    """The stack once every target is scraped successfully and every exporter reaches its node
    (a freshly started stack needs a few scrapes)."""

    def all_up() -> bool:
        try:
            up = targets_up(stack)
        except requests.RequestException:
            return False  # Prometheus itself is still starting
        return (
            all(up.get(job, set()) >= nodes for job, nodes in EXPECTED_TARGETS.items())
            and "vip" in up
            and sum(values_by_node(stack, "nginx_up").values()) == 2
            and sum(values_by_node(stack, "pg_up").values()) == 3
        )

    wait_until(all_up, timeout=90, what="every Prometheus target up")
    return stack


def test_every_node_of_every_tier_is_scraped(monitored: Stack) -> None:
    up = targets_up(monitored)
    for job, nodes in EXPECTED_TARGETS.items():
        assert up.get(job, set()) >= nodes, f"job {job}: up {up.get(job)}, expected {nodes}"
    # The exporters reach their nodes (a dead node would be nginx_up / pg_up 0, with `up` 1).
    assert values_by_node(monitored, "nginx_up") == {"web1": 1.0, "web2": 1.0}
    assert values_by_node(monitored, "pg_up") == {"db1": 1.0, "db2": 1.0, "db3": 1.0}


def counters(stack: Stack) -> dict[str, float]:
    """One counter per tier and node that a burst through lb1 must move."""
    primary = db_primary(stack)
    sums = {
        "lb1 requests": 'sum(haproxy_frontend_http_requests_total{node="lb1",proxy="http"})',
        "lb1 -> web1": 'sum(haproxy_server_http_responses_total{node="lb1",server="web1"})',
        "lb1 -> web2": 'sum(haproxy_server_http_responses_total{node="lb1",server="web2"})',
        "web1 requests": 'sum(nginx_http_requests_total{node="web1"})',
        "web2 requests": 'sum(nginx_http_requests_total{node="web2"})',
        "app1 requests": 'sum(guestbook_requests_total{node="app1"})',
        "app2 requests": 'sum(guestbook_requests_total{node="app2"})',
        "app1 latency": 'sum(guestbook_request_duration_seconds_count{node="app1"})',
        "app2 latency": 'sum(guestbook_request_duration_seconds_count{node="app2"})',
        f"{primary} commits": (
            f'sum(pg_stat_database_xact_commit{{node="{primary}",datname="guestbook"}})'
        ),
        f"{primary} WAL": f'sum(patroni_xlog_location{{node="{primary}"}})',
    }
    found = {}
    for name, promql in sums.items():
        result = query(stack, promql)
        found[name] = float(result[0]["value"][1]) if result else float("nan")
    return found


def test_each_tier_key_series_increase_under_a_burst(monitored: Stack) -> None:
    before = counters(monitored)
    assert all(v == v for v in before.values()), f"a series is missing: {before}"
    # A bounded burst through lb1: 40 reads and 10 writes, each answered.
    run = uuid.uuid4().hex[:8]
    for i in range(40):
        assert monitored.get("/api/messages?limit=5").status_code == 200
        if i % 4 == 0:
            body = {"author": "metrics", "text": f"burst {run} {i}"}
            assert monitored.post("/api/messages", json=body).status_code == 201

    still = dict(before)

    def all_moved() -> bool:
        after = counters(monitored)
        still.clear()
        still.update({name: v for name, v in after.items() if not v > before[name]})
        return not still

    wait_until(all_moved, timeout=20, what="every tier's counters to increase after the burst")
    assert not still, f"did not move: {still}"
    # The recording rules the page and the reports read have a figure for every node that served
    # (at some point in the last minute: on a busy machine a scrape may fail, and a 10 s rate
    # needs two of them).
    rates = query(monitored, "max_over_time(node:requests:rate10s[1m]) > 0")
    busy = {(r["metric"]["tier"], r["metric"]["node"]) for r in rates}
    for node in (("lb", "lb1"), ("web", "web1"), ("web", "web2"), ("app", "app1")):
        assert node in busy, f"no node:requests:rate10s for {node}: {busy}"
    assert any(tier == "db" for tier, _ in busy), busy
    p95 = values_by_node(monitored, "max_over_time(node:latency_seconds:p95_30s[1m])")
    assert set(p95) == {"app1", "app2"} and all(0 < v < 10 for v in p95.values()), p95
    flows = {
        (r["metric"]["from"], r["metric"]["to"])
        for r in query(monitored, "max_over_time(flow:requests:rate10s[1m]) > 0")
    }
    assert ("lb1", "web1") in flows, flows
    assert {("web1", "app1"), ("web1", "app2")} & flows, flows


def test_the_vip_holder_and_the_db_primary_are_visible(monitored: Stack) -> None:
    holder = vip_holders(monitored)
    assert len(holder) == 1
    wait_until(
        lambda: [r["metric"]["holder"] for r in query(monitored, "fourtier_vip_holder")] == holder,
        timeout=10,
        what=f"fourtier_vip_holder to name {holder}",
    )
    primary = db_primary(monitored)
    roles = {
        r["metric"]["node"]: r["metric"]["role"] for r in query(monitored, "node:db_role:info")
    }
    assert roles.get(primary) == "primary", roles
    assert sorted(roles.values()) == ["primary", "standby", "standby"], roles
    lag = values_by_node(monitored, "node:replication_lag:bytes")
    assert set(lag) == {"db1", "db2", "db3"} - {primary}, lag
    assert all(v >= 0 for v in lag.values()), lag
    # The app's pool and breaker are reported by every app node.
    capacity = values_by_node(monitored, "guestbook_db_pool_capacity")
    assert capacity == {"app1": 12.0, "app2": 12.0}, capacity
    assert values_by_node(monitored, "guestbook_db_breaker_down") == {"app1": 0.0, "app2": 0.0}
