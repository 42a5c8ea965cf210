"""Property-based fuzzing of the running API, through the load balancer, from its own OpenAPI
document (/api/openapi.json): schemathesis makes valid and invalid requests for every operation
(its coverage, fuzzing and stateful phases: POST a message, then follow the document's link to
read it back) and checks every answer against the document (tests/fuzz/schemathesis.toml).

Asserted: no failure of any check, i.e. no 5xx but the documented 503, every status and body as
documented, every error under /api/ JSON with `error` (tests/fuzz/hooks.py; nothing is excused);
afterwards every message stored during the run is valid by the document; and the stack still
answers through both load balancers.

The size is fixed for CI: a seed, at most FUZZ_EXAMPLES cases per operation and phase, and a hard
limit of FUZZ_TIMEOUT seconds (~60 s on the 2-core machine). `make fuzz` runs the same test on the
stack of `make up` with another seed every time and a time budget the run fills (FUZZ_MAX_TIME).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.api_document import ApiDocument
from tests.stack import ROOT, Stack

SEED = os.environ.get("FUZZ_SEED", "20261122")
EXAMPLES = os.environ.get("FUZZ_EXAMPLES", "25")
# A time budget that fuzzing and stateful testing fill by repeating (unset: run each phase once).
MAX_TIME = os.environ.get("FUZZ_MAX_TIME")
# The hard limit: past it the run is killed and the test fails.
TIMEOUT = float(os.environ.get("FUZZ_TIMEOUT", "120"))
CONFIG = ROOT / "tests" / "fuzz" / "schemathesis.toml"
SCHEMATHESIS = Path(sys.executable).with_name("st")


def newest_id(stack: Stack) -> int:
    messages = stack.get("/api/messages", params={"limit": 1}).json()["messages"]
    return messages[0]["id"] if messages else 0


def run_schemathesis(stack: Stack, reports: Path) -> tuple[dict, str]:
    """`st run` against the stack; returns its JSON report and its console output."""
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        f"{stack.url}/api/openapi.json",
        "--seed",
        SEED,
        "--max-examples",
        EXAMPLES,
        "--report",
        "json",
        "--report-dir",
        str(reports),
    ]
    if MAX_TIME:
        command += ["--max-time", MAX_TIME]
    result = subprocess.run(
        command,
        cwd=ROOT,  # the hooks module, tests.fuzz.hooks, is imported from here
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    [report_file] = reports.glob("*.json")
    return json.loads(report_file.read_text()), result.stdout + result.stderr


def test_fuzzing_the_api_finds_no_failure_and_stores_nothing_invalid(
    stack: Stack, tmp_path: Path
) -> None:
    api = ApiDocument(stack.get("/api/openapi.json").json())
    first_id = newest_id(stack)
    started = time.monotonic()
    try:
        report, output = run_schemathesis(stack, tmp_path)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"fuzzing ran over its {TIMEOUT:.0f} s limit:\n{error.stdout}")
    took = time.monotonic() - started

    cases = report["test_cases"]
    phases = ", ".join(f"{name} {phase['status']}" for name, phase in report["phases"].items())
    print(
        f"\nfuzz: seed {SEED}, {cases['generated']} cases in {took:.1f} s, "
        f"{cases['unique_failures']} failures, {cases['errored']} errors; phases: {phases}"
    )
    assert report["exit_code"] == 0, output[-6000:]
    assert cases["generated"] > 0 and cases["unique_failures"] == 0 and cases["errored"] == 0

    # Nothing invalid stored: every message made during the run reads back (or is a gap left by
    # a refused or replayed insert, which consumed an id) and is valid by the document, both as a
    # Message and as the NewMessage it was made from.
    last_id = newest_id(stack)
    stored = 0
    for message_id in range(first_id + 1, last_id + 1):
        response = stack.get(f"/api/messages/{message_id}")
        assert response.status_code in (200, 404), response.text
        if response.status_code == 200:
            message = response.json()
            assert api.errors("/components/schemas/Message", message) == [], message
            sent = {"author": message["author"], "text": message["text"]}
            assert api.errors("/components/schemas/NewMessage", sent) == [], message
            stored += 1
    print(f"fuzz: {stored} messages stored during the run, each valid by the document")

    # The stack still answers, through both load balancers, and reaches the database.
    for url in (stack.url, stack.lb2_url):
        response = requests.get(f"{url}/api/readyz", timeout=10)
        assert response.status_code == 200, (url, response.text)
