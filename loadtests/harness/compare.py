"""`make compare`: the same scenarios under several configurations, repeated, side by side.

The stack is brought up fresh in each configuration, in turn, for each repeat, the order reversed
every other repeat (a b c, c b a, a b c, ...): slow drift of a noisy machine spreads over every
configuration instead of favouring one, and no configuration always runs first or always last. Each
figure is the median over the repeats, with min-max beside it, and the spread, (max - min) /
median: a difference between two configurations smaller than their spreads is noise. Every run
starts on a quiet machine (measure.wait_for_quiet). No calibration here: the table compares
configurations with one load generator, Locust by default (`make loadtest` tells how far to trust
it), or the C tools (`--tool c`: wrk, pgbench for the database scenario), which leave the cores to
the servers and spread less. Beside each figure, the CPU per request of every tier (medians over
the repeats, from the containers' cgroups): on a machine whose cores are all busy, throughput is
the cores divided by the whole CPU per request, so a configuration's cost shows there first, and
with less noise than in requests/s.

A configuration may be several overlays joined by '+' (`tutorial-default+remote-db`), applied in
that order.

Writes loadtests/results/<time>-compare/: <config>/rep<N>/ with every run's Locust files, then
compare.json, compare.md (the printed report) and compare.png; each run also has its
tiers-<scenario>.png (each node over the run, loadtests/harness/prometheus.py).
"""

import statistics
from pathlib import Path

from . import calibrate, loadtest, report
from .scenarios import Scenario
from .stack import Stack, config_description

# What configurations change: the dynamic and database-bound paths, plus static as a control.
DEFAULT_SCENARIOS = ["lb-static", "lb-dynamic", "lb-messages", "app-whoami", "app-messages"]
# The comparison targets, on the database-bound endpoint through the whole stack: (configuration,
# the baseline it is held against, factor of median req/s), and its p95 no worse. Each is checked
# when both configurations are in the run. The same 3 x at 5 ms (remote-db-5ms.yml): at 2 ms this
# 2-core machine's CPU caps `default` below 3 x (docs/load-testing.md, "Measured").
PAIR_TARGETS = [
    ("default", "tutorial-default", 2.5),
    ("default+remote-db", "tutorial-default+remote-db", 3.0),
    ("default+remote-db-5ms", "tutorial-default+remote-db-5ms", 3.0),
]
PAIR_SCENARIO = "lb-messages"
# Repeats of one scenario in one configuration should agree within this (max - min) / median.
MAX_SPREAD_PCT = 15.0


# The CPU-per-request table's columns: the load generator, each tier, Docker's own processes.
CPU_COLUMNS = ["generator", *report.CPU_COLUMNS]


def cpu_per_request(run: dict) -> dict[str, float | None]:
    """One run's CPU per request in ms: by column, and the whole (`total`)."""
    tiers = run.get("cpu_by_tier", {})
    cores = {"generator": run.get("cpu_cores"), **{t: tiers.get(t) for t in report.CPU_COLUMNS}}
    found = {k: report.per_request(v, run["rps"]) for k, v in cores.items()}
    # Every container and Docker process counted (tiers not in the columns too), and the generator.
    whole = sum(tiers.values()) + (run.get("cpu_cores") or 0.0)
    found["total"] = report.per_request(whole, run["rps"])
    return found


def median_of(values: list[float | None]) -> float | None:
    """The median of the values there are (a run without a reading gives None), or None."""
    found = [v for v in values if v is not None]
    return statistics.median(found) if found else None


def summarise(runs: list[dict]) -> dict:
    """Median and range over the repeats of one scenario in one configuration."""
    rps = [r["rps"] for r in runs]
    requests = sum(r["requests"] for r in runs)
    failed = sum(r["requests"] * r["fail_pct"] / 100 for r in runs)

    def median(key: str) -> float | None:
        return median_of([r[key] for r in runs])

    mid = statistics.median(rps)
    per_request = [cpu_per_request(r) for r in runs]
    cpu_ms = {
        column: median_of([p[column] for p in per_request]) for column in [*CPU_COLUMNS, "total"]
    }
    switches = [report.switches_per_request(r.get("noise") or {}, r["rps"]) for r in runs]
    return {
        "rps": mid,
        "rps_min": min(rps),
        "rps_max": max(rps),
        "spread_pct": round(100 * (max(rps) - min(rps)) / mid, 1) if mid else None,
        "p50_ms": median("p50_ms"),
        "p95_ms": median("p95_ms"),
        "p99_ms": median("p99_ms"),
        "fail_pct": round(100 * failed / requests, 2) if requests else 100.0,
        "cpu_warning": any(r.get("cpu_warning") for r in runs),
        "cpu_ms": cpu_ms,
        # The machine's context switches per request (report.switches_per_request), median.
        "switches": median_of(switches),
        "repeats": len(runs),
        "each": [each_repeat(r, p["total"]) for r, p in zip(runs, per_request, strict=True)],
    }


