"""Static requests stop at the web tier; dynamic ones travel lb -> web -> app (-> db)."""

import requests

from tests.stack import Stack, wait_until


def test_landing_page_is_static_html_served_by_a_web_node(stack: Stack) -> None:
    response = stack.get("/")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "fourtier" in response.text
    assert response.headers["X-LB"] == "lb1"
    assert response.headers["X-Web"] in {"web1", "web2"}
    assert response.headers["X-Request-ID"]
    assert "X-App" not in response.headers


def test_static_assets_have_their_content_types(stack: Stack) -> None:
    expected = {
        "/static/css/site.css": "text/css",
        "/static/js/app.js": "application/javascript",
        "/static/img/tiers.svg": "image/svg+xml",
    }
    for path, content_type in expected.items():
        response = stack.get(path)
        assert response.status_code == 200, path
        assert response.headers["Content-Type"].startswith(content_type), path
        assert "X-App" not in response.headers, path


def test_missing_static_file_is_404_from_nginx(stack: Stack) -> None:
    response = stack.get("/static/no-such-file.css")
    assert response.status_code == 404
    assert "X-App" not in response.headers


def test_static_request_never_reaches_the_app_tier(stack: Stack) -> None:
    """Follow one request id through the logs: a web node logged it, no app node did."""
    request_id = stack.get("/static/css/site.css").headers["X-Request-ID"]
    wait_until(
        lambda: request_id in stack.logs("web1", "web2"), timeout=10, what="the web tier's log"
    )
    # A dynamic request made afterwards shows the app logs are being read and are current.
    dynamic_id = stack.get("/api/healthz").headers["X-Request-ID"]
    wait_until(lambda: dynamic_id in stack.logs("app1", "app2"), timeout=10, what="the app's log")
    assert request_id not in stack.logs("app1", "app2")


def test_dynamic_request_travels_through_every_tier(stack: Stack) -> None:
    response = stack.get("/api/whoami")
    assert response.status_code == 200
    body = response.json()
    assert body["lb"] == response.headers["X-LB"] == "lb1"
    assert body["web"] == response.headers["X-Web"]
    assert body["app"] == response.headers["X-App"]
    assert body["web"] in {"web1", "web2"}
    assert body["app"] in {"app1", "app2"}
    assert body["request_id"] == response.headers["X-Request-ID"]


def test_request_id_is_in_the_log_of_every_tier_it_crossed(stack: Stack) -> None:
    response = stack.get("/api/whoami")
    request_id = response.headers["X-Request-ID"]
    body = response.json()
    for service in ("lb1", body["web"], body["app"]):
        wait_until(
            lambda service=service: request_id in stack.logs(service),
            timeout=10,
            what=f"request id {request_id} in {service}'s log",
        )


def test_both_web_nodes_and_both_app_nodes_receive_traffic(stack: Stack) -> None:
    seen_web, seen_app = set(), set()
    for _ in range(20):
        response = stack.get("/api/whoami")
        assert response.status_code == 200
        seen_web.add(response.headers["X-Web"])
        seen_app.add(response.headers["X-App"])
    assert seen_web == {"web1", "web2"}
    assert seen_app == {"app1", "app2"}


def test_each_request_gets_its_own_id(stack: Stack) -> None:
    ids = {stack.get("/api/healthz").headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5


def test_haproxy_stats_page_lists_both_web_nodes_up(stack: Stack) -> None:
    response = requests.get(stack.stats_url + "/;csv", timeout=10)
    assert response.status_code == 200
    rows = [line.split(",") for line in response.text.splitlines() if line.startswith("web,")]
    status = {row[1]: row[17] for row in rows}
    assert status["web1"] == "UP"
    assert status["web2"] == "UP"
