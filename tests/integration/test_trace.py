"""`make trace ID=...` (scripts/trace.py): one request's journey through every tier's log, in the
order it crossed them, with each tier's own timing."""

import os
import re
import subprocess

from tests.stack import ROOT, Stack, wait_until


def trace(request_id: str) -> subprocess.CompletedProcess[str]:
    # The same Compose project as the stack under test (COMPOSE_PROJECT_NAME in the environment).
    return subprocess.run(
        [str(ROOT / "scripts" / "trace.py"), request_id],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=os.environ,
    )


def test_a_dynamic_request_is_traced_through_lb_web_and_app_in_order(stack: Stack) -> None:
    response = stack.get("/api/messages?limit=3")
    assert response.status_code == 200
    request_id = response.headers["X-Request-ID"]
    web, app = response.headers["X-Web"], response.headers["X-App"]
    # The lines reach the logs in batches, at most a second late.
    wait_until(
        lambda: f"app {app}" in trace(request_id).stdout,
        timeout=10,
        what="the app's line in the trace",
    )
    result = trace(request_id)
    assert result.returncode == 0, result.stderr
    steps = re.findall(r"^\d+\. (\w+)\s+(\w+)\s+(.*)$", result.stdout, re.MULTILINE)
    assert [(tier, node) for tier, node, _ in steps] == [("lb", "lb1"), ("web", web), ("app", app)]
    lb, nginx, gunicorn = (timing for _, _, timing in steps)
    # Each tier's timing, read from its own line: HAProxy's five timers, nginx's request and
    # upstream times, Gunicorn's duration.
    total_ms = int(re.search(r"total (\d+) ms", lb)[1])
    request_s = float(re.search(r"nginx: request ([\d.]+) s", nginx)[1])
    app_ms = int(re.search(r"Gunicorn: (\d+) ms", gunicorn)[1])
    # Each tier's own clock, own start and end: on a busy machine an inner tier's figure can
    # exceed an outer one's by a scheduling delay, so only their presence is asserted.
    assert min(total_ms, request_s, app_ms) >= 0, (total_ms, request_s, app_ms)


def test_an_unknown_id_says_so_and_fails() -> None:
    result = trace("00000000-0000-4000-8000-000000000000")
    assert result.returncode == 1
    assert "in no log of" in result.stdout
