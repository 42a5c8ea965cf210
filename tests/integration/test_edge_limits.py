"""Limits at the edge: per-client rate limits (static, API reads, API writes) answered with a JSON
429 and Retry-After, counted in the stick table both LB nodes share (so a limit holds on the other
node too), a cap on one client's open connections, and slow clients cut off.

The rate-limit floods come from inside web1 (on the lb_web network), a client address of their
own: the tests' usual address (the host's, on every other test's requests) never comes near a
limit, and the limits tested are the defaults of haproxy.cfg, as a `make up` stack has them."""

import collections
import re
import socket
import time

import pytest

from tests.stack import Stack, haproxy_command, wait_until

# haproxy.cfg's defaults (per client, per 10 s).
LIMITS = {"static": 3000, "api_reads": 1000, "api_writes": 600}
# The stick table's counters, by class: sc-inc-gpc(<index>,0) in haproxy.cfg.
GPC_INDEX = {"static": 0, "api_reads": 1, "api_writes": 2}


def lb_address(stack: Stack, lb: str) -> str:
    return f"{stack.vip.rsplit('.', 1)[0]}.{ {'lb1': 11, 'lb2': 12}[lb] }"


def client_address(stack: Stack) -> str:
    """web1's address on the LB network (lb_web), the source address the LBs see and count. web1
    has one address per network it is on, and `hostname -i` lists them in an order that changes
    from one start of the stack to the next: the first one is not always this one. (Taking the
    first made the test fail at random: the LBs counted one address, the test read another.)"""
    prefix = stack.vip.rsplit(".", 1)[0] + "."
    addresses = stack.exec("web1", "hostname", "-i").stdout.split()
    on_lb_network = [address for address in addresses if address.startswith(prefix)]
    assert len(on_lb_network) == 1, addresses
    return on_lb_network[0]


def flood(stack: Stack, method: str, url: str, count: int) -> collections.Counter:
    """`count` requests from web1, 8 at a time on kept-alive connections (one curl, one config
    line per URL), well within the limits' 10 s window on a quiet machine: the status codes,
    counted."""
    script = (
        f"i=0; while [ $i -lt {count} ]; do i=$((i+1)); "
        f"echo 'url = \"{url}\"'; echo 'output = /dev/null'; done"
        f" | curl -s --parallel --parallel-max 8 -X {method} -w '%{{http_code}}\\n' -K -"
    )
    start = time.monotonic()
    result = stack.exec("web1", "sh", "-c", script)
    took = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    codes = collections.Counter(result.stdout.split())
    print(f"{count} x {method} {url}: {dict(codes)} in {took:.1f} s")
    # A limit per 10 s is crossed only by a flood about that fast (a few seconds here, unless
    # something else saturates the machine): the time goes with the counts into any failure.
    codes["seconds"] = round(took, 1)
    return codes


def rate_on(stack: Stack, lb: str, key: str, index: int) -> int:
    table = haproxy_command(stack, lb, f"show table http key {key}")
    match = re.search(rf"gpc{index}_rate\(10000\)=(\d+)", table)
    return int(match.group(1)) if match else 0


def peers_report(stack: Stack, key: str) -> str:
    """Each LB node's entry for `key` and its view of the `peers` link (`show peers`): what a
    failure of the sync needs, read at the moment it failed."""
    report = []
    for lb in ("lb1", "lb2"):
        report.append(f"--- {lb}: show table http key {key}")
        report.append(haproxy_command(stack, lb, f"show table http key {key}").strip())
        report.append(f"--- {lb}: show peers")
        report.append(haproxy_command(stack, lb, "show peers").strip())
    return "\n".join(report)


@pytest.fixture
def fresh_client(stack: Stack):
    """web1's address, with no entry in either LB's table before and after the test."""
    key = client_address(stack)
    for lb in ("lb1", "lb2"):
        haproxy_command(stack, lb, f"clear table http key {key}")
    yield key
    for lb in ("lb1", "lb2"):
        haproxy_command(stack, lb, f"clear table http key {key}")


