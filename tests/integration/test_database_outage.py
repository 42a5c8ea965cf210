"""The whole database tier goes away and comes back: clear JSON 503s meanwhile, full service
afterwards, and every message acknowledged before the outage is still there."""

from tests.stack import DB_NODES, Stack, wait_until


def test_database_down_gives_json_503_then_recovers(stack: Stack) -> None:
    before = stack.post("/api/messages", json={"author": "outage", "text": "before the outage"})
    assert before.status_code == 201

    stack.docker_compose("stop", *DB_NODES)
    try:
        for path in ("/api/messages", "/api/readyz", before.headers["Location"]):
            response = stack.get(path)
            assert response.status_code == 503, (path, response.text)
            assert response.headers["Content-Type"].startswith("application/json")
            assert "database" in response.json()["error"]
        posted = stack.post("/api/messages", json={"author": "outage", "text": "during"})
        assert posted.status_code == 503
        # The app itself is still alive: liveness does not depend on the database.
        assert stack.get("/api/healthz").status_code == 200
    finally:
        stack.docker_compose("start", *DB_NODES)

    # Both app nodes must be ready again; the LB alternates between web nodes, which alternate
    # between app nodes, so wait for several answers in a row (readiness, and a real read).
    def ready() -> bool:
        return stack.get("/api/readyz").status_code == 200 and stack.get("/api/messages").ok

    took = wait_until(
        lambda: all(ready() for _ in range(4)),
        timeout=60,
        what="/api/readyz to answer 200 after the database restart",
    )
    print(f"database back in service {took:.1f}s after `docker compose start db1 db2 db3` returned")

    assert stack.get(before.headers["Location"]).json() == before.json()
    assert (
        stack.post("/api/messages", json={"author": "outage", "text": "after"}).status_code == 201
    )