def each_repeat(run: dict, cpu_ms: float | None) -> dict:
    """One repeat's figures beside the machine's noise (measure.noise_between): the cores the
    stack and the generator kept busy, the whole CPU per request, a core's speed before and
    after the run (measure.core_speed_ms), steal, iowait, I/O stall and context switches per
    request during it. A slow repeat with the same CPU per request had fewer cores (steal,
    waits); one with more CPU per request did more work per request, or ran on slower cores:
    every tier's share grown alike says slower cores, one tier's alone says that tier."""
    cores = sum(run.get("cpu_by_tier", {}).values()) + (run.get("cpu_cores") or 0.0)
    core_ms = (run.get("quiet") or {}).get("core_ms")
    noise = run.get("noise") or {}
    found = {"rps": run["rps"], "cores": round(cores, 2), "cpu_ms": cpu_ms, "core_ms": core_ms}
    return found | noise | {"switches": report.switches_per_request(noise, run["rps"])}


def tables(summary: dict, configs: list[str], scenarios: list[Scenario]) -> str:
    parts = []
    for s in scenarios:
        rows = {c: summary[c][s.name] for c in configs if s.name in summary[c]}
        best = max((r["rps"] for r in rows.values()), default=0) or 1
        parts.append(f"### {s.name} ({s.tier} tier): {s.description}\n")
        header = ["configuration", "req/s median (min-max)", "spread %", "% of best", "p50 ms"]
        parts.append(report.row(*header, "p95 ms", "p99 ms", "errors %"))
        parts.append("|---|---|---|---|---|---|---|---|")
        for c, r in rows.items():
            cpu = " (Locust CPU warning)" if r["cpu_warning"] else ""
            rps = f"{report.fmt(r['rps'])} ({report.fmt(r['rps_min'])}-{report.fmt(r['rps_max'])})"
            parts.append(
                report.row(
                    c,
                    rps + cpu,
                    report.fmt(r["spread_pct"]),
                    f"{100 * r['rps'] / best:.0f}%",
                    report.fmt(r["p50_ms"]),
                    report.fmt(r["p95_ms"]),
                    report.fmt(r["p99_ms"]),
                    report.fmt(r["fail_pct"], 2),
                )
            )
        parts.append("")
        parts.append(f"CPU per request, ms, and context switches (medians), {s.name}:\n")
        parts.append(report.row("configuration", *CPU_COLUMNS, "total", "switches"))
        parts.append("|" + "---|" * (len(CPU_COLUMNS) + 3))
        for c, r in rows.items():
            cells = [report.fmt(r["cpu_ms"][k], 3) for k in [*CPU_COLUMNS, "total"]]
            parts.append(report.row(c, *cells, report.fmt(r["switches"], 1)))
        parts.append("")
        if any(len(r.get("each", [])) > 1 for r in rows.values()):
            parts.append(f"Each repeat and the machine's noise during it, {s.name}:\n")
            parts.append(repeat_table(rows))
            parts.append("")
    return "\n".join(parts)


def repeat_table(rows: dict[str, dict]) -> str:
    """Every repeat of one scenario: its req/s, cores busy, CPU per request, and the machine: a
    core's speed before and after the run (ms for measure.core_speed_ms's fixed work),
    steal, iowait (% of all CPU time), I/O stall (% of the time some task waited on I/O) and
    context switches per request."""
    header = ["configuration", "repeat", "req/s", "cores busy", "CPU ms/request"]
    machine = ["core ms before, after", "steal %", "iowait %", "I/O stall %", "switches/request"]
    lines = [report.row(*header, *machine), "|" + "---|" * (len(header) + len(machine))]
    for c, r in rows.items():
        for i, e in enumerate(r.get("each", []), 1):
            lines.append(
                report.row(
                    c,
                    str(i),
                    report.fmt(e["rps"]),
                    report.fmt(e["cores"], 2),
                    report.fmt(e["cpu_ms"], 3),
                    report.core_speeds(e.get("core_ms"), e),
                    report.fmt(e.get("steal_pct"), 2),
                    report.fmt(e.get("iowait_pct"), 2),
                    report.fmt(e.get("io_stall_pct"), 1),
                    report.fmt(e.get("switches"), 1),
                )
            )
    return "\n".join(lines)


def targets(summary: dict, repeats: int) -> list[dict]:
    """The comparison targets whose configurations were run, then the spread of every median."""
    found = []
    for new_config, old_config, factor in PAIR_TARGETS:
        new = summary.get(new_config, {}).get(PAIR_SCENARIO)
        old = summary.get(old_config, {}).get(PAIR_SCENARIO)
        if not (new and old):
            continue
        ratio = new["rps"] / old["rps"] if old["rps"] else 0
        found += [
            {
                "target": f"{new_config} >= {factor} x {old_config} on {PAIR_SCENARIO}"
                " (req/s, medians)",
                "value": round(ratio, 2),
                "met": ratio >= factor,
            },
            {
                "target": f"{new_config}'s p95 no worse than {old_config}'s on {PAIR_SCENARIO}"
                " (ms)",
                "value": f"{report.fmt(new['p95_ms'])} vs {report.fmt(old['p95_ms'])}",
                "met": (new["p95_ms"] or 0) <= (old["p95_ms"] or 0),
            },
        ]
    if repeats < 2:
        return found  # one run has no spread to speak of
    names = dict.fromkeys(name for runs in summary.values() for name in runs)  # in run order
    for name in names:
        for config in summary:
            r = summary[config].get(name)
            if r is None:
                continue
            found.append(
                {
                    "target": f"spread <= {MAX_SPREAD_PCT:.0f}% over {repeats} repeats:"
                    f" {name}, {config}",
                    "value": f"{report.fmt(r['spread_pct'])}%",
                    "met": r["spread_pct"] is not None and r["spread_pct"] <= MAX_SPREAD_PCT,
                }
            )
    return found


