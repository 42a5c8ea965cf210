"""Lab 03: a new API endpoint end to end: GET /api/messages/count -> {"count": N}.

The checker asks for it through the load balancer until both app nodes have answered, checks the
count against the database (and that it follows a write), that a wrong method gets a JSON error,
that the app's database role has no more privileges than before (SELECT and INSERT on messages),
and runs the unit tests that exercise the endpoint.
"""

import subprocess
import sys

from labs.lablib import Check, Lab

TITLE = "A new API endpoint, end to end"
TIER = "app + db"
MINUTES = 45
SERVICES = ("app1", "app2")
PATH = "/api/messages/count"
GRANTS = (
    "SELECT string_agg(privilege_type, ',' ORDER BY privilege_type) FROM "
    "information_schema.role_table_grants WHERE grantee = 'guestbook_app'"
)


def start(lab: Lab) -> None:
    print(f"   nothing to change: {PATH} is yours to add")


def count(lab: Lab):
    answer = lab.stack.get(PATH)
    body = answer.json() if answer.status == 200 else None
    value = body.get("count") if isinstance(body, dict) else None
    return answer, value if isinstance(value, int) and not isinstance(value, bool) else None


def check(lab: Lab, check: Check) -> None:
    answers = [count(lab) for _ in range(6)]
    good = [(a, n) for a, n in answers if n is not None]
    if not check.point(
        len(good) == len(answers),
        f"GET {PATH} answers 200 with a JSON integer `count`",
        f'GET {PATH} does not answer 200 {{"count": <integer>}}: '
        + ", ".join(sorted({f"{a.status or a.error} {a.body.strip()[:60]}" for a, _ in answers})),
        "add the route to app/guestbook/messages.py, then rebuild the app tier: "
        "docker compose up -d --build --no-deps app1 app2",
    ):
        return
    apps = {a.header("X-App") for a, _ in good}
    check.point(
        {"app1", "app2"} <= apps,
        "both app nodes answer it (X-App app1 and app2)",
        f"only {sorted(apps)} answered it: was every app node rebuilt?",
        "docker compose up -d --build --no-deps app1 app2",
    )

    before = count(lab)[1]
    posted = lab.stack.post_json("/api/messages", {"author": "lab03", "text": "one more"})
    after = count(lab)[1]
    primary = lab.stack.db_primary()
    in_db = lab.stack.psql(primary, "SELECT count(*) FROM messages") if primary else "?"
    check.point(
        posted.status == 201 and after == before + 1 and str(after) == in_db,
        f"the count follows the table: {before}, then {after} after a POST, as the database says",
        f"the count does not follow the table: {before}, then {after} after a POST "
        f"(answered {posted.status}); the database counts {in_db}",
        "count the rows in SQL (SELECT count(*)), not a page of them",
    )

    wrong = lab.stack.request("POST", PATH, body="{}", headers={"Content-Type": "application/json"})
    error = wrong.json()
    check.point(
        wrong.status == 405 and isinstance(error, dict) and "error" in error,
        f"POST {PATH} answers 405 with a JSON error, like the rest of the API",
        f"POST {PATH} answers {wrong.status} {wrong.body.strip()[:60]}",
        "a GET-only route (@bp.get) gets the app's JSON 405 by itself (errors.py)",
    )

    grants = lab.stack.psql(primary, GRANTS) if primary else ""
    check.point(
        grants == "INSERT,SELECT",
        "the app's role still has only SELECT and INSERT on messages: least privilege is enough",
        f"the app's role has these privileges: {grants or 'none'} (it should be INSERT,SELECT)",
        "counting needs only SELECT; take back what was granted (REVOKE) and keep "
        "db/initdb.d/20-app-role.sh as it was",
    )

    tests = subprocess.run(
        ["grep", "-rl", "--include=*.py", "messages/count", "tests/unit"],
        cwd=lab.tree,
        capture_output=True,
        text=True,
    ).stdout.split()
    if not check.point(
        bool(tests),
        f"a unit test exercises the endpoint ({', '.join(tests)})",
        "no unit test in tests/unit/ asks for /api/messages/count",
        "write one like tests/unit/test_messages.py: post two messages, expect {'count': 2}",
    ):
        return
    check.note(f"running {' '.join(tests)} (a PostgreSQL container starts: ~30 s)")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=lab.tree,
        capture_output=True,
        text=True,
    )
    check.point(
        run.returncode == 0,
        "the unit tests that exercise it pass",
        "the unit tests that exercise it fail: "
        + (run.stdout.strip().splitlines() or ["(no output)"])[-1],
        f"run them yourself: .venv/bin/python -m pytest {' '.join(tests)}",
    )
