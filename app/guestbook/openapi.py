"""/api/openapi.json: the API's own description (openapi.yaml beside this file), as JSON.

The document is written by hand in YAML, where it can carry comments, and read once per worker
process when the app is built; clients and tools (schemathesis, Swagger UI, code generators) get
JSON, the form every OpenAPI tool reads.
"""

from pathlib import Path

import yaml
from flask import Blueprint

DOCUMENT_PATH = Path(__file__).with_name("openapi.yaml")

bp = Blueprint("openapi", __name__)


def load_document() -> dict:
    with DOCUMENT_PATH.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


# Parsed at import, so a broken document stops the worker at start, not at the first request.
DOCUMENT = load_document()


@bp.get("/openapi.json")
def openapi():
    return DOCUMENT