def chart(
    summary: dict, configs: list[str], scenarios: list[Scenario], path: Path, title: str
) -> None:
    plt = report.plt
    width = 0.8 / len(configs)
    fig, ax = plt.subplots(figsize=(max(8, 1.6 * len(scenarios) * max(1, len(configs) / 2)), 4.8))
    for i, c in enumerate(configs):
        xs = [j + (i - (len(configs) - 1) / 2) * width for j in range(len(scenarios))]
        rows = [summary[c].get(s.name) for s in scenarios]
        med = [r["rps"] if r else 0 for r in rows]
        err = [
            [m - r["rps_min"] if r else 0 for m, r in zip(med, rows, strict=True)],
            [r["rps_max"] - m if r else 0 for m, r in zip(med, rows, strict=True)],
        ]
        ax.bar(xs, med, width, yerr=err, capsize=2, label=c)
    ax.set_xticks(range(len(scenarios)), [s.name for s in scenarios])
    ax.set_ylabel("requests per second (median, min-max)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_order(configs: list[str], rep: int) -> list[str]:
    """The configurations' order in repeat `rep` (from 1): as given, reversed every other repeat.
    Always in one order, each configuration would always follow the same other one, at the same
    point of every repeat: a bias that such a comparison cannot tell from a configuration's own
    cost. Reversed every other repeat, each one runs early and late alike."""
    return list(configs) if rep % 2 == 1 else list(reversed(configs))


def main(
    stack: Stack,
    configs: list[str],
    scenarios: list[Scenario],
    load: loadtest.Load,
    repeats: int,
    tool: str = "locust",
) -> int:
    if tool == "c" and calibrate.wrk_missing():
        print("== --tool c needs wrk: make wrk (or apt-get install wrk)")
        return 2
    out = loadtest.new_results_dir("compare")
    print(f"== results: {out}")
    runs: dict[str, dict[str, list[dict]]] = {c: {} for c in configs}
    settings: dict[str, dict] = {}
    info = None
    try:
        for rep in range(1, repeats + 1):
            for config in run_order(configs, rep):
                print(f"== repeat {rep}/{repeats}, configuration {config}")
                stack.up(config)
                if info is None:
                    info = loadtest.run_info(stack, load)
                settings.setdefault(config, stack.settings())
                rep_dir = out / config / f"rep{rep}"
                rep_dir.mkdir(parents=True)
                measured = loadtest.measure_all(
                    stack, scenarios, load, rep_dir, calibrate_too=False, tool=tool
                )
                for r in measured:
                    run = r["locust"] if tool == "locust" else r["calibration"]
                    runs[config].setdefault(r["scenario"], []).append(run)
    finally:
        stack.down()
    summary = {c: {name: summarise(rs) for name, rs in runs[c].items()} for c in configs}
    found = targets(summary, repeats)
    info["config"] = ", ".join(configs)
    info["tool"] = "Locust" if tool == "locust" else "wrk (pgbench for the database)"
    if tool == "locust":
        info["warmup_s"] = 0  # no wrk or pgbench run here
    info.pop("settings", None)
    readings = [
        (f"{name}, {c}, repeat {i}", run["quiet"])
        for c in configs
        for name, rs in runs[c].items()
        for i, run in enumerate(rs, 1)
    ]
    lines = [
        f"## Comparison: {', '.join(configs)} ({repeats} repeats, load from {info['tool']})",
        "",
        report.header(info, readings),
        "",
        *(f"{w}\n" for w in report.quiet_warnings(readings)),
    ]
    lines += ["| configuration | what it changes | running |", "|---|---|---|"]
    for c in configs:
        running = "; ".join(f"{k} {v}" for k, v in settings[c].items())
        lines.append(f"| {c} | {config_description(c)} | {running} |")
    lines += ["", tables(summary, configs, scenarios)]
    if found:
        lines += ["Targets:", report.targets_text(found), ""]
    text = "\n".join(lines)
    (out / "compare.md").write_text(text)
    report.write_json(
        out / "compare.json",
        {
            **info,
            "repeats": repeats,
            "settings": settings,
            "summary": summary,
            "runs": runs,
            "targets": found,
        },
    )
    chart(
        summary,
        configs,
        scenarios,
        out / "compare.png",
        f"fourtier: {' vs '.join(configs)} ({info['date']}, {repeats} repeats)",
    )
    print()
    print(text)
    print(f"== written: {out}/compare.md, compare.json, compare.png")
    return 0
