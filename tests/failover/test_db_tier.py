"""Scenarios 7 and 9-14: the database tier, a Patroni cluster of three PostgreSQL nodes (one
primary, two synchronous standbys in quorum mode) whose leader is elected in a three-member etcd.

The app reaches the primary by libpq's multi-host connection (host=db1,db2,db3,
target_session_attrs=read-write). While there is no primary, it answers a JSON 503 at once (a
breaker stops it trying for 0.5 s after a failure). Every commit the app acknowledged was confirmed
by a standby too, and Patroni promotes only a standby that has every such commit: so no scenario
may lose an acknowledged message. Timings come from patroni.yml: ttl 20 s, loop_wait 4 s,
retry_timeout 8 s.
"""

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from tests.failover.conftest import Timeline, assert_no_message_lost_or_doubled, run_for
from tests.failover.load import LoadClient
from tests.stack import (
    DB_NODES,
    ETCD_NODES,
    ROOT,
    Stack,
    accepts_writes,
    db_cluster_healthy,
    db_primary,
    patroni_members,
    promoted_at,
    psql,
    start_and_wait_healthy,
    wait_until,
)


@contextmanager
def watch_writers(stack: Stack, client: LoadClient, timeline: Timeline) -> Iterator[list]:
    """Poll every db node's PostgreSQL, all three at once, every 0.3 s while the block runs: which
    ones accept writes (not in recovery)? Yields the list of rounds, (load time, set of writers);
    each change of the writers is added to the timeline ("db3 accepts writes")."""
    rounds: list[tuple[float, frozenset[str]]] = []
    stop = threading.Event()

    def poll() -> None:
        with ThreadPoolExecutor(max_workers=len(DB_NODES)) as pool:
            while not stop.wait(0.3):
                at = client.now()
                answers = pool.map(lambda node: (node, accepts_writes(stack, node)), DB_NODES)
                writers = frozenset(node for node, writes in answers if writes)
                if not rounds or rounds[-1][1] != writers:
                    who = ", ".join(sorted(writers)) or "no node"
                    timeline.add(at, f"writers: {who} {'accept' if writers else 'accepts'} writes")
                rounds.append((at, writers))

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield rounds
    finally:
        stop.set()
        thread.join(timeout=10)


def assert_failures_are_json_503(client: LoadClient) -> None:
    """While there is no primary, a request that needs the database gets a JSON 503: never a 500,
    an HTML page or a connection error."""
    for outcome in client.failed():
        assert outcome.status == 503, outcome
        assert outcome.content_type.startswith("application/json"), outcome


# Once a write is acknowledged again after an outage, how long failures may go on: each app worker
# process finds the primary on its own. One whose breaker opened just before needs up to 0.5 s
# more, and one whose connection attempt began while no node was a primary (each dead node's name
# costs it 1 s of unanswered DNS) fails after that first success and opens its breaker for 0.5 s.
FAILURES_END_WITHIN = 3.0


def assert_failures_end_after(client: LoadClient, back_at: float) -> None:
    """No request that started FAILURES_END_WITHIN s after `back_at` (the first acknowledged
    write) failed; those that failed in between are printed, the figure behind the bound."""
    late = client.failed(after=back_at + 0.5)
    print(f"failures from 0.5 s to {FAILURES_END_WITHIN:.0f} s after writes came back: {len(late)}")
    assert client.failed(after=back_at + FAILURES_END_WITHIN) == [], late


def wait_for_writes_after(stack: Stack, timeline: Timeline, at: float, timeout: float) -> float:
    """Wait until a write is acknowledged again after the failures that followed load time `at`;
    add it to the timeline with the node that is primary then; return its load time."""
    client = timeline.client
    wait_until(
        lambda: client.first_success_after(at) is not None,
        timeout=timeout,
        what=f"a write acknowledged after the event at {at:.1f}s",
    )
    back_at = client.first_success_after(at)
    timeline.add(back_at, f"first write acknowledged again (primary: {db_primary(stack)})")
    return back_at