@pytest.mark.parametrize(
    ("kind", "method", "path", "allowed_status"),
    [
        # Over plain HTTP a page is a redirect made by HAProxy itself: the cheapest to count.
        ("static", "GET", "/static/css/site.css", "301"),
        ("api_reads", "GET", "/api/healthz", "200"),
        # A write the app refuses at once (no such resource): still a write to the limit.
        ("api_writes", "DELETE", "/api/messages/1", "405"),
    ],
)
def test_a_client_over_a_limit_gets_json_429_and_the_limit_holds_on_the_other_lb(
    stack: Stack, fresh_client: str, kind: str, method: str, path: str, allowed_status: str
) -> None:
    limit = LIMITS[kind]
    # Through lb2: up to the limit the requests pass, every one after it is refused. Twice the
    # limit, not just over it: every request counts (refused ones too), and HAProxy's rate is a
    # sliding estimate, this period's count plus the last period's scaled by the share of 10 s
    # still to run. A flood that ends just before a period boundary is all "last period" a moment
    # later, and its estimate falls by a tenth of it each second: 20 over the limit would be back
    # under it 0.2 s later, perhaps before lb1 is asked. Twice the limit stays over it for 5 s.
    codes = flood(stack, method, f"http://{lb_address(stack, 'lb2')}:8080{path}", 2 * limit)
    assert codes[allowed_status] >= limit - 5, codes  # the rate is a sliding estimate
    assert codes["429"] >= 15, codes
    assert set(codes) == {allowed_status, "429", "seconds"}, codes
    # lb1 learns the count from lb2 through `peers`...
    index = GPC_INDEX[kind]
    try:
        wait_until(
            lambda: rate_on(stack, "lb1", fresh_client, index) > limit,
            timeout=10,
            what="lb2's count to reach lb1",
        )
    except pytest.fail.Exception:
        # What both nodes hold, and the state of the link between them, go into the failure.
        pytest.fail(f"lb2's count did not reach lb1 in 10 s:\n{peers_report(stack, fresh_client)}")
    # ... and refuses the same client at once, as after a VIP failover.
    result = stack.exec(
        "web1",
        "curl",
        "-s",
        "-i",
        "-X",
        method,
        f"http://{lb_address(stack, 'lb1')}:8080{path}",
    )
    head, _, body = result.stdout.replace("\r\n", "\n").partition("\n\n")
    assert head.startswith("HTTP/1.1 429"), head
    assert re.search(r"(?im)^retry-after: 10$", head), head
    assert re.search(r"(?im)^content-type: application/json", head), head
    assert re.search(r"(?im)^x-content-type-options: nosniff", head), head
    assert f"at most {limit} per 10 s" in body, body
    # The other classes are counted apart: this client may still use them.
    if kind != "api_reads":
        assert (
            flood(stack, "GET", f"http://{lb_address(stack, 'lb1')}:8080/api/healthz", 1)["200"]
            == 1
        )


def test_the_static_limit_is_the_highest_and_writes_the_lowest() -> None:
    assert LIMITS["static"] > LIMITS["api_reads"] > LIMITS["api_writes"]


def test_one_client_cannot_hold_more_than_its_share_of_connections(stack: Stack) -> None:
    """haproxy.cfg: LB_LIMIT_CONNECTIONS, 500 by default. The host opens 500 idle connections to
    lb1 (its own address: no other test runs meanwhile); the 501st is closed at once, without an
    answer; once they are gone, the client is served again."""
    address = (lb_address(stack, "lb1"), 8080)
    held = []
    try:
        for _ in range(500):
            held.append(socket.create_connection(address, timeout=5))
        table = haproxy_command(stack, "lb1", "show table http")
        counts = [int(c) for c in re.findall(r"conn_cur=(\d+)", table)]
        assert max(counts) >= 500, table
        # Refused: closed (often reset) at once, while connecting (HAProxy's reject can reach the
        # client before connect() returns), or before or after the request is sent.
        try:
            with socket.create_connection(address, timeout=5) as extra:
                extra.sendall(b"GET /api/healthz HTTP/1.1\r\nHost: lb\r\n\r\n")
                answer = extra.recv(100)
        except (ConnectionResetError, BrokenPipeError):
            answer = b""
        assert answer == b"", answer
    finally:
        for sock in held:
            sock.close()
    wait_until(
        lambda: stack.get("/api/healthz").status_code == 200,
        timeout=10,
        what="the client to be served again",
    )


def test_slow_clients_are_cut_off_while_others_are_served(stack: Stack) -> None:
    """Slowloris: 20 connections send their headers a line every half second and never finish.
    HAProxy's `timeout http-request 10s` bounds the whole header phase: each is closed about 10 s
    after it opened, however steadily it trickles, while a normal client is served at once."""
    address = ("127.0.0.1", int(stack.url.rsplit(":", 1)[1]))
    slow = [socket.create_connection(address, timeout=5) for _ in range(20)]
    opened = time.monotonic()
    for sock in slow:
        sock.sendall(b"GET /api/healthz HTTP/1.1\r\nHost: slow\r\n")
        sock.setblocking(False)
    start = time.monotonic()
    response = stack.get("/api/healthz")
    assert response.status_code == 200
    assert time.monotonic() - start < 2
    closed_after: dict[int, float] = {}
    answers: set[bytes] = set()
    while len(closed_after) < len(slow) and time.monotonic() - opened < 16:
        for i, sock in enumerate(slow):
            if i in closed_after:
                continue
            try:
                sock.sendall(b"X-Trickle: 1\r\n")
                data = sock.recv(4096)
                answers.add(data.split(b"\r\n", 1)[0])
                if data == b"" or data.startswith(b"HTTP/"):
                    closed_after[i] = time.monotonic() - opened
            except BlockingIOError:
                pass
            except OSError:
                closed_after[i] = time.monotonic() - opened
        time.sleep(0.5)
    for sock in slow:
        sock.close()
    assert len(closed_after) == len(slow), f"{len(slow) - len(closed_after)} slow clients left"
    assert min(closed_after.values()) >= 9 and max(closed_after.values()) <= 13, closed_after
    first, last = min(closed_after.values()), max(closed_after.values())
    print(f"slow clients cut off after {first:.1f}-{last:.1f} s, answered {answers}")
