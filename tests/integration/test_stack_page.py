"""The live stack page (monitor/consoles/stack.html) in a real browser: headless Chromium, driven
by Selenium, loads it from Prometheus, finds every node, and sees a killed web node turn red and
its traffic move to its peer, then come back.

Needs Debian's `chromium` and `chromium-driver` on the host (`make chromium` installs them); the
test is skipped, saying so, where they are missing. A screenshot of each moment is written to
$FOURTIER_SCREENSHOTS when that is set (docs/stack-*.png were made that way)."""

import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.stack import DB_NODES, ETCD_NODES, Stack, server_status, vip_holders, wait_until

NODES = ("lb1", "lb2", "web1", "web2", "app1", "app2", *DB_NODES, *ETCD_NODES)
CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    not (CHROMEDRIVER and CHROMIUM), reason="no chromium/chromedriver: run `make chromium`"
)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the test runs as root; Chromium's sandbox refuses root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1100,900",
    ):
        options.add_argument(argument)
    # The chromedriver of Debian's package, named explicitly: Selenium never downloads one.
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def node_states(browser) -> dict[str, tuple[str, str]]:
    """What the page shows now: node -> (state class, state text). Read in one script, because
    the page redraws itself every second (an element found before a redraw is gone after it)."""
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll('g.node'))"
        ".map(g => [g.id, g.dataset.state, g.dataset.text]);"
    )
    return {node.removeprefix("node-"): (state, text) for node, state, text in rows}


def flow(stack: Stack, lb: str, web: str) -> float:
    response = requests.get(
        f"{stack.prometheus_url}/api/v1/query",
        params={"query": f'flow:requests:rate10s{{from="{lb}",to="{web}"}}'},
        timeout=10,
    )
    result = response.json()["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def screenshot(browser, name: str) -> None:
    directory = os.environ.get("FOURTIER_SCREENSHOTS")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(Path(directory) / f"stack-{name}.png"))


class SteadyLoad:
    """GET /api/messages through the VIP, 10 per second, for at most `duration` seconds."""

    def __init__(self, stack: Stack, duration: float) -> None:
        self.url = stack.vip_url + "/api/messages?limit=5"
        self.duration = duration
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        end = time.monotonic() + self.duration
        while time.monotonic() < end and not self.stop.wait(0.1):
            # A request in flight at the kill may fail; the page is what is tested here.
            with contextlib.suppress(requests.RequestException):
                requests.get(self.url, timeout=2)

    def __enter__(self) -> "SteadyLoad":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def test_the_page_shows_every_node_and_a_killed_web_node(stack: Stack, browser) -> None:
    browser.get(f"{stack.prometheus_url}/consoles/stack.html")
    # Every node drawn, every one up (a fresh stack's first scrapes may take a few seconds).
    wait_until(
        lambda: {n: s for n, (s, _) in node_states(browser).items()} == dict.fromkeys(NODES, "up"),
        timeout=60,
        what="the page to show every node up",
    )
    holder = vip_holders(stack)[0]
    assert node_states(browser)[holder][1] == "up, holds the VIP"
    assert sorted(text for node, (_, text) in node_states(browser).items() if node in DB_NODES) == [
        "primary",
        "standby",
        "standby",
    ]
    with SteadyLoad(stack, duration=60):
        wait_until(lambda: flow(stack, holder, "web2") > 1, 20, "traffic to web2 on the page")
        screenshot(browser, "all-up")
        # From the moment web2 is dead: `docker compose kill` returns once it is.
        stack.docker_compose("kill", "web2")
        killed_at = time.monotonic()
        try:
            wait_until(
                lambda: node_states(browser)["web2"][0] == "down",
                timeout=5,
                what="the page to show web2 down within 5 s of the kill",
            )
            print(f"the page showed web2 down {time.monotonic() - killed_at:.1f}s after the kill")
            # Its traffic moves to its peer: the arrow to web2 goes idle (its rate over 10 s falls
            # to zero), web1 carries it all.
            wait_until(
                lambda: flow(stack, holder, "web2") < 0.1 and flow(stack, holder, "web1") > 1,
                timeout=25,
                what="the traffic to move from web2 to web1",
            )
            screenshot(browser, "web2-killed")
        finally:
            # `docker start`, not `docker compose start`: Compose would first wait for web2's
            # dependencies to be healthy, and the test is about the page, not about them.
            container = stack.docker_compose("ps", "--all", "--quiet", "web2").stdout.strip()
            subprocess.run(["docker", "start", container], check=True, capture_output=True)
        wait_until(
            lambda: server_status(stack, holder, "web", "web2") == "UP",
            timeout=20,
            what="HAProxy to mark web2 UP again",
        )
        wait_until(
            lambda: node_states(browser)["web2"][0] == "up",
            timeout=10,
            what="the page to show web2 up again",
        )
