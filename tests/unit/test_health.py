"""Liveness, readiness, whoami and the X-App header: what the other tiers and operators look at."""

from flask.testing import FlaskClient


def test_healthz_is_ok(client: FlaskClient) -> None:
    response = client.get("/api/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_ready_when_the_database_answers(client: FlaskClient) -> None:
    response = client.get("/api/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready"}


def test_whoami_names_every_tier_from_the_request_headers(client: FlaskClient) -> None:
    headers = {"X-LB": "lb1", "X-Web": "web2", "X-Request-ID": "0f6c2a4e-req"}
    response = client.get("/api/whoami", headers=headers)
    assert response.status_code == 200
    assert response.get_json() == {
        "lb": "lb1",
        "web": "web2",
        "app": "app-test",
        "request_id": "0f6c2a4e-req",
    }


def test_whoami_gives_null_for_tiers_that_were_bypassed(client: FlaskClient) -> None:
    body = client.get("/api/whoami").get_json()
    assert body == {"lb": None, "web": None, "app": "app-test", "request_id": None}


def test_every_response_names_the_app_node(client: FlaskClient) -> None:
    responses = [
        client.get("/api/healthz"),
        client.get("/api/messages"),
        client.get("/api/messages/12345"),  # 404 from our handler
        client.get("/api/nope"),  # 404 from routing
        client.delete("/api/messages"),  # 405
        client.post("/api/messages", json={"text": "t" * 20_000}),  # 413
    ]
    for response in responses:
        assert response.headers["X-App"] == "app-test", response.status_code


def test_liveness_and_whoami_need_no_database(offline_client: FlaskClient) -> None:
    assert offline_client.get("/api/healthz").status_code == 200
    assert offline_client.get("/api/whoami").status_code == 200


def test_readyz_is_503_json_when_the_database_is_unreachable(offline_client: FlaskClient) -> None:
    response = offline_client.get("/api/readyz")
    assert response.status_code == 503
    assert response.is_json
    assert response.get_json() == {"error": "database unavailable"}
    assert response.headers["X-App"] == "app-test"


def test_messages_are_503_json_when_the_database_is_unreachable(
    offline_client: FlaskClient,
) -> None:
    responses = [
        offline_client.get("/api/messages"),
        offline_client.get("/api/messages/1"),
        offline_client.post("/api/messages", json={"author": "a", "text": "t"}),
    ]
    for response in responses:
        assert response.status_code == 503
        assert response.get_json() == {"error": "database unavailable"}
