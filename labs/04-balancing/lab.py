"""Lab 04: choose HAProxy's balancing algorithm for requests of uneven length.

The checker sends a mix through lb1: a slow request (a POST whose body arrives slowly, so it stays
open on its web node), then a fast one (a static file), and so on, six of each. While the six slow
ones are open it reads, on lb1's runtime API, how many each web node holds (`show stat`, scur);
then it completes them and reads the X-Web of their answers. With roundrobin, turns alternate
whatever the load: every slow request lands on the same node. An algorithm that looks at the
requests in progress spreads them.
"""

import json
import socket
from urllib.parse import urlsplit

from labs.lablib import Check, Lab, poll

TITLE = "Balancing: an algorithm for uneven requests"
TIER = "lb"
MINUTES = 30
SERVICES = ("lb1", "lb2")
SLOW = 6
BODY = json.dumps({"author": "lab04", "text": "a slow request"}).encode()


def start(lab: Lab) -> None:
    algos = {lb: backend_algo(lab, lb) for lb in ("lb1", "lb2")}
    print(f"   the web backend balances with: {algos}")


def backend_algo(lab: Lab, lb: str) -> str:
    for row in lab.stack.show_stat(lb):
        if row.get("pxname") == "web" and row.get("svname") == "BACKEND":
            return row.get("algo", "?")
    return "?"


def backend_in_progress(lab: Lab) -> int:
    """Requests in progress on the web nodes, as lb1 counts them (`show stat`, scur)."""
    return sum(int(row.get("scur") or 0) for row in lab.stack.web_servers("lb1").values())


def open_slow_request(lab: Lab) -> socket.socket:
    """A POST whose headers and first body byte are sent, the rest held back: HAProxy has chosen
    a web node and the request stays in progress there until the body is complete."""
    url = urlsplit(lab.stack.url)
    sock = socket.create_connection((url.hostname, url.port), timeout=10)
    head = (
        "POST /api/messages HTTP/1.1\r\nHost: lab04\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\nConnection: close\r\n\r\n"
    )
    sock.sendall(head.encode() + BODY[:1])
    return sock


def finish_slow_request(sock: socket.socket) -> tuple[str, str]:
    """Send the rest of the body; return (status, X-Web) of the answer."""
    try:
        sock.sendall(BODY[1:])
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError as error:
        return (type(error).__name__, "")
    finally:
        sock.close()
    lines = data.decode(errors="replace").split("\r\n")
    status = lines[0].split(" ")[1] if lines and " " in lines[0] else "no answer"
    web = next((ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith("x-web:")), "")
    return status, web


def check(lab: Lab, check: Check) -> None:
    algos = {lb: backend_algo(lab, lb) for lb in ("lb1", "lb2")}
    check.point(
        algos["lb1"] == algos["lb2"],
        f"lb1 and lb2 balance the web backend alike ({algos['lb1']}, runtime API `show stat`)",
        f"lb1 and lb2 balance differently: {algos}",
        "both LBs run the same haproxy.cfg: rebuild both (docker compose up -d --build lb1 lb2)",
    )

    slow, fast = [], []
    try:
        for n in range(1, SLOW + 1):
            slow.append(open_slow_request(lab))
            fast.append(lab.stack.get("/static/css/site.css"))
            # The fast request is answered; wait until HAProxy has closed it too (the runtime
            # API counts only the slow ones in progress), so the next choice sees the real load.
            poll(lambda n=n: backend_in_progress(lab) == n, timeout=3, interval=0.1)
        in_progress = {
            name: int(row.get("scur") or 0) for name, row in lab.stack.web_servers("lb1").items()
        }
    finally:
        finished = [finish_slow_request(sock) for sock in slow]
    check.note(f"slow requests in progress per web node, on lb1's runtime API: {in_progress}")
    landed = {web: sum(1 for _, w in finished if w == web) for web in ("web1", "web2")}
    check.note(f"where the slow requests were answered (X-Web): {landed}")

    check.point(
        all(a.status == 200 for a in fast) and all(status == "201" for status, _ in finished),
        "every request of the mix was answered (fast: 200, slow: 201)",
        "some requests of the mix failed: "
        f"{[a.status or a.error for a in fast]} {[status for status, _ in finished]}",
        "is every web node UP? `make lab-check` needs a healthy stack",
    )
    spread = max(landed.values()) - min(landed.values())
    check.point(
        spread <= 1,
        f"the slow requests were spread across the web nodes ({landed['web1']} and "
        f"{landed['web2']}): new requests went where fewer were in progress",
        f"the slow requests piled up on one node ({landed['web1']} and {landed['web2']}): "
        + (
            "roundrobin takes turns whatever the load"
            if algos["lb1"] == "roundrobin"
            else f"{algos['lb1']} did not send new requests where fewer were in progress"
        ),
        "which algorithm picks the server with the fewest requests in progress? "
        "haproxy.cfg lists the alternatives beside `balance`",
    )
