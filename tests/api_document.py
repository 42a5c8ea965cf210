"""The API's OpenAPI document (app/guestbook/openapi.yaml) as the tests use it: its operations, and
validators for any of its schemas (OpenAPI 3.1 schemas are JSON Schema 2020-12)."""

from pathlib import Path

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOCUMENT_PATH = Path(__file__).resolve().parents[1] / "app" / "guestbook" / "openapi.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# The document's own address in the validators' registry; its `#/components/...` references
# resolve against it.
BASE = "urn:fourtier:openapi"


def load_document() -> dict:
    with DOCUMENT_PATH.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def pointer(*parts: str) -> str:
    """A JSON pointer into the document: ("paths", "/api/messages") -> "/paths/~1api~1messages"."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class ApiDocument:
    def __init__(self, document: dict | None = None) -> None:
        self.document = document if document is not None else load_document()
        resource = Resource.from_contents(self.document, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(BASE, resource)

    def operations(self) -> set[tuple[str, str]]:
        """Every (path, METHOD) the document describes."""
        return {
            (path, method.upper())
            for path, item in self.document["paths"].items()
            for method in item
            if method in HTTP_METHODS
        }

    def resolve(self, node: dict) -> dict:
        """Follow a `$ref` to the components (a response may be a reference)."""
        while "$ref" in node:
            node = self.registry.resolver(BASE).lookup(node["$ref"]).contents
        return node

    def response_pointer(self, path: str, method: str, status: int) -> str | None:
        """The pointer to the JSON schema of an operation's answer with `status`, or None when
        the operation does not document that status."""
        responses = self.document["paths"][path][method.lower()]["responses"]
        if str(status) not in responses:
            return None
        response = responses[str(status)]
        if "$ref" in response:
            return response["$ref"].removeprefix("#") + pointer(
                "content", "application/json", "schema"
            )
        where = ("paths", path, method.lower(), "responses", str(status))
        return pointer(*where, "content", "application/json", "schema")

    def validator(self, schema_pointer: str) -> Draft202012Validator:
        """A validator for the schema at `schema_pointer` (e.g. "/components/schemas/Message"),
        formats (date-time, uuid) included."""
        return Draft202012Validator(
            {"$ref": f"{BASE}#{schema_pointer}"},
            registry=self.registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )

    def errors(self, schema_pointer: str, instance) -> list[str]:
        """What is wrong with `instance` against the schema, as readable lines ([] if valid)."""
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in self.validator(schema_pointer).iter_errors(instance)
        ]
