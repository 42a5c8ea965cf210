"""Lab 01: follow one request through every tier's log and name the node that served it at each.

The checker reads the answers file, then looks for the request id in the logs of both LBs, both
web nodes and both app nodes: each named node must have logged it, and the database node must be
the primary (the only node the app writes to and reads from).
"""

import re

from labs.lablib import Check, Lab, poll

TITLE = "Follow a request through every tier"
TIER = "all"
MINUTES = 20
SERVICES = ()  # nothing is changed: the stack as it runs is the starting state

FIELDS = ("request_id", "lb", "web", "app", "db")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def start(lab: Lab) -> None:
    print(f"   nothing to change; your answers go in {lab.lab_file('answers.txt')}")


def read_answers(lab: Lab) -> dict[str, str]:
    answers = {}
    for line in lab.lab_file("answers.txt").read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            answers[name.strip()] = value.strip().lower()
    return answers


def nodes_that_logged(lab: Lab, request_id: str, nodes: tuple[str, ...]) -> dict[str, str]:
    """{node: its log line with the id} for the nodes whose log has it. Tiers write their log a
    second late at most (batched), so a line is looked for during a few seconds."""
    found: dict[str, str] = {}
    # Since the lab began (an hour when it was not started): a busy stack's logs are long.
    since = lab.state.get("started") if lab.is_current() else "1h"

    def look() -> bool:
        for node in nodes:
            for line in lab.stack.logs(node, since=since).splitlines():
                if f"rid={request_id}" in line:
                    found[node] = line
        return bool(found)

    poll(look, timeout=3, interval=1)
    return found


def check(lab: Lab, check: Check) -> None:
    answers = read_answers(lab)
    missing = [name for name in FIELDS if not answers.get(name)]
    request_id = answers.get("request_id", "")
    if not check.point(
        not missing,
        "every answer is filled in",
        f"answers.txt still has blanks: {', '.join(missing)}",
        "send a request with `curl -i`, copy its X-Request-ID, find it in the logs",
    ):
        return
    if not check.point(
        bool(UUID.match(request_id)),
        "the request id looks like the ids HAProxy makes",
        f"{request_id!r} is not a request id (a UUID like 0b4e...-...-...)",
        "copy the value of the X-Request-ID header from `curl -i` output",
    ):
        return

    lbs = nodes_that_logged(lab, request_id, ("lb1", "lb2"))
    if not check.point(
        bool(lbs),
        "the id is in a load balancer's log",
        "no load balancer logged this request id",
        "was it sent through the load balancer, to this stack, after `make lab LAB=01`? "
        "`docker compose logs lb1 lb2 | grep <id>`",
    ):
        return
    check.point(
        answers["lb"] in lbs,
        f"lb: {answers['lb']} logged it",
        f"lb: {answers['lb']} did not log it",
        "`docker compose logs lb1 lb2 | grep <id>`; the line's first column is the client, "
        "the log is lb1's or lb2's",
    )
    webs = nodes_that_logged(lab, request_id, ("web1", "web2"))
    haproxy_line = next(iter(lbs.values()))
    check.point(
        answers["web"] in webs and f"web/{answers['web']} " in haproxy_line,
        f"web: {answers['web']} logged it, and HAProxy's line names it (web/{answers['web']})",
        f"web: {answers['web']} did not serve it",
        "HAProxy's log line says backend/server (web/web1 or web/web2); nginx's line has web=",
    )
    apps = nodes_that_logged(lab, request_id, ("app1", "app2"))
    if not check.point(
        bool(apps),
        "the request reached the application tier",
        "no app node logged it: it never left the web tier (a static file?)",
        "use a request to /api/messages: it goes through every tier to the database",
    ):
        return
    check.point(
        answers["app"] in apps,
        f"app: {answers['app']} logged it",
        f"app: {answers['app']} did not log it",
        "`docker compose logs app1 app2 | grep <id>`; the line ends with app=<node>",
    )
    app_line = next(iter(apps.values()))
    reached_db = '"GET /api/messages' in app_line or '"POST /api/messages' in app_line
    check.point(
        reached_db,
        "it was a request that reached the database (/api/messages)",
        "this request did not reach the database (only /api/messages and /api/readyz do)",
        "send  curl -i http://127.0.0.1:8080/api/messages  and follow that one",
    )
    primary = lab.stack.db_primary()
    check.point(
        answers["db"] == primary,
        f"db: {answers['db']} is the primary, the one node the app talks to",
        f"db: {answers['db']} is not the primary (the app reads and writes only the primary)",
        "`make db-status` names the Leader; README 'How the app finds it' says why",
    )
