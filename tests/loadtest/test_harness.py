"""The harness's own logic, without a stack (part of `make test-loadtest`, under a second).

What the smoke run cannot show cheaply: a scenario's host replaced by the address found for its
tier, combined configurations, the fallback path's description, the spread and the comparison
targets computed from given figures, the heavy-load lock's refusal to deadlock.
"""

import os
import subprocess
import sys
from pathlib import Path

from loadtests.harness import (
    calibrate,
    compare,
    loadtest,
    locust_run,
    measure,
    prometheus,
    reach,
    report,
    scenarios,
    stack,
)

ROOT = Path(__file__).resolve().parents[2]

DIRECT = {
    "LB_HTTP_PORT": reach.Endpoint("lb1", "10.213.243.11", 8080, "lb_web"),
    "BENCH_WEB_PORT": reach.Endpoint("web1", "10.213.243.130", 8080, "lb_web"),
    "BENCH_APP_PORT": reach.Endpoint("app1", "172.24.0.3", 8000, "web_app"),
    "BENCH_DB_PORT": reach.Endpoint("db1", "172.22.0.2", 5432, "app_db"),
}


def test_scenario_hosts_point_at_the_tier_found() -> None:
    by_name = {s.name: s for s in scenarios.all_scenarios()}
    assert by_name["lb-static"].host(DIRECT) == "http://10.213.243.11:8080"
    assert by_name["generator-ceiling"].host(DIRECT) == "http://10.213.243.130:8080"
    assert by_name["app-whoami"].host(DIRECT) == "http://172.24.0.3:8000"
    assert (
        by_name["db-messages"].host(DIRECT)
        == "postgresql://guestbook_app@172.22.0.2:5432/guestbook"
    )


def test_without_a_reachable_container_the_published_port_is_used() -> None:
    published = {"LB_HTTP_PORT": 28180, "LB_HTTPS_PORT": 28543, "BENCH_WEB_PORT": 29180}
    published |= {"BENCH_APP_PORT": 29100, "BENCH_DB_PORT": 29532}
    found = reach.find("fourtier-loadsmoke", {}, published)
    assert found["BENCH_APP_PORT"] == reach.Endpoint("app1", "127.0.0.1", 29100, None)
    assert reach.describe(found).startswith(reach.PROXY)
    assert reach.describe(DIRECT).startswith(reach.DIRECT)
    assert reach.describe({**DIRECT, "BENCH_DB_PORT": found["BENCH_DB_PORT"]}).startswith("mixed")


def test_a_combined_configuration_applies_its_overlays_in_order() -> None:
    assert stack.config_files("default+db-pool-1") == [
        "loadtests/configs/default.yml",
        "loadtests/configs/db-pool-1.yml",
    ]
    both = stack.config_description("default+db-pool-1")
    assert both.startswith(stack.config_description("default").rstrip("."))
    assert " + " in both and both.endswith(stack.config_description("db-pool-1").rstrip("."))


def run(rps: float, p95: float) -> dict:
    """One Locust run's figures, as compare.summarise reads them."""
    figures = {"rps": rps, "requests": 1000, "fail_pct": 0.0, "cpu_warning": False}
    return figures | {"p50_ms": 1.0, "p95_ms": p95, "p99_ms": p95}


def test_compare_reverses_the_order_every_other_repeat() -> None:
    orders = [compare.run_order(["a", "b", "c"], rep) for rep in (1, 2, 3, 4)]
    assert orders == [["a", "b", "c"], ["c", "b", "a"], ["a", "b", "c"], ["c", "b", "a"]]
    # The configuration that ran first in one repeat runs last in the next.
    assert orders[0][0] == orders[1][-1] and orders[1][0] == orders[2][-1]


def test_compare_reports_the_spread_and_the_remote_db_target() -> None:
    old = compare.summarise([run(100, 50), run(110, 50), run(90, 60)])
    new = compare.summarise([run(300, 40), run(310, 45), run(305, 50)])
    assert old["spread_pct"] == 20.0 and new["spread_pct"] == 3.3
    summary = {
        "tutorial-default+remote-db": {"lb-messages": old},
        "default+remote-db": {"lb-messages": new},
    }
    found = {t["target"]: t for t in compare.targets(summary, repeats=3)}
    name = "default+remote-db >= 3.0 x tutorial-default+remote-db on lb-messages (req/s, medians)"
    ratio = found[name]
    assert ratio["value"] == 3.05 and ratio["met"]
    spreads = [t for name, t in found.items() if name.startswith("spread <= 15% over 3 repeats")]
    assert [t["met"] for t in spreads] == [False, True]
    # The old 2.5 x target appears only when both plain configurations were run.
    assert not any(name.startswith("default >=") for name in found)
    # The same 3 x at 5 ms: a target of its own, held only when both of its configurations ran.
    farther = {f"{config}-5ms": runs for config, runs in summary.items()}
    names = [t["target"] for t in compare.targets(farther, repeats=1)]
    assert names[0] == (
        "default+remote-db-5ms >= 3.0 x tutorial-default+remote-db-5ms on lb-messages"
        " (req/s, medians)"
    )
    assert len(names) == 2  # the ratio and the p95; one repeat has no spread


