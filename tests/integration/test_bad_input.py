"""Every kind of bad input, sent through the load balancer: the right status, a JSON error saying
what was wrong, and nothing stored."""

import uuid

import pytest

from tests.stack import Stack


def assert_json_error(response, status: int, mentions: str = "") -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error, str) and error
    assert mentions.lower() in error.lower()


def test_malformed_json_is_400(stack: Stack) -> None:
    response = stack.post(
        "/api/messages",
        data='{"author": "a", "text": ',
        headers={"Content-Type": "application/json"},
    )
    assert_json_error(response, 400, "json")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"text": "no author"}, "author"),
        ({"author": "no text"}, "text"),
        ({"author": "", "text": "empty author"}, "author"),
        ({"author": "a" * 81, "text": "author too long"}, "author"),
        ({"author": "a", "text": "t" * 1001}, "text"),
        ({"author": 42, "text": "author not a string"}, "author"),
        ({"author": "a", "text": "   "}, "text"),
        (["not", "an", "object"], "object"),
    ],
)
def test_invalid_fields_are_400_and_nothing_is_stored(stack: Stack, payload, field: str) -> None:
    before = stack.get("/api/messages", params={"limit": 1}).json()["messages"]
    response = stack.post("/api/messages", json=payload)
    assert_json_error(response, 400, field)
    assert stack.get("/api/messages", params={"limit": 1}).json()["messages"] == before


def test_limit_out_of_range_or_not_a_number_is_400(stack: Stack) -> None:
    for limit in ("0", "101", "abc", "-5"):
        assert_json_error(stack.get("/api/messages", params={"limit": limit}), 400, "limit")


def test_unknown_message_is_404(stack: Stack) -> None:
    assert_json_error(stack.get("/api/messages/999999999"), 404)


def test_unknown_api_path_is_404_json(stack: Stack) -> None:
    assert_json_error(stack.get("/api/no-such-endpoint"), 404)


def test_wrong_method_is_405(stack: Stack) -> None:
    assert_json_error(stack.request("DELETE", "/api/messages"), 405)
    assert_json_error(stack.request("PUT", "/api/messages/1", json={}), 405)


def test_body_over_the_app_limit_is_413(stack: Stack) -> None:
    text = "x" * 20_000  # over the app's 16 KiB limit, under nginx's 64 KiB wall
    response = stack.post("/api/messages", json={"author": "big", "text": text})
    assert_json_error(response, 413)
    assert "X-App" in response.headers  # the app itself refused it


def test_body_over_the_web_tier_limit_is_413_json_from_nginx(stack: Stack) -> None:
    text = "x" * 200_000  # over nginx's 64 KiB wall: never forwarded to the app
    response = stack.post("/api/messages", json={"author": "huge", "text": text})
    assert_json_error(response, 413)
    assert "X-App" not in response.headers


def test_body_that_is_not_json_is_415(stack: Stack) -> None:
    response = stack.post("/api/messages", data="author=a&text=b")
    assert_json_error(response, 415)
    response = stack.post(
        "/api/messages", data="hello", headers={"Content-Type": "text/plain; charset=utf-8"}
    )
    assert_json_error(response, 415)


def test_reused_idempotency_key_with_another_body_is_422(stack: Stack) -> None:
    key = str(uuid.uuid4())
    first = stack.post(
        "/api/messages", json={"author": "k", "text": "first"}, headers={"Idempotency-Key": key}
    )
    assert first.status_code == 201
    other = stack.post(
        "/api/messages", json={"author": "k", "text": "other"}, headers={"Idempotency-Key": key}
    )
    assert_json_error(other, 422)