def standby_of(stack: Stack) -> tuple[str, str]:
    """The current primary and one of its standbys."""
    primary = db_primary(stack)
    assert primary, "no database primary"
    return primary, next(node for node in DB_NODES if node != primary)


def test_db_primary_killed_new_primary_within_25s_and_it_rejoins_as_standby(
    failover_stack: Stack, load
):
    """Scenarios 9 and 10: `docker kill` the primary under 40 req/s; start it again once a new
    primary accepts writes.
    Budget: a new primary is promoted within 25 s of the kill: its leader key expires 16-20 s
    after it (ttl 20 s minus up to loop_wait 4 s), the standbys' race waits ~1 s for the dead
    node's REST API (its name gets no DNS answer: the resolver's 1 s timeout), the promotion takes
    ~1 s (the WAL receiver is retrying the same name); docs/database.md has one run's log lines.
    A quiet machine's worst case is ~22 s. The promotion's time is its new timeline's, from
    Patroni's history: a poll would see it only at its next round, and on a busy machine each
    round of `docker exec` takes a second or more. Clients' writes resume at most 2 s after the
    poll sees the new primary accept writes (each app worker: its breaker's 0.5 s, then 1 s of
    unanswered DNS for the dead node's name).
    Meanwhile every failure is a JSON 503. 0 acknowledged messages lost, 0 doubled. The old
    primary rejoins as a synchronous standby (pg_rewind if its WAL diverged), and at every instant
    at most one node accepts writes (all three polled every 0.3 s)."""
    old = db_primary(failover_stack)
    with load(duration=45) as client:
        timeline = Timeline(client)
        with watch_writers(failover_stack, client, timeline) as rounds:
            timeline.wait_until_load_time(3)
            killed_at = timeline.mark(f"docker kill {old} (the primary)")
            killed_wall = time.time()  # the same moment, on the clock Patroni's history uses
            failover_stack.docker_compose("kill", old)
            resumed_at = wait_for_writes_after(failover_stack, timeline, killed_at, timeout=35)
            new = db_primary(failover_stack)
            # The new leader adds its promotion to the cluster's history on its next loop.
            wait_until(
                lambda: (promoted_at(failover_stack, new) or 0) > killed_wall,
                timeout=3 * 4,  # loop_wait 4 s
                what=f"Patroni's history to record {new}'s promotion",
            )
            promotion = promoted_at(failover_stack, new) - killed_wall
            timeline.add(killed_at + promotion, f"{new} promoted (Patroni's history)")
            timeline.mark(f"docker compose start {old}")
            start_and_wait_healthy(failover_stack, old)
            timeline.mark(f"{old} healthy")
            wait_until(
                lambda: db_cluster_healthy(failover_stack),
                timeout=60,
                what=f"{old} to stream from {new} as a synchronous standby",
            )
            timeline.mark(f"{old} is a quorum standby of {new}")
            run_for(client)
    print(timeline.report("scenario 9: kill the database primary, then bring it back"))
    seen_writing_at = next((at for at, who in rounds if at > killed_at and who - {old}), None)
    assert seen_writing_at is not None, (
        f"the writers' poll saw no new primary: {len(rounds)} polls, the last at "
        f"{rounds[-1][0] if rounds else None}s; {new} was primary by Patroni at {resumed_at:.1f}s"
    )
    writes_unavailable = resumed_at - killed_at
    failed_gets = len(client.failed("GET"))
    print(
        f"new primary {new} promoted {promotion:.1f}s after the kill (Patroni's history), seen "
        f"accepting writes by the poll {seen_writing_at - killed_at:.1f}s after it; clients' "
        f"writes unavailable for {writes_unavailable:.1f}s; {failed_gets} GETs failed meanwhile "
        f"(reads go to the primary too); {len(rounds)} polls of all three nodes"
    )

    assert new and new != old
    assert promotion <= 25.0
    assert resumed_at - seen_writing_at <= 2.5
    assert_failures_are_json_503(client)
    assert_failures_end_after(client, resumed_at)
    assert all(len(writers) <= 1 for _, writers in rounds), [r for r in rounds if len(r[1]) > 1]
    assert not accepts_writes(failover_stack, old)
    assert_no_message_lost_or_doubled(failover_stack, client)


