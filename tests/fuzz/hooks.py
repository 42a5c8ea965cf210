"""What schemathesis adds to its own checks when it fuzzes the guestbook API
(tests/fuzz/schemathesis.toml loads this module as its hooks).

A check on every answer: every error under /api/ is JSON `{"error": "<a sentence>"}`, whichever
tier made it (the app, nginx or HAProxy). Schemathesis's response_schema_conformance checks this
only for the statuses an operation documents; this covers the generic ones too (404 for a path
that does not exist, 405 for a method a path does not have) and requests the app never saw (nginx
answers TRACE itself, with a JSON 405 and the path's `Allow`). No failure is excused.
"""

import json

import schemathesis


@schemathesis.check
def api_errors_are_json_with_error(ctx, response, case) -> None:
    if response.status_code < 400 or not case.path.startswith("/api/"):
        return
    content_type = ",".join(response.headers.get("content-type", []))
    assert content_type.startswith("application/json"), (
        f"{response.status_code} answered as {content_type or 'no Content-Type'}, not JSON"
    )
    try:
        body = json.loads(response.content)
    except ValueError as error:
        raise AssertionError(f"{response.status_code} body is not valid JSON: {error}") from None
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], (
        f'{response.status_code} body has no "error" sentence: {body!r}'
    )
