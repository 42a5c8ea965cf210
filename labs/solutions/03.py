"""Lab 03, a reference solution: GET /api/messages/count in messages.py (one SELECT count(*),
which the app's role may already run), a unit test, and the app tier rebuilt.

By hand: add to app/guestbook/messages.py (and `func` to its sqlalchemy import)

    @bp.get("/messages/count")
    def count_messages():
        return {"count": execute(select(func.count()).select_from(Message)).scalar_one()}

then write tests/unit/test_messages_count.py (below), run it, and
    docker compose up -d --build --no-deps app1 app2
"""

from labs.lablib import Lab

ROUTE = """@bp.get("/messages/count")
def count_messages():
    # One aggregate in SQL: the database counts, the app sends one number back.
    return {"count": execute(select(func.count()).select_from(Message)).scalar_one()}


@bp.get("/messages/<int:message_id>")"""

TEST = '''"""GET /api/messages/count: how many messages are stored."""

from flask.testing import FlaskClient


def test_count_follows_the_messages_stored(client: FlaskClient) -> None:
    assert client.get("/api/messages/count").get_json() == {"count": 0}
    for text in ("one", "two"):
        client.post("/api/messages", json={"author": "ada", "text": text})
    response = client.get("/api/messages/count")
    assert response.status_code == 200
    assert response.get_json() == {"count": 2}
'''


def apply(lab: Lab) -> None:
    lab.edit(
        "app/guestbook/messages.py",
        "from sqlalchemy import select",
        "from sqlalchemy import func, select",
    )
    lab.edit("app/guestbook/messages.py", '@bp.get("/messages/<int:message_id>")', ROUTE)
    lab.path("tests/unit/test_messages_count.py").write_text(TEST)
    lab.stack.rebuild_tier_by_tier("app1", "app2")