def test_the_heavy_lock_refuses_a_run_whose_own_parent_holds_it(tmp_path) -> None:
    # `flock LOCK make loadtest` would otherwise wait forever for the lock its parent holds.
    lock = tmp_path / "heavy.lock"
    code = "from loadtests.harness import measure\nwith measure.heavy_lock(1000):\n    pass"
    run = subprocess.run(
        ["flock", str(lock), sys.executable, "-c", code],
        env={**os.environ, "HEAVY_LOCK": str(lock)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 1
    assert "held by this run's own parent" in run.stderr
    # Without a parent holding it, the same run takes the lock and goes on.
    free = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "HEAVY_LOCK": str(lock)},
        cwd=ROOT,
        timeout=30,
    )
    assert free.returncode == 0


def test_per_node_charts_draw_prometheus_and_cgroup_series(tmp_path) -> None:
    cpu = prometheus.cpu_over_run([[0.5, {"web1": 0.2, "app1": 0.4, "proxy": 0.1}], [1.0, {}]])
    assert cpu == {"web/web1": [[0.5, 0.2]], "app/app1": [[0.5, 0.4]]}  # Docker's own left out
    figures = {"requests/s": {"lb/lb1": [[0, 1.0], [1, 3.0]], "web/web2": [[0, 2.0], [1, 2.5]]}}
    path = tmp_path / "tiers.png"
    prometheus.chart(figures, cpu, path, "a run")
    assert path.read_bytes().startswith(b"\x89PNG")
    # No Prometheus (a configuration without monitoring): said, and the CPU chart still drawn.
    missing = prometheus.over_run({"PROMETHEUS_PORT": "1"}, 0, 1)
    assert "no figures from Prometheus" in missing["error"]
    prometheus.chart(missing, cpu, path, "without monitoring")


def test_compare_reports_cpu_per_request_of_every_tier_and_the_whole() -> None:
    tiers = measure.by_tier(
        {
            "lb1": 0.1,
            "web1": 0.1,
            "web2": 0.1,
            "app1": 0.5,
            "prometheus": 0.02,
            "db1-exporter": 0.02,
        }
        | {"dockerd": 0.04}
    )
    assert tiers["web"] == 0.2 and tiers["monitor"] == 0.04  # exporters and Prometheus together
    runs = [
        run(1000, 10) | {"cpu_cores": 0.01 * k, "cpu_by_tier": tiers} for k in (1, 2, 3)
    ]  # 1,000 req/s: ms per request = 1000 x cores / 1000
    summary = compare.summarise(runs)
    cpu = summary["cpu_ms"]
    assert cpu["app"] == 0.5 and cpu["monitor"] == 0.04 and cpu["generator"] == 0.02
    assert round(cpu["total"], 3) == round(0.1 + 0.2 + 0.5 + 0.04 + 0.04 + 0.02, 3)
    [lb_dynamic] = scenarios.select(["lb-dynamic"])
    text = compare.tables({"default": {"lb-dynamic": summary}}, ["default"], [lb_dynamic])
    assert "CPU per request, ms, and context switches (medians), lb-dynamic" in text
    assert "| default | 0.020 | 0.100 | 0.200 | 0.500 |" in text


def test_a_comparison_with_the_c_tool_runs_no_locust(monkeypatch, tmp_path) -> None:
    def no_locust(*args, **kwargs):
        raise AssertionError("Locust ran")

    measured = {"tool": "wrk", "requests": 500, "rps": 100.0, "fail_pct": 0.0, "cpu_series": []}
    monkeypatch.setattr(locust_run, "run", no_locust)
    monkeypatch.setattr(calibrate, "run", lambda *args: dict(measured))
    monkeypatch.setattr(measure, "wait_for_quiet", lambda limit: {"idle_cpu_pct": 99.0})
    monkeypatch.setattr(measure, "container_cpu_files", lambda containers: {})
    monkeypatch.setattr(prometheus, "wait_for_evaluation", lambda env, after: None)
    monkeypatch.setattr(prometheus, "over_run", lambda env, start, end: {"error": "none here"})

    class FakeStack:
        env, config, endpoints = {}, "default", DIRECT

        def containers(self) -> dict:
            return {}

    chosen = scenarios.select(["lb-dynamic", "db-messages"])
    load = loadtest.Load(seconds=1, warmup=0, quiet_wait=0)
    results = loadtest.measure_all(FakeStack(), chosen, load, tmp_path, False, tool="c")
    assert [r["locust"] for r in results] == [None, None]
    assert all(r["calibration"]["rps"] == 100.0 and "window" in r["calibration"] for r in results)
    assert (tmp_path / "tiers-lb-dynamic.png").read_bytes().startswith(b"\x89PNG")


