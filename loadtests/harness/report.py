"""Tables, JSON and charts of a run: what `make loadtest` and `make compare` print and write.

Flags, per scenario, for figures that may be the load generator's limit rather than the tier's:
  cpu       Locust warned that a process of its own was above 90% CPU;
  ceiling   Locust's figure is at least 80% of its ceiling on this machine (generator-ceiling);
  <0.8 wrk  Locust got less than 0.8 x what wrk (or pgbench) got from the same URL.
"""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

NEAR_CEILING = 0.8
MIN_RATIO = 0.8
# The targets one `make loadtest` checks, all on the C tool's figures (Locust's own cost per
# request would blur them). Ratios of req/s: (scenario, the scenario it is held against, factor).
RATIO_TARGETS = [
    ("web-static", "generator-ceiling", 0.5),  # nginx sending a file vs nginx's `return 200`
    ("lb-static", "generator-ceiling", 0.3),  # the same file, through HAProxy too
    ("lb-dynamic", "app-whoami", 0.8),  # the whole stack vs Gunicorn alone
]
# The app tier's CPU per request, in ms, at most: (scenario, limit).
APP_CPU_TARGETS = [("app-whoami", 0.3), ("app-messages", 1.2)]
# Where "Locust >= 0.8 x the C tool" is reported, as information: the tiers with the least work
# per request, where Locust's own cost shows most.
LOCUST_RATIO_INFO = ["app-whoami", "app-messages", "db-messages"]
CPU_COLUMNS = ["lb", "web", "app", "db", "etcd", "monitor", "proxy", "storage", "dockerd"]
TIER_COLOURS = {
    "lb": "#4c72b0",
    "web": "#55a868",
    "app": "#c44e52",
    "db": "#8172b2",
    "generator": "#999999",
}