@contextmanager
def reads_from_standbys(stack: Stack) -> Iterator[None]:
    """app1 and app2 recreated with DB_READ_TARGET_SESSION_ATTRS=prefer-standby for the block (GETs
    on a pool of their own, to a standby), then recreated as the stack defines them."""

    def recreate_apps(read_target: str) -> None:
        env = {**os.environ, "DB_READ_TARGET_SESSION_ATTRS": read_target}
        command = ["docker", "compose", "up", "--detach", "--wait", "--no-deps", "--force-recreate"]
        subprocess.run(
            [*command, "app1", "app2"], cwd=ROOT, env=env, check=True, capture_output=True
        )
        # nginx resolved app1 and app2 when it loaded its config; a recreated container may have
        # another address. A reload resolves them again (and drops no connection).
        for web in ("web1", "web2"):
            assert stack.exec(web, "nginx", "-s", "reload").returncode == 0
        wait_until(lambda: stack.get("/api/readyz").ok, 30, "the app ready again through the LB")

    recreate_apps("prefer-standby")
    try:
        yield
    finally:
        recreate_apps("")


def app_connections(stack: Stack, node: str) -> int:
    """How many connections the app nodes hold open to `node`'s PostgreSQL (asked as the app's
    role, which sees its own sessions; psql's own is named psql)."""
    sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'app%'"
    return int(psql(stack, node, sql, user="app").stdout.strip() or 0)


def test_db_primary_killed_with_reads_from_standbys_costs_no_read(failover_stack: Stack, load):
    """Scenario 15: as scenario 9, with the app's reads sent to the standbys (a second pool,
    DB_READ_TARGET_SESSION_ATTRS=prefer-standby): `docker kill` the primary under 40 req/s.
    Budget: 0 failed GETs (a standby keeps answering while there is no primary); writes as in
    scenario 9: JSON 503s until a new primary accepts them, back within 27.5 s of the kill; 0
    acknowledged messages lost or doubled. Before the kill, the standbys hold the reads' pooled
    connections (pg_stat_activity), so the reads really are served by them."""
    with reads_from_standbys(failover_stack):
        old = db_primary(failover_stack)
        with load(duration=35) as client:
            timeline = Timeline(client)
            timeline.wait_until_load_time(3)
            on_standbys = {n: app_connections(failover_stack, n) for n in DB_NODES if n != old}
            timeline.mark(f"app connections on the standbys: {on_standbys}")
            killed_at = timeline.mark(f"docker kill {old} (the primary)")
            failover_stack.docker_compose("kill", old)
            resumed_at = wait_for_writes_after(failover_stack, timeline, killed_at, timeout=35)
            start_and_wait_healthy(failover_stack, old)
            timeline.mark(f"{old} started again")
            wait_until(lambda: db_cluster_healthy(failover_stack), 60, f"{old} a standby again")
            timeline.mark(f"{old} is a quorum standby")
            run_for(client)
    print(timeline.report("scenario 15: kill the primary while reads go to the standbys"))
    gets = [o for o in client.results() if o.method == "GET"]
    print(
        f"GETs: {len(gets)} sent, {len(client.failed('GET'))} failed; POSTs: "
        f"{len(client.failed('POST'))} failed; writes unavailable {resumed_at - killed_at:.1f}s"
    )

    assert sum(on_standbys.values()) > 0, on_standbys
    assert client.failed("GET") == []
    assert resumed_at - killed_at <= 27.5
    assert_failures_are_json_503(client)
    assert_no_message_lost_or_doubled(failover_stack, client)