def test_switching_configuration_starts_from_nothing(monkeypatch) -> None:
    """A configuration that leaves services out (no-monitoring) must not find the previous one's
    still running: the harness takes the old stack down, volumes and all, with the old files."""
    calls = []

    def compose(self, *args, check=True, timeout=600):
        calls.append((self.config, args))
        return ""

    monkeypatch.setattr(stack.Stack, "compose", compose)
    monkeypatch.setattr(stack.subprocess, "run", lambda *a, **k: None)
    monkeypatch.setattr(stack.reach, "find", lambda *a: {})
    monkeypatch.setattr(stack.Stack, "containers", lambda self: {})
    monkeypatch.setattr(stack.Stack, "seed", lambda self: None)
    bench = stack.Stack(dict(stack.SMOKE_ENV), from_environment=False)
    bench.up("default")
    bench.up("no-monitoring")
    downs = [(config, args) for config, args in calls if args[0] == "down"]
    ups = [(config, args) for config, args in calls if args[0] == "up"]
    assert downs[1] == ("default", ("down", "--volumes", "--remove-orphans"))
    assert [config for config, _ in ups] == ["default", "no-monitoring"]
    assert calls.index(downs[1]) < calls.index(ups[1])


def test_each_repeat_is_reported_beside_the_machines_noise_during_it() -> None:
    # Steal and iowait as shares of all CPU time, I/O stall as a share of the wall time.
    first = {"total": 100.0, "steal": 1.0, "iowait": 2.0, "io_stall": 10.0}
    last = {"total": 120.0, "steal": 2.0, "iowait": 2.5, "io_stall": 13.0}
    assert measure.noise_between(first, last, span=10.0) == {
        "steal_pct": 5.0,
        "iowait_pct": 2.5,
        "io_stall_pct": 30.0,
    }
    # A kernel without /proc/pressure: no I/O stall figure rather than a wrong one.
    bare = {k: v for k, v in first.items() if k != "io_stall"}
    assert "io_stall_pct" not in measure.noise_between(bare, last, span=10.0)
    # This machine's own counters are cumulative seconds that only grow.
    before = measure.machine_counters()
    assert before["total"] > 0 and before["steal"] >= 0 and before["iowait"] >= 0
    # Over a run, the counters' difference across the steady part (the first 2 s and the last
    # sample left out): 1 s of steal in 3 s of CPU time between t=2 and t=3.5.
    sampler = measure.Sampler(pid=os.getpid(), containers={})
    sampler.readings = [
        (t, 0.0, 50.0, {}, {"total": 2.0 * t, "steal": steal, "iowait": 0.0})
        for t, steal in [(0, 0.0), (2, 5.0), (3.5, 6.0), (4, 9.0)]
    ]
    assert sampler.result()["noise"]["steal_pct"] == round(100 / 3, 2)
    tiers = {"lb": 0.2, "app": 1.0}
    runs = [
        run(1000, 10) | {"cpu_cores": 0.3, "cpu_by_tier": tiers, "noise": {"steal_pct": 0.1}},
        run(800, 10) | {"cpu_cores": 0.3, "cpu_by_tier": tiers, "noise": {"steal_pct": 9.5}},
    ]
    summary = compare.summarise(runs)
    assert [e["cores"] for e in summary["each"]] == [1.5, 1.5]
    assert [e["cpu_ms"] for e in summary["each"]] == [1.5, 1.875]
    [lb_dynamic] = scenarios.select(["lb-dynamic"])
    text = compare.tables({"default": {"lb-dynamic": summary}}, ["default"], [lb_dynamic])
    assert "Each repeat and the machine's noise during it, lb-dynamic" in text
    assert "| default | 2 | 800 | 1.50 | 1.875 | -, - | 9.50 | - | - | - |" in text


