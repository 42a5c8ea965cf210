"""Fixtures of the app's unit tests: a real PostgreSQL in a container, nothing mocked.

One database container (the project's own fourtier/db image, so the schema and the least-privilege
role are exactly those of production) is started once per test session. Every test gets:
- an empty `messages` table (truncated by the table's owner before the test),
- a fresh app built by create_app, connected as the app's own role `guestbook_app`,
- a Flask test client for that app (as in the Flask tutorial's tests/conftest.py).
"""

import os
import socket
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import URL, Engine, create_engine, text

# testcontainers normally starts a "Ryuk" container that removes leftovers; its image can't be
# pulled here. The session fixture below stops its container itself. Set before the import.
os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"
# testcontainers 4.13 warns about its own internal use of a deprecated decorator; not our concern.
warnings.filterwarnings("ignore", "The @wait_container_is_ready", DeprecationWarning)

from testcontainers.postgres import PostgresContainer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
# The app package lives in app/guestbook; make `import guestbook` find it.
sys.path.insert(0, str(ROOT / "app"))

from guestbook import create_app  # noqa: E402
from guestbook.db import ENGINE_KEY, READ_ENGINE_KEY  # noqa: E402

# The database image under test (its standalone mode, the image's default command): the tag of
# docker-compose.yml's images (IMAGE_TAG), or any image with FOURTIER_DB_IMAGE=fourtier/db:new.
DB_IMAGE = os.environ.get(
    "FOURTIER_DB_IMAGE", f"fourtier/db:{os.environ.get('IMAGE_TAG') or 'latest'}"
)
DB_NAME = "guestbook"
OWNER, OWNER_PASSWORD = "guestbook_owner", "owner-test-password"
APP_USER, APP_PASSWORD = "guestbook_app", "app-test-password"
# The port is published on the loopback interface only: nothing outside this machine can reach it.
HOST = "127.0.0.1"


def ensure_db_image() -> None:
    """Build the database image if it is missing, so the tests never silently skip."""
    exists = subprocess.run(["docker", "image", "inspect", DB_IMAGE], capture_output=True)
    if exists.returncode != 0:
        subprocess.run([str(ROOT / "scripts" / "ensure-base-image.sh")], check=True)
        subprocess.run(["docker", "build", "-t", DB_IMAGE, str(ROOT / "db")], check=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresContainer]:
    ensure_db_image()
    container = (
        PostgresContainer(
            DB_IMAGE,
            driver="psycopg",
            username=OWNER,
            password=OWNER_PASSWORD,
            dbname=DB_NAME,
        )
        # Read by db/initdb.d/20-app-role.sh, which creates the app's role on first start.
        .with_env("APP_DB_PASSWORD", APP_PASSWORD)
        # Container port 5432 -> a free port on 127.0.0.1 (never 0.0.0.0).
        .with_bind_ports(5432, (HOST, None))
    )
    # start() returns once psql inside the container can connect over TCP, i.e. after the first
    # start's initialisation (schema, role) is complete.
    try:
        container.start()
    except Exception as error:
        # Show why: the container's own log says what went wrong during initialisation.
        stdout, stderr = container.get_logs()
        container.stop()
        log = (stdout + stderr).decode(errors="replace")
        pytest.fail(f"{DB_IMAGE} did not start: {error}\n--- container log ---\n{log}")
    try:
        yield container
    finally:
        container.stop()  # stops and removes it


def db_url(postgres: PostgresContainer, user: str, password: str) -> URL:
    return URL.create(
        "postgresql+psycopg",
        username=user,
        password=password,
        host=HOST,
        port=int(postgres.get_exposed_port(5432)),
        database=DB_NAME,
    )


@pytest.fixture(scope="session")
def owner_engine(postgres: PostgresContainer) -> Iterator[Engine]:
    """The table owner: may TRUNCATE, and is used to look at the table behind the app's back."""
    engine = create_engine(db_url(postgres, OWNER, OWNER_PASSWORD))
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def app_db_url(postgres: PostgresContainer) -> URL:
    """The URL of the least-privilege role, as the app connects in production."""
    return db_url(postgres, APP_USER, APP_PASSWORD)


@pytest.fixture
def clean_db(owner_engine: Engine) -> None:
    """An empty messages table, with ids starting at 1 again."""
    with owner_engine.begin() as connection:
        connection.execute(text("TRUNCATE messages RESTART IDENTITY"))


def make_app(**config) -> Flask:
    return create_app({"TESTING": True, "NODE_NAME": "app-test", **config})


def dispose(app: Flask) -> None:
    """Close the app's pooled connections, so tests don't pile up idle sessions on the server."""
    app.extensions[ENGINE_KEY].dispose()
    app.extensions[READ_ENGINE_KEY].dispose()  # the same engine unless reads have their own


@pytest.fixture
def app(clean_db: None, app_db_url: URL) -> Iterator[Flask]:
    app = make_app(DATABASE_URL=app_db_url.render_as_string(hide_password=False))
    yield app
    dispose(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens: bind a free one, then release it."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@pytest.fixture
def offline_client() -> Iterator[FlaskClient]:
    """A client of an app whose database is unreachable (connections are refused at once)."""
    url = f"postgresql+psycopg://{APP_USER}:x@{HOST}:{closed_port()}/{DB_NAME}"
    app = make_app(DATABASE_URL=url, DB_CONNECT_TIMEOUT=1, DB_POOL_TIMEOUT=1)
    yield app.test_client()
    dispose(app)


def count_messages(owner_engine: Engine) -> int:
    with owner_engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM messages")).scalar_one()
