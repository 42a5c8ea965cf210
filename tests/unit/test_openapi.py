"""The OpenAPI document (app/guestbook/openapi.yaml) is valid, complete and true: every route of the
app is documented and every documented path is a route, its limits are the code's, and every answer
the app gives, errors included, has a documented status and matches the documented schema."""

import re
import uuid

import pytest
from flask import Flask
from flask.testing import FlaskClient
from guestbook.errors import ApiError
from guestbook.models import AUTHOR_MAX, IDEMPOTENCY_KEY_MAX, TEXT_MAX
from guestbook.validation import LIMIT_DEFAULT, LIMIT_MAX, check_text, parse_idempotency_key
from hypothesis import given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from werkzeug.routing import Rule

from tests.api_document import ApiDocument

API = ApiDocument()
SCHEMAS = API.document["components"]["schemas"]
# Werkzeug answers these for every route by itself; the document lists what the app implements.
AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}
# Statuses any path under /api/ may answer without an operation listing them (info.description).
GENERIC_ERRORS = {404, 405, 413, 502, 503, 504}


# A variable part of a Werkzeug rule: <name> or <converter:name>.
RULE_VARIABLE = re.compile(r"<(?:(?P<converter>[a-z]+):)?(?P<name>[a-z_]+)>")


def openapi_path(rule: Rule) -> str:
    """Werkzeug's /api/messages/<int:message_id> -> OpenAPI's /api/messages/{message_id}."""
    return RULE_VARIABLE.sub(r"{\g<name>}", rule.rule)


def test_the_document_is_valid_openapi_3_1() -> None:
    assert API.document["openapi"].startswith("3.1.")
    validate(API.document)  # raises, naming the first problem, if it is not


def test_the_served_document_is_the_file(client: FlaskClient) -> None:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == API.document


def test_every_route_is_documented_and_every_documented_operation_is_a_route(app: Flask) -> None:
    routes = {
        (openapi_path(rule), method)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - AUTOMATIC_METHODS
    }
    assert routes, "the app has no routes?"
    assert routes - API.operations() == set(), "routes missing from openapi.yaml"
    assert API.operations() - routes == set(), "documented operations the app does not have"


def test_path_parameters_have_the_routes_types(app: Flask) -> None:
    for rule in app.url_map.iter_rules():
        for variable in RULE_VARIABLE.finditer(rule.rule):
            operation = API.document["paths"][openapi_path(rule)]["get"]
            [parameter] = [p for p in operation["parameters"] if p["name"] == variable["name"]]
            assert parameter["in"] == "path" and parameter["required"] is True
            # Every variable of the app's routes is <int:...>, digits only: an integer >= 0.
            assert variable["converter"] == "int", rule.rule
            assert parameter["schema"] == {"type": "integer", "minimum": 0}


def test_the_documented_limits_are_the_codes(app: Flask) -> None:
    assert SCHEMAS["Author"]["maxLength"] == AUTHOR_MAX
    assert SCHEMAS["Text"]["maxLength"] == TEXT_MAX
    assert SCHEMAS["IdempotencyKey"]["maxLength"] == IDEMPOTENCY_KEY_MAX
    [limit] = API.document["paths"]["/api/messages"]["get"]["parameters"]
    assert (limit["schema"]["maximum"], limit["schema"]["default"]) == (LIMIT_MAX, LIMIT_DEFAULT)
    too_large = API.document["components"]["responses"]["TooLarge"]["description"]
    assert f"{app.config['MAX_CONTENT_LENGTH'] // 1024} KiB" in too_large


def accepted(check, *args) -> bool:
    try:
        check(*args)
    except ApiError:
        return False
    return True


# The same rule, written twice (validation.py in Python, openapi.yaml as JSON Schema), must agree
# on every value: hypothesis draws a few hundred, biased towards edges (whitespace, NUL, lengths
# around the limit); derandomize keeps the draw the same on every run.
@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.text(max_size=AUTHOR_MAX + 5) | st.sampled_from([" ", "\x00", "a\x00", "\x1c", "\u3000"]))
def test_the_documented_author_rule_is_the_apps(value: str) -> None:
    documented = API.errors("/components/schemas/Author", value) == []
    assert documented == accepted(check_text, "author", value, AUTHOR_MAX), repr(value)


# Header values as a server receives them: latin-1 characters, printable ASCII most of all.
HEADER_TEXT = st.text(
    alphabet=st.characters(max_codepoint=0xFF) | st.sampled_from(" a~"), max_size=205
)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(HEADER_TEXT | st.sampled_from(["   ", " k", "k ", "k k", "k" * 200, "k" * 201]))
def test_the_documented_idempotency_key_rule_is_the_apps(value: str) -> None:
    documented = API.errors("/components/schemas/IdempotencyKey", value) == []
    assert documented == accepted(parse_idempotency_key, value), repr(value)