def test_a_run_waits_while_the_cores_are_slow(monkeypatch) -> None:
    speeds = iter([10.0, 20.0, 19.0, 10.5, 30.0])
    monkeypatch.setattr(measure, "_fastest_core_ms", [float("inf")])
    monkeypatch.setattr(measure, "core_speed_ms", lambda: next(speeds))
    monkeypatch.setattr(measure.psutil, "cpu_percent", lambda interval=None: 5.0)
    monkeypatch.setattr(measure, "QUIET_SAMPLE_SECONDS", 0.01)
    # The first reading is the fastest yet: not slow.
    assert measure.wait_for_quiet(5) | {"waited_s": 0} == {
        "idle_cpu_pct": 5.0,
        "quiet": True,
        "waited_s": 0,
        "core_ms": 10.0,
        "slow_cores": False,
    }
    # 20 and 19 ms are over 1.12 x 10: timed again until 10.5.
    assert measure.wait_for_quiet(5)["core_ms"] == 10.5
    # With no time left to wait, the run goes on, marked, and the report says so.
    slow = measure.wait_for_quiet(0)
    assert slow["core_ms"] == 30.0 and slow["slow_cores"]
    [warning] = report.quiet_warnings([("lb-dynamic (wrk)", slow)])
    assert "cores were still slow before 1 of 1 runs" in warning and "30.0 ms" in warning


def test_context_switches_are_counted_per_second_of_the_run() -> None:
    # 45,000 switches in 10 s: 4,500 a second.
    first = {"total": 100.0, "steal": 1.0, "iowait": 2.0, "switches": 1_000_000}
    last = {"total": 120.0, "steal": 1.0, "iowait": 2.0, "switches": 1_045_000}
    assert measure.noise_between(first, last, span=10.0)["switches_per_s"] == 4500.0
    # A reading from before the harness counted switches: no figure rather than a wrong one.
    older = {k: v for k, v in first.items() if k != "switches"}
    assert "switches_per_s" not in measure.noise_between(older, last, span=10.0)
    # This machine's own count is the kernel's since boot, and only grows.
    before = measure.machine_counters()["switches"]
    assert 0 < before <= measure.machine_counters()["switches"]


def test_switches_per_request_need_the_reading_and_some_requests() -> None:
    assert report.switches_per_request({"switches_per_s": 4500.0}, 1000.0) == 4.5
    assert report.switches_per_request({"steal_pct": 0.1}, 1000.0) is None  # an older run
    assert report.switches_per_request({"switches_per_s": 4500.0}, 0.0) is None
    assert report.switches_per_request({"switches_per_s": 4500.0}, None) is None


def test_every_cpu_table_shows_switches_per_request_and_a_dash_without_the_reading() -> None:
    def measured(rps: float, noise: dict) -> dict:
        tiers = {"lb": 0.2, "app": 1.0}
        return run(rps, 10) | {"cpu_cores": 0.3, "cpu_by_tier": tiers, "noise": noise}

    # make loadtest's CPU table: the machine's switches per second / req/s, one decimal.
    counted = measured(1000, {"steal_pct": 0.0, "io_stall_pct": 1.0, "switches_per_s": 4500.0})
    older = measured(500, {"steal_pct": 0.0, "io_stall_pct": 1.0})  # no reading: "-", not 0
    results = [{"scenario": "lb-dynamic", "locust": counted}, {"scenario": "old", "locust": older}]
    header, _, with_reading, without = report.cpu_table(results, "locust").splitlines()
    assert header.endswith("| I/O stall % | switches per request |")
    assert with_reading.endswith("| -, - | 0.00 | 1.0 | 4.5 |")
    assert without.endswith("| -, - | 0.00 | 1.0 | - |")
    # make compare: the median over the repeats (4.5, 6.5 and one without the reading).
    repeats = [counted, measured(800, {"switches_per_s": 5200.0}), older]
    summary = compare.summarise(repeats)
    assert summary["switches"] == 5.5
    assert [e["switches"] for e in summary["each"]] == [4.5, 6.5, None]
    [lb_dynamic] = scenarios.select(["lb-dynamic"])
    text = compare.tables({"default": {"lb-dynamic": summary}}, ["default"], [lb_dynamic])
    assert "| configuration | generator | lb |" in text and "| total | switches |" in text
    assert "| 1.875 | 5.5 |" in text  # the medians' row ends with the total and the switches
    assert "| I/O stall % | switches/request |" in text
    assert "| default | 2 | 800 | 1.50 | 1.875 | -, - | - | - | - | 6.5 |" in text
    assert "| default | 3 | 500 | 1.50 | 3.000 | -, - | 0.00 | - | 1.0 | - |" in text
    # A comparison of older runs alone has no median: "-" there too.
    assert compare.summarise([older])["switches"] is None