def fmt(value, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def row(*cells) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def add_flags(results: list[dict]) -> None:
    ceiling = next((r["locust"]["rps"] for r in results if r["tier"] == "generator"), None)
    for r in results:
        flags, locust, cal = [], r["locust"], r.get("calibration")
        if locust.get("cpu_warning"):
            flags.append("cpu")
        http = r["tier"] != "db"  # the ceiling was measured with Locust's HTTP client
        if (
            ceiling
            and http
            and r["tier"] != "generator"
            and locust["rps"] >= NEAR_CEILING * ceiling
        ):
            flags.append("ceiling")
        if cal and cal.get("rps"):
            r["ratio"] = round(locust["rps"] / cal["rps"], 2)
            if r["ratio"] < MIN_RATIO:
                flags.append(f"<{MIN_RATIO} {cal['tool']}")
        r["flags"] = flags


def loadtest_table(results: list[dict]) -> str:
    """The per-tier table, as Markdown (readable as plain text too)."""
    head = (
        "| tier | scenario | req/s | p50 ms | p95 ms | p99 ms | fail % | Locust CPU (cores) "
        "| C tool req/s | Locust / C tool | flags |"
    )
    lines = [head, "|" + "---|" * 11]
    for r in results:
        lo, cal = r["locust"], r.get("calibration") or {}
        tool = f"{fmt(cal.get('rps'))} ({cal['tool']})" if cal.get("rps") else "-"
        lines.append(
            row(
                r["tier"],
                r["scenario"],
                fmt(lo["rps"]),
                fmt(lo["p50_ms"]),
                fmt(lo["p95_ms"]),
                fmt(lo["p99_ms"]),
                fmt(lo["fail_pct"], 2),
                fmt(lo["cpu_cores"], 2),
                tool,
                fmt(r.get("ratio"), 2),
                " ".join(r.get("flags", [])) or "-",
            )
        )
    return "\n".join(lines)


# The machine under a run, after its CPU table: a core's speed before and after it (ms for a fixed
# piece of work, measure.core_speed_ms), then hypervisor steal (% of all CPU time), I/O stall
# (% of the time some task waited on I/O) and the machine's context switches per request during
# it, from measure.noise_between. A server that sleeps and is woken for a request costs two
# switches; one that finds the next request already waiting costs none: the switches tell why the
# same hop costs more CPU on one path than on another.
NOISE_COLUMNS = ["core ms before, after", "steal %", "I/O stall %", "switches per request"]


def core_speeds(before: float | None, noise: dict) -> str:
    """A core's speed before and after a run, in ms for the fixed work (measure.core_speed_ms)."""
    return f"{fmt(before, 2)}, {fmt(noise.get('core_ms_after'), 2)}"


def per_request(cores: float | None, rps: float | None) -> float | None:
    """CPU time per request, in ms, from cores used and requests per second."""
    return 1000 * cores / rps if cores is not None and rps else None


def switches_per_request(noise: dict, rps: float | None) -> float | None:
    """The whole machine's context switches per request, from a run's noise (measure.noise_between)
    and its requests per second; None for a run without the reading, or without requests."""
    switches = noise.get("switches_per_s")
    return switches / rps if switches is not None and rps else None


def cpu_table(results: list[dict], run: str) -> str:
    """Where the CPU went, per request, during one kind of run (`locust`, or `calibration`: the C
    tool's): the load generator, each tier, Docker (proxy, logs). Beside it, the whole machine's
    CPU just before the run, with the stack idle (the quiet-machine check), and after it the
    machine: a core's speed before and after the run, steal, I/O stall and context switches per
    request during it."""
    generator = "Locust" if run == "locust" else "wrk/pgbench"
    lines = [
        row("scenario", "req/s", "idle CPU % before", generator, *CPU_COLUMNS, *NOISE_COLUMNS),
        "|" + "---|" * (len(CPU_COLUMNS) + 4 + len(NOISE_COLUMNS)),
    ]
    for r in results:
        m = r.get(run) or {}
        rps, tiers = m.get("rps"), m.get("cpu_by_tier", {})
        quiet, noise = m.get("quiet") or {}, m.get("noise") or {}
        cells = [fmt(per_request(tiers.get(t), rps), 2) for t in CPU_COLUMNS]
        lines.append(
            row(
                r["scenario"],
                fmt(rps),
                fmt(quiet.get("idle_cpu_pct"), 1),
                fmt(per_request(m.get("cpu_cores"), rps), 2),
                *cells,
                core_speeds(quiet.get("core_ms"), noise),
                fmt(noise.get("steal_pct"), 2),
                fmt(noise.get("io_stall_pct"), 1),
                fmt(switches_per_request(noise, rps), 1),
            )
        )
    return "\n".join(lines)


def quiet_readings(results: list[dict]) -> list[tuple[str, dict]]:
    """(which run, its quiet-machine check), for every run of a `make loadtest`."""
    found = []
    for r in results:
        found.append((f"{r['scenario']} (Locust)", r["locust"].get("quiet")))
        cal = r.get("calibration")
        if cal:
            found.append((f"{r['scenario']} ({cal['tool']})", cal.get("quiet")))
    return [(label, quiet) for label, quiet in found if quiet]


def quiet_warnings(readings: list[tuple[str, dict]]) -> list[str]:
    """A loud paragraph when some run started on a busy machine, another when some started on
    slow cores (measure.cores_slow); nothing otherwise."""
    noisy = [f"{label} {q['idle_cpu_pct']:.0f}%" for label, q in readings if not q["quiet"]]
    slow = [f"{label} {q['core_ms']:.1f} ms" for label, q in readings if q.get("slow_cores")]
    found = []
    if noisy:
        found.append(
            f"**WARNING: the machine never got quiet before {len(noisy)} of {len(readings)} runs**"
            f" ({', '.join(noisy)}, whole-machine CPU with the stack idle): those figures include"
            " someone else's load. Run again when the machine is quiet."
        )
    if slow:
        found.append(
            f"**WARNING: the cores were still slow before {len(slow)} of {len(readings)} runs**"
            f" ({', '.join(slow)} for the fixed work): those runs had slower cores than the"
            " others. Run again."
        )
    return found


def header(info: dict, readings: list[tuple[str, dict]]) -> str:
    m, v = info["machine"], info["versions"]
    warmup = "Locust's statistics start once every user is running (reset-stats)"
    if info.get("warmup_s"):
        warmup = (
            f"wrk and pgbench first run {info['warmup_s']} s of the same load, whose figures are"
            f" discarded; {warmup}"
        )
    pcts = [q["idle_cpu_pct"] for _, q in readings]
    noisy = sum(not q["quiet"] for _, q in readings)
    wait = f"waiting up to {info['quiet_wait_s']} s" if info["quiet_wait_s"] else "never waiting"
    quiet = (
        f"- quiet-machine check before each run (whole-machine CPU over"
        f" {info['quiet_sample_s']:.0f} s with the stack idle, at most"
        f" {info['quiet_cpu_pct']:.0f}% of all cores, {wait}):"
        f" {fmt(min(pcts, default=None), 1)}-{fmt(max(pcts, default=None), 1)}%, "
        + (f"{noisy} of {len(readings)} runs NOT quiet" if noisy else "every run quiet")
    )
    slow = sum(bool(q.get("slow_cores")) for _, q in readings)
    cores = [q["core_ms"] for _, q in readings if q.get("core_ms")]
    quiet += (
        f"; then a core timed on a fixed piece of work, waiting while it took over"
        f" {info['slow_cores_ratio']} x its fastest: {fmt(min(cores, default=None), 2)}-"
        f"{fmt(max(cores, default=None), 2)} ms, "
        + (f"{slow} of {len(readings)} runs on slow cores" if slow else "no run on slow cores")
    )
    lines = [
        f"- date: {info['date']}; commit {m['commit']}; configuration `{info['config']}`",
        f"- machine: {m['cores']} cores ({m['cpu']}), {m['memory']}, {m['os']}, "
        f"kernel {m['kernel']}",
        f"- Docker: storage driver {m['docker_storage_driver']}, default log driver"
        f" {m['docker_logging_driver']}, cgroup v{m['cgroup_version']}; the stack's containers"
        f" log with {m['container_log_driver']}",
        f"- path: {info['path']}",
        "- versions: " + "; ".join(f"{k} {val}" for k, val in v.items()),
        f"- load: {info['duration_s']} s per scenario and per tool, "
        + (
            f"from {info['tool']}"
            if info.get("tool", "Locust") != "Locust"
            else f"Locust {info['locust_version']} with {info['processes']} process(es)"
        ),
        f"- warm-up: {warmup}",
        quiet,
    ]
    if info.get("settings"):
        lines.append("- running: " + "; ".join(f"{k} {val}" for k, val in info["settings"].items()))
    return "\n".join(lines)


def targets(results: list[dict]) -> list[dict]:
    """The issue's targets that a single `make loadtest` run can check, judged on the C tool's
    runs; then, as information, how close Locust came to the C tool."""
    calibration = {r["scenario"]: r["calibration"] for r in results if r.get("calibration")}
    locust = {r["scenario"]: r["locust"] for r in results}
    found = []
    for name, base, factor in RATIO_TARGETS:
        if calibration.get(name, {}).get("rps") and calibration.get(base, {}).get("rps"):
            ratio = calibration[name]["rps"] / calibration[base]["rps"]
            tool = calibration[name]["tool"]
            found.append(
                {
                    "target": f"{name} >= {factor} x {base}, by {tool} (req/s)",
                    "value": round(ratio, 2),
                    "met": ratio >= factor,
                }
            )
    for name, limit in APP_CPU_TARGETS:
        by_tool = app_ms(calibration.get(name))
        if by_tool is None:
            continue
        by_locust = app_ms(locust.get(name))
        found.append(
            {
                "target": f"app CPU per request on {name} <= {limit} ms,"
                f" judged on the {calibration[name]['tool']} run",
                "value": f"{by_tool:.2f} ms ({fmt(by_locust, 2)} ms during the Locust run)",
                "met": by_tool <= limit,
            }
        )
    for r in results:
        if r["scenario"] in LOCUST_RATIO_INFO and r.get("ratio") is not None:
            found.append(
                {
                    "target": f"Locust >= {MIN_RATIO} x {r['calibration']['tool']}"
                    f" on {r['scenario']}",
                    "value": r["ratio"],
                    "met": r["ratio"] >= MIN_RATIO,
                    "info": True,
                }
            )
    return found


def app_ms(run: dict | None) -> float | None:
    """The app tier's CPU per request in one run, in ms."""
    if not run:
        return None
    return per_request(run.get("cpu_by_tier", {}).get("app"), run.get("rps"))


def targets_text(found: list[dict]) -> str:
    """One line per target: MET or MISSED; `info` for lines given as information only."""
    lines = []
    for t in found:
        verdict = "info  " if t.get("info") else "MET   " if t["met"] else "MISSED"
        lines.append(f"- {verdict} {t['target']}: {t['value']}")
    return "\n".join(lines)


def chart_loadtest(results: list[dict], path: Path, title: str) -> None:
    """Requests/s per scenario, coloured by tier; the C tool's figure as an outlined bar beside."""
    names = [r["scenario"] for r in results]
    ys = range(len(results))
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(results) + 1.5))
    ax.barh(
        [y + 0.2 for y in ys],
        [r["locust"]["rps"] for r in results],
        height=0.4,
        color=[TIER_COLOURS.get(r["tier"], "#333") for r in results],
        label="Locust",
    )
    ax.barh(
        [y - 0.2 for y in ys],
        [(r.get("calibration") or {}).get("rps") or 0 for r in results],
        height=0.4,
        fill=False,
        edgecolor="#333",
        label="wrk / pgbench",
    )
    ax.set_yticks(list(ys), names)
    ax.invert_yaxis()
    ax.set_xlabel("requests per second (higher is better)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")
