"""The guestbook through the whole stack: what is posted through the LB can be read back."""

import uuid

from tests.stack import Stack


def test_posted_message_is_read_back_by_id_and_in_the_list(stack: Stack) -> None:
    author, text = "integration", f"hello through four tiers {uuid.uuid4()}"
    created = stack.post("/api/messages", json={"author": author, "text": text})
    assert created.status_code == 201
    message = created.json()
    assert message["author"] == author
    assert message["text"] == text
    assert created.headers["Location"] == f"/api/messages/{message['id']}"

    by_id = stack.get(created.headers["Location"])
    assert by_id.status_code == 200
    assert by_id.json() == message

    listed = stack.get("/api/messages", params={"limit": 100}).json()["messages"]
    assert message in listed


def test_messages_are_listed_newest_first(stack: Stack) -> None:
    ids = [
        stack.post("/api/messages", json={"author": "order", "text": str(i)}).json()["id"]
        for i in range(3)
    ]
    listed = [m["id"] for m in stack.get("/api/messages", params={"limit": 3}).json()["messages"]]
    assert listed == list(reversed(ids))


def test_unicode_round_trips_through_every_tier(stack: Stack) -> None:
    text = "Grüße, 你好, مرحبا 👋"
    created = stack.post("/api/messages", json={"author": "ünïcødé", "text": text})
    assert created.status_code == 201
    assert stack.get(created.headers["Location"]).json()["text"] == text


def test_retried_post_with_the_same_idempotency_key_makes_one_message(stack: Stack) -> None:
    key = str(uuid.uuid4())
    payload = {"author": "retry", "text": f"once only {key}"}
    first = stack.post("/api/messages", json=payload, headers={"Idempotency-Key": key})
    again = stack.post("/api/messages", json=payload, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    listed = stack.get("/api/messages", params={"limit": 100}).json()["messages"]
    assert [m["text"] for m in listed].count(payload["text"]) == 1
