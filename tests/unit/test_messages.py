"""The happy paths of the guestbook: post, read back, list newest first."""

from datetime import datetime

from flask.testing import FlaskClient
from sqlalchemy import Engine

from .conftest import count_messages


def post(client: FlaskClient, author: str = "ada", text: str = "hello"):
    return client.post("/api/messages", json={"author": author, "text": text})


def test_post_stores_the_message_and_answers_201_with_location(
    client: FlaskClient, owner_engine: Engine
) -> None:
    response = post(client, "ada", "hello, world")
    assert response.status_code == 201
    body = response.get_json()
    assert body["id"] == 1
    assert body["author"] == "ada"
    assert body["text"] == "hello, world"
    assert set(body) == {"id", "author", "text", "created_at"}
    assert response.headers["Location"] == "/api/messages/1"
    assert "Idempotent-Replayed" not in response.headers
    assert count_messages(owner_engine) == 1


def test_created_at_is_iso_8601_with_a_time_zone(client: FlaskClient) -> None:
    created_at = datetime.fromisoformat(post(client).get_json()["created_at"])
    assert created_at.utcoffset() is not None


def test_a_message_is_read_back_by_its_location(client: FlaskClient) -> None:
    created = post(client, "grace", "Grüße, 你好 👋")
    response = client.get(created.headers["Location"])
    assert response.status_code == 200
    assert response.get_json() == created.get_json()


def test_the_longest_allowed_values_are_stored(client: FlaskClient) -> None:
    response = post(client, "a" * 80, "t" * 1000)
    assert response.status_code == 201
    assert client.get(response.headers["Location"]).get_json()["text"] == "t" * 1000


def test_list_is_empty_at_first(client: FlaskClient) -> None:
    response = client.get("/api/messages")
    assert response.status_code == 200
    assert response.get_json() == {"messages": []}


def test_list_is_newest_first(client: FlaskClient) -> None:
    ids = [post(client, text=f"message {i}").get_json()["id"] for i in range(3)]
    listed = client.get("/api/messages").get_json()["messages"]
    assert [m["id"] for m in listed] == list(reversed(ids))
    assert listed[0] == client.get(f"/api/messages/{ids[-1]}").get_json()


def test_list_returns_20_by_default_and_at_most_limit(client: FlaskClient) -> None:
    ids = [post(client, text=f"message {i}").get_json()["id"] for i in range(25)]
    default = client.get("/api/messages").get_json()["messages"]
    assert [m["id"] for m in default] == list(reversed(ids))[:20]

    two = client.get("/api/messages?limit=2").get_json()["messages"]
    assert [m["id"] for m in two] == list(reversed(ids))[:2]

    everything = client.get("/api/messages?limit=100").get_json()["messages"]
    assert len(everything) == 25


def test_unknown_id_is_404_json(client: FlaskClient) -> None:
    for path in ("/api/messages/1", "/api/messages/99999999999999999999999"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.get_json() == {"error": f"message {path.rsplit('/', 1)[1]} not found"}