def test_db_switchover_under_load_pauses_writes_at_most_5s(failover_stack: Stack, load):
    """Scenario 11: a planned switchover (`patronictl switchover`) to a standby, under 40 req/s.
    The client retries a failed POST with the same Idempotency-Key (every 0.5 s, up to 10 times).
    Budget: writes unavailable for at most 5 s; every POST in the end acknowledged, none lost or
    doubled; every failed attempt a JSON 503; at most one node accepts writes at any instant."""
    old, candidate = standby_of(failover_stack)
    with load(duration=15, post_retries=10) as client:
        timeline = Timeline(client)
        with watch_writers(failover_stack, client, timeline) as rounds:
            timeline.wait_until_load_time(3)
            timeline.mark(f"patronictl switchover {old} -> {candidate}")
            switchover = failover_stack.exec(
                old, "patronictl", "-c", "/run/patroni", "switchover", "--leader", old,
                "--candidate", candidate, "--force",
            )  # fmt: skip
            timeline.mark("patronictl returned")
            run_for(client)
    print(timeline.report(f"scenario 11: switchover {old} -> {candidate}"))
    print(switchover.stdout[-600:], switchover.stderr[-600:])
    gap = client.longest_gap("POST")
    print(f"writes unavailable for {gap:.1f}s (longest time without an acknowledged POST)")

    assert switchover.returncode == 0
    assert db_primary(failover_stack) == candidate
    assert gap <= 5.0
    assert client.failed("POST", final=True) == []
    assert_failures_are_json_503(client)
    assert all(len(writers) <= 1 for _, writers in rounds)
    assert_no_message_lost_or_doubled(failover_stack, client)


def test_db_standby_killed_costs_no_request(failover_stack: Stack, load):
    """Scenario 12: `docker kill` a standby under 40 req/s, start it again 6 s later.
    Budget: 0 failed requests, and writes keep being acknowledged (no POST gap over 1 s): in
    quorum mode a commit waits for any one of the two standbys, so the other one confirms it."""
    primary, standby = standby_of(failover_stack)
    with load(duration=16) as client:
        timeline = Timeline(client)
        timeline.stop_then_start(failover_stack, standby, "kill", at=3, start_at=9)
        wait_until(lambda: db_cluster_healthy(failover_stack), 60, f"{standby} streaming again")
        timeline.mark(f"{standby} is a quorum standby again")
        run_for(client)
    print(timeline.report(f"scenario 12: kill the standby {standby}"))

    assert client.failed() == []
    assert client.longest_gap("POST") < 1.0
    assert db_primary(failover_stack) == primary
    assert_no_message_lost_or_doubled(failover_stack, client)


def etcd_leader(stack: Stack) -> str:
    """The etcd member that is the Raft leader now (the one whose loss costs an election)."""
    endpoints = ",".join(f"{node}:2379" for node in ETCD_NODES)
    result = stack.exec(
        "etcd1", "etcdctl", f"--endpoints={endpoints}", "endpoint", "status", "--write-out=json"
    )
    assert result.returncode == 0, result.stderr
    statuses = json.loads(result.stdout)
    leader_id = statuses[0]["Status"]["leader"]
    [leader] = [
        s["Endpoint"].split(":")[0]
        for s in statuses
        if s["Status"]["header"]["member_id"] == leader_id
    ]
    return leader


def test_db_etcd_leader_killed_changes_nothing(failover_stack: Stack, load):
    """Scenario 13: `docker kill` the etcd member that leads the Raft group, under 40 req/s, start
    it again 7 s later. The other two elect a new leader (election timeout 2.5 s) and keep the
    quorum; Patroni retries etcd for up to retry_timeout (8 s). Budget: 0 failed requests, the
    primary does not change."""
    primary = db_primary(failover_stack)
    leader = etcd_leader(failover_stack)
    with load(duration=15) as client:
        timeline = Timeline(client)
        timeline.stop_then_start(failover_stack, leader, "kill", at=3, start_at=10)
        run_for(client)
    print(timeline.report(f"scenario 13: kill the etcd leader {leader}"))

    assert client.failed() == []
    assert db_primary(failover_stack) == primary
    assert_no_message_lost_or_doubled(failover_stack, client)


