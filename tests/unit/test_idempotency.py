"""Idempotency-Key: a retried POST never makes a second message."""

import threading

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from .conftest import count_messages

PAYLOAD = {"author": "ada", "text": "sent twice"}


def post(client: FlaskClient, key: str, payload: dict = PAYLOAD):
    return client.post("/api/messages", json=payload, headers={"Idempotency-Key": key})


def test_retry_with_the_same_key_replays_the_first_answer(
    client: FlaskClient, owner_engine: Engine
) -> None:
    first = post(client, "key-1")
    again = post(client, "key-1")

    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count_messages(owner_engine) == 1


def test_different_keys_make_different_messages(client: FlaskClient, owner_engine: Engine) -> None:
    first = post(client, "key-1")
    second = post(client, "key-2")
    assert first.get_json()["id"] != second.get_json()["id"]
    assert count_messages(owner_engine) == 2


def test_posts_without_a_key_are_never_deduplicated(
    client: FlaskClient, owner_engine: Engine
) -> None:
    for _ in range(2):
        assert client.post("/api/messages", json=PAYLOAD).status_code == 201
    assert count_messages(owner_engine) == 2


def test_same_key_with_a_different_message_is_422(
    client: FlaskClient, owner_engine: Engine
) -> None:
    first = post(client, "key-1")
    other = post(client, "key-1", {"author": "ada", "text": "something else"})
    assert other.status_code == 422
    assert other.get_json() == {
        "error": "Idempotency-Key was already used with a different message"
    }
    assert count_messages(owner_engine) == 1
    # The first message is untouched.
    assert client.get(first.headers["Location"]).get_json()["text"] == PAYLOAD["text"]


def test_the_longest_allowed_key_works(client: FlaskClient) -> None:
    assert post(client, "k" * 200).status_code == 201


@pytest.mark.parametrize(
    "key",
    ["", "k" * 201, "tab\there", "caf\u00e9", "   ", " key", "key "],
    ids=["empty", "too-long", "control", "non-ascii", "spaces", "leading-space", "trailing-space"],
)
def test_invalid_key_is_400(client: FlaskClient, owner_engine: Engine, key: str) -> None:
    # The test client sends header values as latin-1, as HTTP/1.1 servers receive them.
    response = post(client, key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.get_json()["error"]
    assert count_messages(owner_engine) == 0


def test_concurrent_retries_make_one_message(app: Flask, owner_engine: Engine) -> None:
    """Four identical POSTs at the same moment, as a client's retries racing each other."""
    start = threading.Barrier(4)
    responses = []

    def send() -> None:
        client = app.test_client()
        start.wait()
        responses.append(post(client, "racing-key"))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [r.status_code for r in responses] == [201] * 4
    assert len({r.get_json()["id"] for r in responses}) == 1
    assert sum("Idempotent-Replayed" in r.headers for r in responses) == 3
    assert count_messages(owner_engine) == 1
