"""Monitoring: Prometheus scrapes every node of every tier, and each tier's key series move when
requests flow. Asked through Prometheus' own query API (published on 127.0.0.1), as the live stack
page and the load-test reports ask it."""

import re
import uuid

import pytest
import requests

from tests.stack import Stack, db_primary, vip_holders, wait_until

# Every scrape job of monitor/prometheus.yml and the nodes it must see.
EXPECTED_TARGETS = {
    "prometheus": {"prometheus"},
    "lb": {"lb1", "lb2"},
    "web": {"web1", "web2"},
    "upstreams": {"web1", "web2"},
    "app": {"app1", "app2"},
    "postgres": {"db1", "db2", "db3"},
    "patroni": {"db1", "db2", "db3"},
    "etcd": {"etcd1", "etcd2", "etcd3"},
}
# Each web node counts its attempts to each app node (nginx/lua/upstream_metrics.lua).
WEB_NODES = ("web1", "web2")
APP_NODES = ("app1", "app2")
PAIRS = {(web, app) for web in WEB_NODES for app in APP_NODES}


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

    # A web node's series for an app node exist from its first attempt there (nginx counts only
    # what it sends): a few requests through lb1 give every (web, app) pair its series, so the
    # tests' bursts move series that Prometheus already has (a rate needs two samples).
    def every_pair_counted() -> bool:
        for _ in range(4):
            stack.get("/api/whoami")
        series = query(stack, "fourtier_upstream_attempts_total")
        return {(r["metric"]["node"], r["metric"]["app"]) for r in series} >= PAIRS

    wait_until(every_pair_counted, timeout=30, what="every web node to count both app nodes")
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
        "web1 -> app attempts": 'sum(fourtier_upstream_attempts_total{node="web1"})',
        "web2 -> app attempts": 'sum(fourtier_upstream_attempts_total{node="web2"})',
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
    # needs two of them). The rules are evaluated every 2 s, after the scrape that saw the burst:
    # a PostgreSQL exporter's counters, scraped every 5 s, may have moved before their rate has.
    busy: set[tuple[str, str]] = set()
    wanted = {("lb", "lb1"), ("web", "web1"), ("web", "web2"), ("app", "app1")}

    def rates_drawn() -> bool:
        rates = query(monitored, "max_over_time(node:requests:rate10s[1m]) > 0")
        busy.clear()
        busy.update((r["metric"]["tier"], r["metric"]["node"]) for r in rates)
        return wanted <= busy and any(tier == "db" for tier, _ in busy)

    wait_until(rates_drawn, timeout=10, what="node:requests:rate10s for lb1, web1, web2, app1, db")
    p95 = values_by_node(monitored, "max_over_time(node:latency_seconds:p95_30s[1m])")
    assert set(p95) == {"app1", "app2"} and all(0 < v < 10 for v in p95.values()), p95
    # The arrows: the rules are evaluated every 2 s, after the scrape that saw the burst.
    flows: set[tuple[str, str]] = set()

    def arrows_drawn() -> bool:
        found = query(monitored, "max_over_time(flow:requests:rate10s[1m]) > 0")
        flows.clear()
        flows.update((r["metric"]["from"], r["metric"]["to"]) for r in found)
        return ("lb1", "web1") in flows and bool({("web1", "app1"), ("web1", "app2")} & flows)

    wait_until(arrows_drawn, timeout=10, what="the lb -> web and web -> app arrows")


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


# --- The web tier's own view of the app nodes (nginx/lua/upstream_metrics.lua) --------------------


def attempts_in_prometheus(stack: Stack) -> dict[tuple[str, str, str], float]:
    """(web node, app node, outcome) -> attempts, as Prometheus last scraped them."""
    result = query(stack, "sum by (node, app, outcome) (fourtier_upstream_attempts_total)")
    return {
        (r["metric"]["node"], r["metric"]["app"], r["metric"]["outcome"]): float(r["value"][1])
        for r in result
    }


# One line of a web node's /metrics: fourtier_upstream_attempts_total{app="app1",...} 42
ATTEMPTS_LINE = re.compile(
    r'^fourtier_upstream_attempts_total\{app="([^"]+)",addr="[^"]+",status="[^"]+",'
    r'outcome="([a-z]+)"\} ([0-9.e+]+)$'
)


def attempts_now(stack: Stack) -> dict[tuple[str, str, str], float]:
    """The same, asked of each web node's /metrics this very moment (no scrape in between)."""
    counts: dict[tuple[str, str, str], float] = {}
    for web in WEB_NODES:
        result = stack.exec(web, "curl", "-fsS", "http://127.0.0.1:8081/metrics")
        assert result.returncode == 0, result.stderr
        for line in result.stdout.splitlines():
            match = ATTEMPTS_LINE.match(line)
            if match:
                key = (web, match[1], match[2])
                counts[key] = counts.get(key, 0.0) + float(match[3])
    return counts