def check_against_document(path: str, method: str, response) -> None:
    """The answer's status is documented for the operation (or is one of the generic errors),
    it is JSON, and its body matches the documented schema (the Error schema for an error)."""
    assert response.mimetype == "application/json", response.get_data(as_text=True)
    body = response.get_json()
    schema = None
    if (path, method) in API.operations():
        schema = API.response_pointer(path, method, response.status_code)
    if schema is None:
        assert response.status_code in GENERIC_ERRORS, (path, method, response.status_code)
        schema = "/components/schemas/Error"
    assert API.errors(schema, body) == [], (path, method, response.status_code, body)


def post_message(client: FlaskClient, **kwargs):
    return client.post("/api/messages", **kwargs)


# (path in the document, method, request, expected status). Each answer is checked against the
# document; the statuses are the app's whole error vocabulary (errors.py), 503 apart (below).
BIG = "x" * 20_000
CASES = [
    ("/api/healthz", "GET", lambda c: c.get("/api/healthz"), 200),
    ("/api/readyz", "GET", lambda c: c.get("/api/readyz"), 200),
    ("/api/whoami", "GET", lambda c: c.get("/api/whoami"), 200),
    ("/api/messages", "GET", lambda c: c.get("/api/messages?limit=5"), 200),
    ("/api/messages", "GET", lambda c: c.get("/api/messages?limit=0"), 400),
    ("/api/messages", "GET", lambda c: c.get("/api/messages?limit=abc"), 400),
    ("/api/messages", "POST", lambda c: post_message(c, json={"author": "a", "text": "b"}), 201),
    (
        "/api/messages",
        "POST",
        lambda c: post_message(c, data="{", content_type="application/json"),
        400,
    ),
    ("/api/messages", "POST", lambda c: post_message(c, json={"author": "a"}), 400),
    (
        "/api/messages",
        "POST",
        lambda c: post_message(c, json={"author": "a", "text": "b", "x": 1}),
        400,
    ),
    ("/api/messages", "POST", lambda c: post_message(c, json={"author": " ", "text": "b"}), 400),
    (
        "/api/messages",
        "POST",
        lambda c: post_message(c, json={"author": "a\x00", "text": "b"}),
        400,
    ),
    (
        "/api/messages",
        "POST",
        lambda c: post_message(
            c, json={"author": "a", "text": "b"}, headers={"Idempotency-Key": "é"}
        ),
        400,
    ),
    ("/api/messages", "POST", lambda c: post_message(c, json={"author": "a", "text": BIG}), 413),
    ("/api/messages", "POST", lambda c: post_message(c, data="a=b"), 415),
    ("/api/messages/{message_id}", "GET", lambda c: c.get("/api/messages/999999"), 404),
    ("/api/messages/{message_id}", "GET", lambda c: c.get(f"/api/messages/{2**64}"), 404),
    ("/api/messages", "DELETE", lambda c: c.delete("/api/messages"), 405),
    ("/api/messages/{message_id}", "PUT", lambda c: c.put("/api/messages/1"), 405),
    ("/api/no-such-thing", "GET", lambda c: c.get("/api/no-such-thing"), 404),
    ("/api/openapi.json", "GET", lambda c: c.get("/api/openapi.json"), 200),
]


@pytest.mark.parametrize(("path", "method", "send", "status"), CASES)
def test_every_answer_matches_the_document(client: FlaskClient, path, method, send, status) -> None:
    response = send(client)
    assert response.status_code == status, response.get_data(as_text=True)
    check_against_document(path, method, response)


def test_a_stored_message_and_a_replay_match_the_document(client: FlaskClient) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    created = post_message(client, json={"author": "ada", "text": "hello"}, headers=key)
    check_against_document("/api/messages", "POST", created)
    replayed = post_message(client, json={"author": "ada", "text": "hello"}, headers=key)
    assert replayed.headers["Idempotent-Replayed"] == "true"
    check_against_document("/api/messages", "POST", replayed)
    conflict = post_message(client, json={"author": "ada", "text": "other"}, headers=key)
    assert conflict.status_code == 422
    check_against_document("/api/messages", "POST", conflict)
    one = client.get(created.headers["Location"])
    assert one.status_code == 200
    check_against_document("/api/messages/{message_id}", "GET", one)


@pytest.mark.parametrize(
    ("path", "method", "url"),
    [
        ("/api/readyz", "GET", "/api/readyz"),
        ("/api/messages", "GET", "/api/messages"),
        ("/api/messages", "POST", "/api/messages"),
        ("/api/messages/{message_id}", "GET", "/api/messages/1"),
    ],
)
def test_database_unavailable_is_the_documented_503(
    offline_client: FlaskClient, path: str, method: str, url: str
) -> None:
    response = offline_client.open(url, method=method, json={"author": "a", "text": "b"})
    assert response.status_code == 503
    check_against_document(path, method, response)
