"""HTTPS at the load balancers: a certificate from the local CA, Mozilla's "intermediate" profile
(TLS 1.2 and 1.3, its ciphers and no others), HTTP/2 through ALPN, plain-HTTP pages redirected to
HTTPS where the client came from, HSTS on HTTPS answers, and the key readable by HAProxy alone.

Handshakes are made with Python's ssl module (OpenSSL, as `openssl s_client` would), one cipher
or protocol version at a time, so the test sees exactly what the server accepts."""

import socket
import ssl
import subprocess
import urllib.parse

import pytest
import requests

from tests.stack import IMAGE_TAG, ROOT, Stack

# Mozilla "intermediate" (guidelines 5.7). Our certificate is ECDSA, so of its TLS 1.2 ciphers
# exactly the ECDSA ones can be negotiated.
TLS12_CIPHERS = {
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
}
TLS13_SUITES = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}


def address(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    return parts.hostname, parts.port


def handshake(url: str, context: ssl.SSLContext) -> ssl.SSLSocket:
    host, port = address(url)
    raw = socket.create_connection((host, port), timeout=5)
    return context.wrap_socket(raw, server_hostname=host)


def client_context(version: ssl.TLSVersion, ciphers: str | None = None) -> ssl.SSLContext:
    """A client that offers exactly one protocol version (and these TLS 1.2 ciphers), checking
    nothing about the certificate: these tests look at what the server accepts."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = context.maximum_version = version
    # Security level 0 lets this client offer old protocols and weak ciphers, to see them refused.
    context.set_ciphers((ciphers or "ALL") + ":@SECLEVEL=0")
    return context


def test_https_answers_with_a_certificate_the_local_ca_signed(stack: Stack) -> None:
    for url, lb in ((stack.https_url, "lb1"), (stack.lb2_https_url, "lb2")):
        response = requests.get(url + "/api/whoami", verify=stack.ca, timeout=10)
        assert response.status_code == 200
        assert response.headers["X-LB"] == lb
    # Without the CA the certificate is not trusted: it is not from a public authority.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(stack.https_url + "/", timeout=10)


def test_only_tls_1_2_and_1_3_are_accepted(stack: Stack) -> None:
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        with handshake(stack.https_url, client_context(version)) as tls:
            assert tls.version() == {"TLSv1_2": "TLSv1.2", "TLSv1_3": "TLSv1.3"}[version.name]
    for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        with pytest.raises(ssl.SSLError, match="(?i)protocol version|unsupported protocol"):
            handshake(stack.https_url, client_context(version)).close()


def test_tls_1_2_offers_exactly_the_intermediate_ciphers(stack: Stack) -> None:
    every_cipher = {
        c["name"]
        for c in client_context(ssl.TLSVersion.TLSv1_2).get_ciphers()
        if c["protocol"] != "TLSv1.3"
    }
    assert len(every_cipher) > 30, "the client offers too few ciphers to test anything"
    accepted = set()
    for cipher in sorted(every_cipher):
        try:
            with handshake(stack.https_url, client_context(ssl.TLSVersion.TLSv1_2, cipher)) as tls:
                accepted.add(tls.cipher()[0])
        except (ssl.SSLError, ConnectionResetError):
            pass
    assert accepted == TLS12_CIPHERS


def test_tls_1_3_offers_the_three_standard_suites_and_no_other(stack: Stack) -> None:
    host, port = address(stack.https_url)
    every_suite = TLS13_SUITES | {"TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"}
    accepted = set()
    for suite in sorted(every_suite):
        result = subprocess.run(
            ["openssl", "s_client", "-connect", f"{host}:{port}", "-tls1_3"]
            + ["-ciphersuites", suite, "-brief"],
            input="",
            capture_output=True,
            text=True,
            timeout=10,
        )
        if result.returncode == 0 and f"Ciphersuite: {suite}" in result.stderr:
            accepted.add(suite)
    assert accepted == TLS13_SUITES


def test_http2_is_negotiated_through_alpn(stack: Stack) -> None:
    context = client_context(ssl.TLSVersion.TLSv1_3)
    context.set_alpn_protocols(["h2", "http/1.1"])
    with handshake(stack.https_url, context) as tls:
        assert tls.selected_alpn_protocol() == "h2"
    # A whole request over HTTP/2 (curl with nghttp2), verified against the local CA.
    result = subprocess.run(
        ["curl", "-sS", "--http2", "--cacert", stack.ca, "-o", "/dev/null"]
        + ["-w", "%{http_version} %{response_code}", stack.https_url + "/api/whoami"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.stdout == "2 200", result.stderr
    # A client without ALPN gets HTTP/1.1.
    with handshake(stack.https_url, client_context(ssl.TLSVersion.TLSv1_3)) as tls:
        assert tls.selected_alpn_protocol() is None


@pytest.mark.parametrize("lb", ["lb1", "lb2", "vip"])
def test_plain_http_pages_redirect_to_https_on_the_port_the_client_can_reach(
    stack: Stack, lb: str
) -> None:
    http, https = {
        "lb1": (stack.url, stack.https_url),
        "lb2": (stack.lb2_url, stack.lb2_https_url),
        "vip": (stack.vip_url, stack.vip_https_url),
    }[lb]
    response = requests.get(http + "/static/css/site.css?v=1", allow_redirects=False, timeout=10)
    assert response.status_code == 301
    assert response.headers["Location"] == https + "/static/css/site.css?v=1"
    assert "Strict-Transport-Security" not in response.headers


def test_the_redirect_leads_to_the_page_over_https(stack: Stack) -> None:
    response = requests.get(stack.url + "/", verify=stack.ca, timeout=10)
    assert response.status_code == 200
    assert response.url == stack.https_url + "/"
    assert "fourtier" in response.text


def test_the_api_is_still_served_on_plain_http(stack: Stack) -> None:
    response = stack.get("/api/whoami", allow_redirects=False)
    assert response.status_code == 200
    assert response.json()["lb"] == "lb1"


@pytest.mark.parametrize("path", ["/", "/api/whoami", "/api/messages/999999999"])
def test_https_answers_carry_hsts(stack: Stack, path: str) -> None:
    response = requests.get(stack.https_url + path, verify=stack.ca, timeout=10)
    assert response.headers["Strict-Transport-Security"] == "max-age=63072000"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_hsts_is_on_the_lb_s_own_answers_too(stack: Stack) -> None:
    response = requests.get(
        stack.https_url + "/api/messages", params={"q": "a" * 10_000}, verify=stack.ca, timeout=10
    )
    assert response.status_code == 414
    assert response.headers["Strict-Transport-Security"] == "max-age=63072000"


def test_over_https_the_app_s_redirects_stay_on_https(stack: Stack) -> None:
    response = requests.get(
        stack.https_url + "/api/messages//1", verify=stack.ca, allow_redirects=False, timeout=10
    )
    assert response.status_code == 308
    assert response.headers["Location"] == stack.https_url + "/api/messages/1"


def test_the_key_is_readable_by_haproxy_alone_and_in_no_image(stack: Stack) -> None:
    for lb in ("lb1", "lb2"):
        paths = ("/run/haproxy-tls", "/run/haproxy-tls/site.pem")
        listing = stack.exec(lb, "stat", "-c", "%a %U", *paths, user="haproxy")
        assert listing.stdout.split() == ["700", "haproxy", "400", "haproxy"], listing.stderr
        # Not even root in the container reaches it: it has no DAC_OVERRIDE (hardened container).
        assert stack.exec(lb, "cat", paths[1]).returncode != 0
    key = (ROOT / ".secrets/tls/server.pem").read_text()
    assert "PRIVATE KEY" in key
    image = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "sh", f"fourtier/lb:{IMAGE_TAG}", "-c"]
        + ["grep -rl 'PRIVATE KEY' /etc /run /usr/local /var 2>/dev/null || true"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert image.stdout == "", image.stdout
