"""Fixtures shared by the integration and failover tests: the whole stack, up once per session.

By default the session starts its own copy of the stack and removes it afterwards. With
FOURTIER_REUSE_STACK=1 (`make failover-demo`) it uses the stack of `make up` as it is and leaves
it running, so a class can watch a scenario on the stack it has been exploring.
"""

import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.stack import ROOT, DockerCompose, Stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    subprocess.run([str(ROOT / "scripts" / "make-secrets.sh")], check=True)
    subprocess.run([str(ROOT / "scripts" / "make-certs.sh")], check=True)
    compose = DockerCompose(ROOT, compose_file_name="docker-compose.yml", build=True, wait=True)
    if os.environ.get("FOURTIER_REUSE_STACK") == "1":
        compose.start()  # `up --build --wait`: a no-op on a healthy, current stack
        yield Stack(compose)
        return
    with compose:
        yield Stack(compose)
