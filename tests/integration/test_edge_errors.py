"""Answers at the edge: every error any tier makes for /api/ is JSON (HAProxy's and nginx's own
rejections included), a redirect points where the client came from, every answer carries the
security headers, and no tier gives its version away."""

import re
import socket
from html.parser import HTMLParser

import pytest
import requests

from tests.api_document import ApiDocument
from tests.stack import ROOT, Stack

# Sent by HAProxy on every answer, its own included (haproxy.cfg, `http-after-response`).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def assert_json_error(response: requests.Response, status: int, mentions: str = "") -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    error = response.json()["error"]
    assert isinstance(error, str) and error
    assert mentions.lower() in error.lower()


def assert_security_headers(response: requests.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert value in response.headers.get(name, ""), (response.url[:80], name)
    assert "Server" not in response.headers, response.headers["Server"]


def test_an_oversized_header_is_a_json_431_from_the_lb(stack: Stack) -> None:
    response = stack.get("/api/whoami", headers={"X-Big": "a" * 20_000})
    assert_json_error(response, 431, "header")
    assert "X-Web" not in response.headers  # HAProxy refused it: it went no further
    assert response.headers["X-Request-ID"] and response.headers["X-LB"] == "lb1"
    assert_security_headers(response)


def test_a_request_haproxy_cannot_parse_still_gets_its_built_in_html_400(stack: Stack) -> None:
    """A known limit, pinned so that it can't go unnoticed either way (docs/security.md, "What is
    left out"): HAProxy 3.0's HTTP/1 parser answers a request it cannot parse (here a header name
    with a space) from its built-in page, ignoring `errorfile 400` (haproxy/haproxy#3032). If this
    fails because the answer is JSON, the HAProxy in the image applies errorfile there now: make
    this test assert JSON, and update the docs."""
    address = ("127.0.0.1", int(stack.url.rsplit(":", 1)[1]))
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(b"GET /api/whoami HTTP/1.1\r\nHost: lb\r\nBad Header: x\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    head, _, body = answer.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 400"), head
    assert re.search(r"(?im)^content-type: text/html", head), head
    assert "<h1>400 Bad request</h1>" in body, body


def test_an_oversized_url_is_a_json_414_from_the_lb(stack: Stack) -> None:
    response = stack.get("/api/messages", params={"q": "a" * 10_000})
    assert_json_error(response, 414, "url")
    assert "X-Web" not in response.headers


def test_a_header_line_over_nginx_s_limit_is_a_json_431_from_nginx(stack: Stack) -> None:
    # 9 KiB: under HAProxy's 16 KiB for all headers, over nginx's 8 KiB for one line.
    response = stack.get("/api/whoami", headers={"X-Big": "a" * 9_000})
    assert_json_error(response, 431, "header")
    assert response.headers["X-Web"] in {"web1", "web2"}
    assert "X-App" not in response.headers


def methods(allow: str) -> set[str]:
    return {m.strip() for m in allow.split(",") if m.strip()}


# Every path of the API document, one made-up message id standing for {message_id}, and one path
# the app does not have.
API_PATHS = [path.replace("{message_id}", "1") for path in ApiDocument().document["paths"]] + [
    "/api/no-such-thing"
]


@pytest.mark.parametrize("path", API_PATHS)
def test_trace_is_a_json_405_from_nginx_whose_allow_is_the_app_s_own(
    stack: Stack, path: str
) -> None:
    """nginx answers TRACE itself (the app never sees it), so its `Allow` comes from a map in
    nginx/conf.d/site.conf: it must list what the app answers on that path (the app's own 405s
    and OPTIONS say it), or a new route makes nginx's 405 lie."""
    response = stack.request("TRACE", path)
    assert_json_error(response, 405)
    assert "X-App" not in response.headers
    assert response.headers["X-Web"] in {"web1", "web2"}
    app = stack.request("OPTIONS", path)
    assert app.headers.get("X-App"), "OPTIONS should reach the app"
    if app.status_code == 404:  # no such resource: any method is refused with a 404
        return
    assert methods(response.headers["Allow"]) == methods(app.headers["Allow"]), path


def test_a_post_to_a_static_file_is_a_405_with_allow_get_and_head(stack: Stack) -> None:
    # Over HTTPS: on plain HTTP, HAProxy would redirect the page request first.
    response = requests.post(
        stack.https_url + "/static/css/site.css", data="x", verify=stack.ca, timeout=10
    )
    assert response.status_code == 405, response.text
    assert methods(response.headers["Allow"]) == {"GET", "HEAD"}


@pytest.mark.parametrize("lb", ["lb1", "lb2", "vip"])
def test_a_redirect_keeps_the_host_and_port_the_client_used_and_has_a_json_body(
    stack: Stack, lb: str
) -> None:
    base = {"lb1": stack.url, "lb2": stack.lb2_url, "vip": stack.vip_url}[lb]
    response = requests.get(base + "/api/messages//1", allow_redirects=False, timeout=10)
    assert response.status_code == 308
    assert response.headers["Location"] == base + "/api/messages/1"
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["location"] == base + "/api/messages/1"


@pytest.mark.parametrize(
    "path",
    ["/", "/static/css/site.css", "/static/no-such-file", "/api/whoami", "/api/no-such-thing"],
)
def test_every_answer_carries_the_security_headers_and_no_server_banner(
    stack: Stack, path: str
) -> None:
    assert_security_headers(stack.get(path))


class _PageResources(HTMLParser):
    """What a page loads and runs: every src/href, inline scripts and styles, event handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        for name in ("src", "href"):
            if names.get(name) and tag in {"script", "link", "img", "iframe", "object"}:
                self.urls.append(names[name])
        if tag == "style" or "style" in names or any(n.startswith("on") for n in names):
            self.inline.append(f"<{tag} {names}>")
        self._in_script = tag == "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(data.strip()[:60])

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False


def test_the_landing_page_satisfies_its_content_security_policy(stack: Stack) -> None:
    """default-src 'self' without 'unsafe-inline': every script, style and image must come from
    this origin, and nothing may be inline."""
    page = stack.get("/")
    policy = page.headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    resources = _PageResources()
    resources.feed(page.text)
    assert resources.urls, "the parser found nothing: the test would prove nothing"
    assert not resources.inline, resources.inline
    for url in resources.urls:
        assert url.startswith("/") and not url.startswith("//"), url
        assert stack.get(url).status_code == 200, url
    script = (ROOT / "nginx/site/static/js/app.js").read_text()
    assert not re.search(r"\beval\(|new Function\(|setAttribute\(\s*['\"]style", script)


def test_no_tier_gives_its_version_away(stack: Stack) -> None:
    stats = requests.get(stack.stats_url + "/", timeout=10)
    assert stats.status_code == 200
    assert not re.search(r"\b3\.\d+\.\d+", stats.text), "HAProxy's version on the stats page"
    # Behind the LB: nginx and Gunicorn name themselves, without a version.
    nginx = stack.exec("web1", "curl", "-sI", "http://127.0.0.1:8080/healthz").stdout
    gunicorn = stack.exec("web1", "curl", "-sI", "http://app1:8000/api/healthz").stdout
    assert re.search(r"(?im)^server: nginx\r?$", nginx), nginx
    assert re.search(r"(?im)^server: gunicorn\r?$", gunicorn), gunicorn