def test_web_nodes_count_attempts_per_app_node_under_a_burst(monitored: Stack) -> None:
    """Both web nodes count their attempts to both app nodes, named (app1, app2: learned from
    X-App, not addresses), with a latency histogram, and every figure moves under a burst."""
    answered = 'sum by (node, app) (fourtier_upstream_attempts_total{outcome="answered"})'
    timed = "sum by (node, app) (fourtier_upstream_response_seconds_count)"

    def by_pair(promql: str) -> dict[tuple[str, str], float]:
        return {
            (r["metric"]["node"], r["metric"]["app"]): float(r["value"][1])
            for r in query(monitored, promql)
        }

    pairs = PAIRS
    before_answered, before_timed = by_pair(answered), by_pair(timed)
    # A bounded burst through lb1: 40 requests, round robin over both web nodes, and from each
    # web node round robin over both app nodes: about 10 per (web, app) pair.
    for _ in range(40):
        assert monitored.get("/api/whoami").status_code == 200

    def all_moved() -> bool:
        now_answered, now_timed = by_pair(answered), by_pair(timed)
        return all(
            now_answered.get(p, 0) > before_answered.get(p, 0)
            and now_timed.get(p, 0) > before_timed.get(p, 0)
            for p in pairs
        )

    wait_until(all_moved, timeout=20, what="attempts and times of every (web, app) pair to grow")
    # Named app nodes only: every address was named from the X-App of an answer.
    assert set(by_pair(answered)) == pairs, by_pair(answered)
    # The recording rules of each pair (evaluated every 2 s, after the scrape): the arrows, a
    # p95 between 0 and 5 s, and the errors (0 or more: an earlier test may have made some).
    checks = {
        "flow:requests:rate10s": lambda v: v > 0,
        "flow:latency_seconds:p95_30s": lambda v: 0 < v < 5,
        "flow:errors:rate10s": lambda v: v >= 0,
    }
    for rule, holds in checks.items():
        promql = f'max_over_time({rule}{{hop="web-app"}}[1m])'

        def every_pair(promql=promql, holds=holds) -> bool:
            found = {
                (r["metric"]["from"], r["metric"]["to"]): float(r["value"][1])
                for r in query(monitored, promql)
            }
            return set(found) == pairs and all(holds(v) for v in found.values())

        wait_until(every_pair, timeout=10, what=f"{promql} for every (web, app) pair")


def serves(stack: Stack, app: str) -> bool:
    """True once a few requests through lb1 reach `app` (nginx leaves a node that failed out of
    rotation for fail_timeout, 5 s, before trying it again)."""
    return any(stack.get("/api/whoami").headers.get("X-App") == app for _ in range(4))


def test_a_stopped_app_node_shows_as_failed_attempts_from_the_web_tier(monitored: Stack) -> None:
    """app1 stopped: 20 requests through lb1 all succeed (nginx retries each failed attempt on
    app2), and the web nodes' own figures show it: failed attempts to app1, no new answer from
    app1, app2's answers growing on both web nodes; Prometheus has the same figures, and the
    web -> app1 arrow has errors. The app's own metrics could show none of the failed attempts:
    they never reached an app."""
    before = attempts_now(monitored)
    monitored.docker_compose("stop", "app1")
    try:
        for _ in range(20):
            response = monitored.get("/api/whoami")
            assert response.status_code == 200, response.text
            assert response.headers["X-App"] == "app2"
        after = attempts_now(monitored)
        grown = {k: after.get(k, 0) - before.get(k, 0) for k in sorted(after)}
        print("attempts while app1 was stopped:", grown)
        assert sum(grown.get((web, "app1", "failed"), 0) for web in WEB_NODES) >= 1, grown
        for web in WEB_NODES:
            assert grown.get((web, "app1", "answered"), 0) == 0, f"{web}: an answer from app1"
            assert grown.get((web, "app2", "answered"), 0) > 0, f"{web}: no answer from app2"
        # Prometheus scrapes the same figures, and the rule of the web -> app1 arrows shows errors.
        wanted = {k: v for k, v in after.items() if k[1] in APP_NODES}
        wait_until(
            lambda: {k: v for k, v in attempts_in_prometheus(monitored).items() if k in wanted}
            == wanted,
            timeout=10,
            what="Prometheus to scrape the web nodes' figures",
        )
        wait_until(
            lambda: bool(query(monitored, 'max_over_time(flow:errors:rate10s{to="app1"}[1m]) > 0')),
            timeout=10,
            what="errors on the web -> app1 arrows (flow:errors:rate10s)",
        )
    finally:
        monitored.docker_compose("up", "--detach", "--wait", "--no-recreate", "app1")
        wait_until(lambda: serves(monitored, "app1"), timeout=15, what="app1 to serve again")
