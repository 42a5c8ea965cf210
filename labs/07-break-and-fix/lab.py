"""Lab 07: break and fix: the lab breaks three things, one behind the other, and the student
restores service.

The starting state (edits recorded in .labs-state/, undone by `make lab-reset`):
- nginx/conf.d/site.conf loses a semicolon: the config fails `nginx -t`, the web nodes cannot start;
- nginx/conf.d/upstream-app.conf sends to the app servers' wrong port;
- .secrets/db_app_password gets a new password the database does not know.
The web tier is rebuilt and the app tier recreated with these. The checker then looks at health
through the whole path: HAProxy's view of the web nodes, `nginx -t` in them, both app nodes
answering through both web nodes, the database accepting the app, and a message written and read.
"""

import secrets

from labs.lablib import Check, Lab, Stack, poll

TITLE = "Break and fix: restore service through the whole path"
TIER = "web + app + db"
MINUTES = 45
SERVICES = ("web1", "web2", "app1", "app2")
SECRET = ".secrets/db_app_password"


def start(lab: Lab) -> None:
    lab.edit("nginx/conf.d/site.conf", "client_max_body_size 64k;", "client_max_body_size 64k")
    for app in ("app1", "app2"):
        lab.edit("nginx/conf.d/upstream-app.conf", f"server {app}:8000", f"server {app}:8001")
    old_password = lab.path(SECRET).read_text()
    lab.edit(SECRET, old_password, secrets.token_urlsafe(18).replace("-", "x").replace("_", "y"))
    print("   rebuilding web1 web2 and recreating app1 app2 with the broken files")
    lab.stack.rebuild("web1", "web2", wait=False)
    lab.stack.compose("up", "--detach", "--no-deps", "--force-recreate", "app1", "app2")
    print("   done: something is wrong with the site. Find out what, and fix it.")


def reset(stack: Stack) -> None:
    """The app's role gets the password of the secret file again (a fix may have given the role
    the lab's new password), and the app nodes restart to read the file."""
    password = (stack.tree / SECRET).read_text().strip()
    primary = stack.db_primary()
    if primary:
        stack.psql(primary, f"ALTER ROLE guestbook_app PASSWORD '{password}'")
    stack.compose("restart", "app1", "app2")
    stack.up_and_wait("app1", "app2")


def check(lab: Lab, check: Check) -> None:
    stack = lab.stack
    # The whole path needs a few seconds after a fix (health checks, the app's breaker).
    poll(lambda: stack.get("/api/readyz").status == 200, timeout=10, interval=1)

    for web in ("web1", "web2"):
        status = {
            lb: stack.web_servers(lb).get(web, {}).get("status", "?") for lb in ("lb1", "lb2")
        }
        running = stack.container(web).get("State", {}).get("Running", False)
        syntax = stack.exec(web, "nginx", "-t") if running else None
        # What nginx said: `nginx -t` in the container, or its log when it cannot start.
        said = (syntax.stderr + syntax.stdout) if syntax else stack.logs(web, since="10m")
        said = [line.strip() for line in said.splitlines() if "nginx" in line]
        why = next((line for line in said if "[emerg]" in line), said[-1] if said else "")
        check.point(
            syntax is not None and syntax.returncode == 0,
            f"{web} runs nginx with a configuration that passes `nginx -t`",
            f"{web} does not run a valid nginx configuration: {why or 'it is not running'}",
            f"`docker compose ps {web}`, `docker compose logs {web}`; `make check-configs` runs "
            "nginx -t on the image; fix the file, then docker compose up -d --build web1 web2",
        )
        check.point(
            set(status.values()) == {"UP"},
            f"HAProxy sees {web} UP on both LBs",
            f"HAProxy does not see {web} UP: {status}",
            "the stats page (http://127.0.0.1:8404) shows each web node's health checks",
        )

    answers = [stack.get("/api/whoami") for _ in range(8)]
    paths = {(a.header("X-Web"), a.header("X-App")) for a in answers if a.status == 200}
    webs, apps = {w for w, _ in paths}, {a for _, a in paths}
    bad = [a for a in answers if a.status != 200]
    check.point(
        {"web1", "web2"} <= webs and {"app1", "app2"} <= apps and not bad,
        "every /api/ request through the LB reaches an app node (web1 and web2, app1 and app2)",
        "/api/ requests do not reach the app tier: "
        + ", ".join(sorted({f"{a.status or a.error} {a.body.strip()[:60]}" for a in bad}))
        + f" (answered by web {sorted(webs)}, app {sorted(apps)})",
        "'application tier unavailable' is nginx's answer when it cannot reach an app server: "
        "compare the upstream (nginx/conf.d/upstream-app.conf) with where Gunicorn listens "
        "(app/gunicorn.conf.py, bind)"
        if any(a.header("X-Web") for a in bad) or not bad
        else "no web node answered (no X-Web header): the web tier comes first",
    )

    ready = [stack.get("/api/readyz") for _ in range(4)]
    not_ready = [a for a in ready if a.status != 200]
    check.point(
        not not_ready,
        "both app nodes reach the database (/api/readyz answers 200)",
        "the app cannot use the database: "
        + ", ".join(sorted({f"{a.status or a.error} {a.body.strip()[:80]}" for a in not_ready})),
        "`docker compose logs app1` names the cause; README 'Day two: passwords' explains the "
        "app's password file (.secrets/) and the role's password in the database"
        if all(a.header("X-App") for a in not_ready)
        else "these answers did not come from the app (no X-App header): fix the tiers before it",
    )

    posted = stack.post_json("/api/messages", {"author": "lab07", "text": "service restored"})
    read = stack.get(posted.header("Location")) if posted.status == 201 else None
    check.point(
        read is not None and read.status == 200 and read.json()["text"] == "service restored",
        "a message is stored and read back through the whole path",
        f"a message could not be stored and read back (POST answered {posted.status})",
        "every tier must work: LB -> web -> app -> the database's primary",
    )