def test_db_tier_restart_recovers_by_itself(failover_stack: Stack, load):
    """Scenario 14: `docker compose restart db1 db2 db3` under 40 req/s. Each Patroni stops its
    PostgreSQL cleanly (the primary last releases its leader key); on start the most advanced node
    wins the leader race and the others follow it. Budget: every failure a JSON 503; service
    back within 30 s of the restart, and no failure from FAILURES_END_WITHIN after that; nothing
    acknowledged lost."""
    with load(duration=40) as client:
        timeline = Timeline(client)
        timeline.wait_until_load_time(3)
        restarted_at = timeline.mark("docker compose restart db1 db2 db3")
        failover_stack.docker_compose("restart", *DB_NODES)
        timeline.mark("docker compose restart returned")
        back_at = wait_for_writes_after(failover_stack, timeline, restarted_at, timeout=35)
        run_for(client)
    print(timeline.report("scenario 14: restart the whole database tier"))
    print(f"writes back {back_at - restarted_at:.1f}s after the restart began")

    assert_failures_are_json_503(client)
    assert back_at - restarted_at <= 30.0
    assert_failures_end_after(client, back_at)
    assert_no_message_lost_or_doubled(failover_stack, client)


def test_database_tier_stopped_gives_json_503s_then_no_errors(failover_stack: Stack, load):
    """Scenario 7: `docker compose stop db1 db2 db3` (the whole tier), start them 5 s later,
    under 40 req/s, with clients that wait up to 10 s for an answer.
    Budget: while it is down, every failure is a JSON 503 (no 500, no request left unanswered),
    nearly all of them at once: the breaker answers without trying for 0.5 s after a failure,
    and while the tier is down only one thread per app worker tries to connect, which costs it
    1 s of unanswered DNS per node (its own request's answer is slow). Once the first write is
    acknowledged again, the failures end as in scenario 9: each app worker finds the primary on
    its own, and one whose attempt began while the tier was still starting fails after that first
    success and opens its breaker (FAILURES_END_WITHIN). Every acknowledged message is still
    there."""
    with load(duration=30, timeout=10.0) as client:
        timeline = Timeline(client)
        timeline.wait_until_load_time(3)
        timeline.mark("docker compose stop db1 db2 db3")
        failover_stack.docker_compose("stop", *DB_NODES)
        stopped_at = timeline.mark("database tier stopped")
        timeline.wait_until_load_time(stopped_at + 5)
        timeline.mark("docker compose start db1 db2 db3")
        start_and_wait_healthy(failover_stack, *DB_NODES)
        healthy_at = timeline.mark("database tier healthy")
        back_at = wait_for_writes_after(failover_stack, timeline, stopped_at, timeout=20)
        run_for(client)
    print(timeline.report("scenario 7: stop and start the whole database tier"))
    failures = client.failed()
    slow = sorted(round(o.end - o.start, 1) for o in failures if o.end - o.start > 0.5)
    print(
        f"writes back {back_at - healthy_at:.1f}s after the tier was healthy; "
        f"{len(failures) - len(slow)} of {len(failures)} 503s answered within 0.5 s, "
        f"the others after {slow} s"
    )

    assert_failures_are_json_503(client)
    assert [o for o in failures if stopped_at < o.start < healthy_at], "the outage went unseen"
    assert len(slow) <= 0.1 * len(failures), "503s were not answered at once"
    assert_failures_end_after(client, back_at)
    assert_no_message_lost_or_doubled(failover_stack, client)


def test_members_agree_on_one_leader(failover_stack: Stack):
    """Not a failure: the healthy state every scenario starts from, as `make db-status` shows it."""
    members = patroni_members(failover_stack)
    print(json.dumps(members, indent=1))
    assert [m["Member"] for m in members if m["Role"] == "Leader"] == [db_primary(failover_stack)]
    assert sum(accepts_writes(failover_stack, node) for node in DB_NODES) == 1
