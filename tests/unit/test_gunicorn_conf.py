"""Gunicorn's settings on an app node (app/gunicorn.conf.py) as the environment chooses them: a
listening socket per worker for threaded workers, the shared socket for sync ones. What the hooks
then do with the sockets is checked on a running node: tests/integration/test_app_sockets.py."""

import runpy
from pathlib import Path

import pytest

GUNICORN_CONF = Path(__file__).parents[2] / "app" / "gunicorn.conf.py"


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict:
    for name in ("GUNICORN_WORKER_CLASS", "GUNICORN_THREADS", "GUNICORN_REUSE_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(GUNICORN_CONF))


@pytest.mark.parametrize(
    ("env", "reuse_port"),
    [
        ({}, True),  # the default: gthread x 4 threads
        ({"GUNICORN_WORKER_CLASS": "sync", "GUNICORN_THREADS": "1"}, False),
        # Gunicorn turns sync with threads into gthread, and so does the choice of socket.
        ({"GUNICORN_WORKER_CLASS": "sync", "GUNICORN_THREADS": "4"}, True),
        ({"GUNICORN_REUSE_PORT": "0"}, False),
        (
            {"GUNICORN_WORKER_CLASS": "sync", "GUNICORN_THREADS": "1", "GUNICORN_REUSE_PORT": "1"},
            True,
        ),
    ],
)
def test_threaded_workers_listen_on_a_socket_each_sync_workers_share_one(
    monkeypatch: pytest.MonkeyPatch, env: dict, reuse_port: bool
) -> None:
    assert settings(monkeypatch, **env)["reuse_port"] is reuse_port
