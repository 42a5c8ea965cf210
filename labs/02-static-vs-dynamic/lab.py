"""Lab 02: add a page and an asset that nginx serves alone, on both web nodes, rebuilding only the
web tier.

The checker asks for /about.html through the load balancer until both web nodes have answered,
follows the first /static/ link of the page, checks that no answer came from the app tier (no
X-App header, and the request ids are in no app node's log), and that the containers of every
other tier are the ones that ran when the lab started.
"""

import re

from labs.lablib import Check, Lab, poll

TITLE = "Static vs dynamic: a page nginx serves alone"
TIER = "web"
MINUTES = 25
SERVICES = ("web1", "web2")
PAGE = "/about.html"
OTHER_TIERS = ("lb1", "lb2", "app1", "app2", "db1", "db2", "db3")


def start(lab: Lab) -> None:
    # The containers of the other tiers now: they must still be these at the check.
    lab.remember("containers", {s: lab.stack.container(s).get("Id", "") for s in OTHER_TIERS})
    print("   recorded the containers of lb1, lb2, app1, app2, db1-db3: rebuild only web1, web2")


def from_both_web_nodes(lab: Lab, path: str) -> dict:
    """{web node: its answer to GET path}, asking until both have answered, for up to 15 s. A web
    node just rebuilt is healthy for Docker before the load balancers send it requests again:
    they must learn its new address (their DNS resolver) and see two checks pass (`rise 2`)."""
    answers = {}

    def heard_both() -> bool:
        answer = lab.stack.get(path)
        answers.setdefault(answer.header("X-Web") or "?", answer)
        return {"web1", "web2"} <= answers.keys()

    poll(heard_both, timeout=15, interval=0.2)
    return answers


def served_alone(check: Check, path: str, answers: dict, content_type: str) -> bool:
    good = {
        web: a
        for web, a in answers.items()
        if a.status == 200 and a.header("Content-Type").startswith(content_type)
    }
    both = check.point(
        {"web1", "web2"} <= good.keys(),
        f"{path} answers 200 ({content_type}) from web1 and from web2",
        f"{path} does not answer 200 {content_type} from both web nodes: "
        + ", ".join(f"{web}: {a.status or a.error}" for web, a in sorted(answers.items())),
        "put the file under nginx/site/ and rebuild both web nodes: "
        "docker compose up -d --build web1 web2",
    )
    alone = check.point(
        not any(a.header("X-App") for a in answers.values()),
        f"{path} has no X-App header: nginx answered alone",
        f"{path} was answered by the app tier ({answers} has X-App)",
        "only /api/ is forwarded to the app (nginx/conf.d/site.conf); serve it from disk",
    )
    return both and alone


def check(lab: Lab, check: Check) -> None:
    page = from_both_web_nodes(lab, PAGE)
    if not served_alone(check, PAGE, page, "text/html"):
        return
    html = next(iter(page.values())).body
    links = re.findall(r"""(?:href|src)\s*=\s*["'](/static/[^"'?#]+)""", html)
    if not check.point(
        bool(links),
        f"the page links an asset of its own under /static/ ({links[0] if links else ''})",
        "the page links no asset under /static/ (a stylesheet, a script or an image)",
        'e.g. <link rel="stylesheet" href="/static/css/about.css"> with the file beside site.css',
    ):
        return
    asset = from_both_web_nodes(lab, links[0])
    good = {w: a for w, a in asset.items() if a.status == 200}
    check.point(
        {"web1", "web2"} <= good.keys() and not any(a.header("X-App") for a in asset.values()),
        f"{links[0]} answers 200 from both web nodes, without X-App",
        f"{links[0]} is not served by both web nodes alone: "
        + ", ".join(f"{w}: {a.status or a.error}" for w, a in sorted(asset.items())),
        "is the file in nginx/site/static/, and were both web nodes rebuilt?",
    )
    check.point(
        any("max-age=" in a.header("Cache-Control") for a in good.values()),
        f"{links[0]} may be cached by browsers (Cache-Control: max-age, the /static/ location)",
        f"{links[0]} has no Cache-Control max-age",
        "the /static/ location of nginx/conf.d/site.conf sets `expires`; is the asset under it?",
    )

    # The logs agree: none of these request ids reached an app node. A dynamic request sent
    # afterwards shows the app's log is current (it is written up to a second late).
    ids = [a.header("X-Request-ID") for a in [*page.values(), *asset.values()]]
    marker = lab.stack.get("/api/healthz").header("X-Request-ID")
    app_log = ""

    def marker_logged() -> bool:
        nonlocal app_log
        app_log = lab.stack.logs("app1", "app2", since="10m")
        return marker in app_log

    poll(marker_logged, timeout=5, interval=0.5)
    check.point(
        not any(i and i in app_log for i in ids),
        "no app node's log has the ids of these requests",
        "an app node logged one of these requests",
        "the app must not see static files: look at `docker compose logs app1 app2`",
    )

    before = lab.recall("containers")
    if not check.point(
        bool(before),
        "the checker knows the containers from the start of the lab",
        "the checker does not know the containers from the start: run `make lab LAB=02` first",
    ):
        return
    changed = [s for s, cid in before.items() if lab.stack.container(s).get("Id", "") != cid]
    check.point(
        not changed,
        "only the web tier was rebuilt: lb, app and db containers are the ones from the start",
        f"these containers were recreated since the lab started: {', '.join(changed)}",
        "rebuild only the web nodes: docker compose up -d --build --no-deps web1 web2",
    )
