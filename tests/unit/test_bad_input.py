"""A client's mistakes: the right 4xx status, a JSON error naming what was wrong, nothing stored.

Never an HTML page, never a 500.
"""

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine

from .conftest import count_messages

JSON = "application/json"


def assert_error(response, status: int, *words: str) -> None:
    """The response has `status`, a JSON body {"error": ...}, and the error names `words`."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == JSON
    body = response.get_json()
    assert list(body) == ["error"]
    for word in words:
        assert word in body["error"]


# --- POST /api/messages: the body --------------------------------------------------------------

# (raw body, words the error must contain)
MALFORMED = [
    pytest.param(b"{", ["JSON"], id="truncated-json"),
    pytest.param(b"", ["JSON"], id="empty-body"),
    pytest.param(b"{'author': 'single quotes'}", ["JSON"], id="not-json"),
    pytest.param(b'{"author": "\xff", "text": "t"}', ["JSON"], id="not-utf8"),
    pytest.param(b"[]", ["object"], id="array"),
    pytest.param(b'"a string"', ["object"], id="string"),
    pytest.param(b"null", ["object"], id="null"),
    pytest.param(b"42", ["object"], id="number"),
]


@pytest.mark.parametrize(("body", "words"), MALFORMED)
def test_body_must_be_a_json_object(
    client: FlaskClient, owner_engine: Engine, body: bytes, words: list[str]
) -> None:
    response = client.post("/api/messages", data=body, content_type=JSON)
    assert_error(response, 400, *words)
    assert count_messages(owner_engine) == 0


# (JSON payload, words the error must contain)
INVALID_FIELDS = [
    pytest.param({"text": "t"}, ["author", "required"], id="author-missing"),
    pytest.param({"author": "a"}, ["text", "required"], id="text-missing"),
    pytest.param({}, ["author", "required"], id="both-missing"),
    pytest.param({"author": None, "text": "t"}, ["author", "required"], id="author-null"),
    pytest.param({"author": 42, "text": "t"}, ["author", "string"], id="author-number"),
    pytest.param({"author": "a", "text": ["t"]}, ["text", "string"], id="text-list"),
    pytest.param({"author": "a", "text": True}, ["text", "string"], id="text-bool"),
    pytest.param({"author": "", "text": "t"}, ["author", "empty"], id="author-empty"),
    pytest.param({"author": "a", "text": ""}, ["text", "empty"], id="text-empty"),
    pytest.param({"author": " \t\n", "text": "t"}, ["author", "blank"], id="author-blank"),
    pytest.param({"author": "a", "text": "   "}, ["text", "blank"], id="text-blank"),
    pytest.param({"author": "a" * 81, "text": "t"}, ["author", "80"], id="author-too-long"),
    pytest.param({"author": "a", "text": "t" * 1001}, ["text", "1000"], id="text-too-long"),
    pytest.param({"author": "a\x00b", "text": "t"}, ["author", "NUL"], id="author-nul"),
    pytest.param({"author": "a", "text": "t\x00"}, ["text", "NUL"], id="text-nul"),
    pytest.param({"author": "a", "text": "t", "id": 7}, ["unexpected", "id"], id="extra-field"),
    pytest.param(
        {"author": "a", "text": "t", "created_at": "x", "zz": 1},
        ["unexpected", "created_at", "zz"],
        id="extra-fields",
    ),
]


@pytest.mark.parametrize(("payload", "words"), INVALID_FIELDS)
def test_invalid_fields_are_400_naming_the_field(
    client: FlaskClient, owner_engine: Engine, payload: dict, words: list[str]
) -> None:
    response = client.post("/api/messages", json=payload)
    assert_error(response, 400, *words)
    assert count_messages(owner_engine) == 0


def test_lone_surrogate_is_400_not_a_database_error(
    client: FlaskClient, owner_engine: Engine
) -> None:
    # Valid JSON, but "\ud800" is half of a UTF-16 pair: not storable as UTF-8 text.
    response = client.post(
        "/api/messages", data=b'{"author": "\\ud800", "text": "t"}', content_type=JSON
    )
    assert_error(response, 400, "author")
    assert count_messages(owner_engine) == 0


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_post_that_is_not_json_is_415(
    client: FlaskClient, owner_engine: Engine, content_type: str | None
) -> None:
    body = b'{"author": "a", "text": "t"}'
    response = client.post("/api/messages", data=body, content_type=content_type)
    assert_error(response, 415, "application/json")
    assert count_messages(owner_engine) == 0


def test_json_with_a_charset_parameter_is_accepted(client: FlaskClient) -> None:
    body = b'{"author": "a", "text": "t"}'
    response = client.post(
        "/api/messages", data=body, content_type="application/json; charset=utf-8"
    )
    assert response.status_code == 201


def test_body_over_max_content_length_is_413(client: FlaskClient, owner_engine: Engine) -> None:
    response = client.post("/api/messages", json={"author": "a", "text": "t" * 20_000})
    assert_error(response, 413, "too large", "16384")
    assert count_messages(owner_engine) == 0


# --- GET /api/messages?limit= -------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["0", "101", "-1", "1.5", "abc", "", " 5", "+5", "1_0", "١"])
def test_limit_outside_1_to_100_is_400(client: FlaskClient, limit: str) -> None:
    response = client.get("/api/messages", query_string={"limit": limit})
    assert_error(response, 400, "limit")


# --- Unknown paths and methods -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/nope", "/api/messages/abc", "/api/messages/-1", "/api/messages/", "/"]
)
def test_unknown_path_is_404_json(client: FlaskClient, path: str) -> None:
    assert_error(client.get(path), 404, "not found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/api/messages"),
        ("PUT", "/api/messages"),
        ("PATCH", "/api/messages"),
        ("PUT", "/api/messages/1"),
        ("DELETE", "/api/messages/1"),
        ("POST", "/api/messages/1"),
        ("POST", "/api/healthz"),
    ],
)
def test_wrong_method_is_405_json_with_allow(client: FlaskClient, method: str, path: str) -> None:
    response = client.open(path, method=method, json={"author": "a", "text": "t"})
    assert_error(response, 405, "method not allowed")
    assert "GET" in response.headers["Allow"]
