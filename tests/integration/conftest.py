"""End-to-end fixtures: the whole stack, up once per test session, driven over HTTP like a client.

The stack runs under its own Compose project name and ports (set by `make test-integration`, with
the same defaults here), so it never touches a stack started by `make up`. Traffic goes only to
127.0.0.1, where the load balancer is published.
"""

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

os.environ.setdefault("COMPOSE_PROJECT_NAME", "fourtier-test")
os.environ.setdefault("LB_HTTP_PORT", "18080")
os.environ.setdefault("LB_STATS_PORT", "18404")
# testcontainers' reaper image (Ryuk) can't be pulled here; the fixture tears down itself.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

from testcontainers.compose import DockerCompose  # noqa: E402  (reads the environment above)

ROOT = Path(__file__).resolve().parents[2]


class Stack:
    """The running stack: its base URL, and a few operations on its containers."""

    def __init__(self, compose: DockerCompose) -> None:
        self.compose = compose
        self.project = os.environ["COMPOSE_PROJECT_NAME"]
        self.url = f"http://127.0.0.1:{os.environ['LB_HTTP_PORT']}"
        self.stats_url = f"http://127.0.0.1:{os.environ['LB_STATS_PORT']}"

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, timeout=10, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return requests.post(self.url + path, timeout=10, **kwargs)

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, self.url + path, timeout=10, **kwargs)

    def logs(self, *services: str) -> str:
        stdout, stderr = self.compose.get_logs(*services)
        return stdout + stderr

    def exec(self, service: str, *command: str) -> subprocess.CompletedProcess[str]:
        """Run a command in a service's container (not raising on a non-zero exit)."""
        return self.docker_compose("exec", "-T", service, *command, check=False)

    def docker_compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "compose", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=check,
        )


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `condition` every 0.2 s until it is true; return the seconds it took. Fails after
    `timeout` seconds, saying `what` was awaited. A bounded wait for a state, not a fixed sleep."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - start


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    subprocess.run([str(ROOT / "scripts" / "make-secrets.sh")], check=True)
    compose = DockerCompose(ROOT, compose_file_name="docker-compose.yml", build=True, wait=True)
    with compose:
        yield Stack(compose)
