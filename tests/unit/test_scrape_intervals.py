"""The scrape intervals of monitor/prometheus.yml against what reads their series: every rate of the
recording rules has two samples in its window, and the live page sees a killed node within 5 s.

Some jobs are scraped less often than the 2 s default because they cost more
(docs/monitoring.md, "Every 2 seconds, but for the two costliest targets"); these checks keep a
later change of an interval, or of a rule's window, from silently breaking what the page draws.
"""

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
measure_scrapes = __import__("measure-scrapes")  # scripts/measure-scrapes.py: its config reader

CONFIG = yaml.safe_load((ROOT / "monitor" / "prometheus.yml").read_text())
RULES = yaml.safe_load((ROOT / "monitor" / "rules" / "fourtier.yml").read_text())
PAGE = (ROOT / "monitor" / "consoles" / "stack.html").read_text()

# Which job each series the rules take a rate of comes from (by the name's start).
SOURCES = {
    "haproxy_": "lb",
    "nginx_": "web",
    "fourtier_upstream_": "upstreams",
    "guestbook_": "app",
    "pg_": "postgres",
    "patroni_": "patroni",
    "etcd_": "etcd",
}


def intervals() -> dict[str, float]:
    return {job: interval for job, _, _, interval in measure_scrapes.targets(CONFIG)}


def test_the_costly_jobs_are_scraped_less_often_and_the_rest_every_2_s() -> None:
    found = intervals()
    assert found["postgres"] == 5 and found["etcd"] == 4
    assert {job for job, interval in found.items() if interval != 2} == {"postgres", "etcd"}


def test_every_rate_in_the_rules_has_two_samples_of_its_series_in_its_window() -> None:
    found, checked = intervals(), 0
    for group in RULES["groups"]:
        for rule in group["rules"]:
            # rate(series{...}[10s]), increase(...), *_over_time(...): the series and its window.
            for series, window in re.findall(r"([a-z_:]+)(?:\{[^}]*\})?\[(\d+)s\]", rule["expr"]):
                job = next((j for prefix, j in SOURCES.items() if series.startswith(prefix)), None)
                if job is None:  # a recording rule's own result, evaluated every 2 s
                    continue
                assert int(window) >= 2 * found[job], (rule["record"], series, window, job)
                checked += 1
    assert checked >= 10  # the rules were read: every tier's rates


def test_the_page_can_show_a_killed_node_within_5_seconds() -> None:
    # The page asks every REFRESH_MS; a killed node fails its job's next scrape at once.
    refresh = int(re.search(r"const REFRESH_MS = (\d+);", PAGE).group(1)) / 1000
    found = intervals()
    # The jobs whose `up` the page reads (nginx_up comes from the web exporters' job).
    watched = set(re.search(r"up\{job=~\"([a-z|]+)\"\}", PAGE).group(1).split("|")) | {"web"}
    assert watched == {"lb", "app", "patroni", "etcd", "web"}
    for job in watched:
        assert found[job] + refresh <= 5, (job, found[job])


def test_the_scrape_measurement_asks_what_prometheus_asks() -> None:
    # measure-scrapes.py's URL for HAProxy carries the job's params, as Prometheus's scrape does.
    asked = [(job, target, path) for job, target, path, _ in measure_scrapes.targets(CONFIG)]
    lb = [path for job, _, path in asked if job == "lb"]
    assert lb == ["/metrics?scope=frontend&scope=backend&scope=server"] * 2
    assert [(target, path) for job, target, path in asked if job == "vip"] == [("vip:8404", "/vip")]
