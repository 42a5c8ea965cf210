"""`make loadtest`: every scenario once against one configuration, each calibrated by a C tool.

Writes loadtests/results/<time>-<config>/: per scenario Locust's CSV files, HTML report, log and
command, the wrk/pgbench output, tiers-<scenario>.png (each node's requests/s, errors/s, p95 and
CPU over the run, from Prometheus and the cgroups: prometheus.py); then summary.json, summary.md
(the printed table) and throughput.png.

Against noise, every measured run starts on a quiet machine (measure.wait_for_quiet) and after a
warm-up whose figures are thrown away (wrk and pgbench: `warmup` seconds of the same load; Locust:
its statistics are reset once every user runs).
"""

import contextlib
import datetime
import importlib.metadata
import time
from dataclasses import dataclass
from pathlib import Path

from . import calibrate, locust_run, measure, prometheus, report
from .scenarios import Scenario
from .stack import ROOT, Stack, machine

RESULTS = ROOT / "loadtests" / "results"


@dataclass(frozen=True)
class Load:
    """How every scenario of a run is loaded."""

    seconds: int  # per scenario and per tool
    processes: int = 1  # Locust processes
    warmup: int = 5  # seconds of the C tool's load before its measured run, figures discarded
    quiet_wait: int = 30  # at most this long waiting for a quiet machine before each run


def new_results_dir(label: str) -> Path:
    out = RESULTS / f"{datetime.datetime.now():%Y%m%d-%H%M%S}-{label}"
    out.mkdir(parents=True)
    return out


def run_info(stack: Stack, load: Load) -> dict:
    return {
        "date": f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        "config": stack.config,
        "duration_s": load.seconds,
        "warmup_s": load.warmup,
        "quiet_cpu_pct": measure.QUIET_CPU_PCT,
        "quiet_sample_s": measure.QUIET_SAMPLE_SECONDS,
        "slow_cores_ratio": measure.SLOW_CORES_RATIO,
        "quiet_wait_s": load.quiet_wait,
        "processes": load.processes,
        "locust_version": importlib.metadata.version("locust"),
        "machine": {**machine(), "container_log_driver": stack.log_drivers()},
        "path": stack.path(),
        "versions": stack.versions(),
        "settings": stack.settings(),
    }


def measure_all(
    stack: Stack,
    scenarios: list[Scenario],
    load: Load,
    out: Path,
    calibrate_too: bool,
    tool: str = "locust",
) -> list[dict]:
    """Each scenario by Locust (and by the C tool), each run after a quiet-machine check; or, with
    tool="c" (a comparison run with the C tools), by wrk/pgbench alone. Load is made holding the
    heavy-load lock: per scenario when calibrating (Locust and the C tool back to back, in the same
    conditions), else for the whole set (one configuration's runs in a comparison)."""
    results = []
    containers = measure.container_cpu_files(stack.containers())
    no_lock = contextlib.nullcontext()
    per_scenario = 2 * load.seconds + load.warmup
    with no_lock if calibrate_too else measure.heavy_lock(load.seconds * len(scenarios)):
        for scenario in scenarios:
            with measure.heavy_lock(per_scenario) if calibrate_too else no_lock:
                locust = cal = None
                if tool == "locust":
                    quiet = measure.wait_for_quiet(load.quiet_wait)
                    host = scenario.host(stack.endpoints)
                    started = time.time()
                    locust = locust_run.run(
                        scenario, host, load.seconds, out, load.processes, containers
                    )
                    locust["quiet"] = quiet
                    locust["window"] = [started, time.time()]
                if calibrate_too or tool == "c":
                    quiet = measure.wait_for_quiet(load.quiet_wait)
                    started = time.time()
                    cal = calibrate.run(scenario, stack, load.seconds, load.warmup, out, containers)
                if cal:
                    cal["quiet"] = quiet
                    # The measured run is the last `seconds` of the C tool's (after its warm-up).
                    cal["window"] = [time.time() - load.seconds, time.time()]
            results.append(
                {
                    "scenario": scenario.name,
                    "tier": scenario.tier,
                    "description": scenario.description,
                    "users": scenario.users,
                    "locust": locust,
                    "calibration": cal,
                }
            )
    chart_tiers(stack, results, out)
    return results


def chart_tiers(stack: Stack, results: list[dict], out: Path) -> None:
    """Each node's figures over each Locust run (or the C tool's, when it ran alone), from
    Prometheus, charted beside the report. Asked once every run is over (and Prometheus has
    evaluated its rules past the last one), while the stack is still up."""
    charted = [(r, r["locust"] or r["calibration"]) for r in results]
    charted = [(r, run) for r, run in charted if run and "window" in run]
    last_end = max((run["window"][1] for _, run in charted), default=0.0)
    prometheus.wait_for_evaluation(stack.env, last_end)
    for r, run in charted:
        run["prometheus"] = prometheus.over_run(stack.env, *run["window"])
        who = "Locust" if r["locust"] else run["tool"]
        prometheus.chart(
            run["prometheus"],
            prometheus.cpu_over_run(run.get("cpu_series", [])),
            out / f"tiers-{r['scenario']}.png",
            f"{r['scenario']} ({stack.config}): each node over the {who} run",
        )


def main(stack: Stack, config: str, scenarios: list[Scenario], load: Load, keep_up: bool) -> int:
    out = new_results_dir(config)
    print(f"== results: {out}")
    try:
        stack.up(config)
        info = run_info(stack, load)
        results = measure_all(stack, scenarios, load, out, calibrate_too=True)
    finally:
        if not keep_up:
            stack.down()
    report.add_flags(results)
    found = report.targets(results)
    readings = report.quiet_readings(results)
    text = "\n\n".join(
        [
            report.header(info, readings),
            *report.quiet_warnings(readings),
            report.loadtest_table(results),
            "CPU per request, in ms (cores / req/s), during the Locust run:",
            report.cpu_table(results, "locust"),
            "CPU per request, in ms, during the wrk/pgbench run (the figures to trust: no Python"
            " load generator shares the cores):",
            report.cpu_table(results, "calibration"),
            f"Targets:\n{report.targets_text(found)}\n",
        ]
    )
    (out / "summary.md").write_text(text)
    report.write_json(out / "summary.json", {**info, "results": results, "targets": found})
    title = f"fourtier, configuration {config}: requests/s per scenario ({info['date']})"
    report.chart_loadtest(results, out / "throughput.png", title)
    print()
    print(text)
    print(f"== written: {out}/summary.md, summary.json, throughput.png")
    failed = [r["scenario"] for r in results if r["locust"]["exit_code"] != 0]
    if failed:
        print(
            f"== Locust failed (errors above its threshold, or did not run) in: {' '.join(failed)}"
        )
    return 1 if failed else 0
