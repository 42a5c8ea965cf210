#!/usr/bin/env python3
"""measure-hops.py - what each proxy hop costs a dynamic request: the same URL, /api/whoami, asked
at each tier's entry point in turn, and per request each tier's CPU time and context switches.

    .venv/bin/python scripts/measure-hops.py [--project fourtier] [--targets app lb ...]
                                             [--warmup 3] [--duration 10] [--json PATH]

A proxy in front of the app does little work per request: parse it, add a header or two, pass it
on, pass the answer back. But it must wait for the answer. With nothing else to do it sleeps (a
voluntary context switch), and the answer wakes it up again: a sleep and a wake-up per request,
each a trip through the kernel's scheduler, on cores the app needs too. A static file keeps the
same proxy busy without waiting. So the table below puts a dynamic request asked at app1, web1
and lb1 beside a static file asked at web1 and lb1: the same work for the proxy, with and without
the waiting. Two more rows test the other reasons the app could cost more behind the proxies: the
headers HAProxy and nginx add on the way (`app-headers`), and the load shared by two app nodes
(`app-both`). docs/load-testing.md, "Hops and wake-ups", has a reading and what it shows.

For each target, wrk (-t2 -c32, as the harness's calibration runs, loadtests/harness/calibrate.py)
sends a warm-up load, whose figures are thrown away, then the measured load. Every container's
counters are read just before and just after the measured run, never during it: a sampler
waking up every half second (the harness's) would add wake-ups of its own to what is counted.
  CPU       the container's cgroup counter (loadtests/harness/measure.py)
  switches  voluntary (the thread slept: it waited for something) and involuntary (the kernel
            took the core away from it), summed over every thread of the container
  machine   every context switch on the machine (/proc/stat `ctxt`): wrk's, Docker's, the
            kernel's own threads', and whatever else runs on it
Each is divided by the requests wrk completed. The idle stack's own work during the run
(healthchecks, Prometheus's scrapes: scripts/measure-idle.py) is spread over the requests too: a
few hundredths of a millisecond in all. The machine is not checked for quiet (the harness does
that): read the figures from a machine running nothing else.

The load goes only to the stack's own containers, at their addresses on the project's networks
(found as the harness finds them: loadtests/harness/reach.py), never through a published port.
The LBs must have their per-client limits and the HTTPS redirect of pages off, as the bench
stack has (loadtests/compose.bench.yml), else lb1 answers the load with 429s and the static file
with a redirect. The script checks both before any load, and asks every target once. To run the
main stack that way:

    make up COMPOSE="docker compose -f docker-compose.yml -f loadtests/compose.bench.yml"
"""

import argparse
import dataclasses
import http.client
import json
import resource
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from loadtests.harness import measure, reach  # noqa: E402  (after the path is set)
from loadtests.harness.calibrate import TIMEOUT, WRK_DIR  # noqa: E402
from loadtests.harness.stack import running_containers  # noqa: E402
from loadtests.locustfiles.targets import STATIC_PATH, WHOAMI_PATH  # noqa: E402

# The harness's wrk settings: two threads (one per core of our machines), as many connections as
# the scenarios have users (loadtests/scenarios/*.conf).
WRK_THREADS = 2
WRK_CONNECTIONS = 32
# report.lua prints wrk's figures as one JSON line (requests, duration, errors).
REPORT_LUA = WRK_DIR / "report.lua"
# A load that outlives its own -d by this much has hung: `timeout` ends it.
HANG_SECONDS = 30
# compose.bench.yml's value for "no limit", and what the harness's reports call "off".
NO_LIMIT = 10**9


class Target(NamedTuple):
    """One way of asking for a URL."""

    # The entry point, named as the harness names it: a key of reach.ENTRIES, which gives the
    # container, its port and the networks the host may reach it on.
    port: str
    path: str
    # Send what HAProxy and nginx add to a request before it reaches the app (forwarded_headers).
    forwarded_headers: bool
    # app1 and app2 at once: two wrk processes, each with half the threads and connections.
    both_app_nodes: bool


TARGETS = {
    "app": Target("BENCH_APP_PORT", WHOAMI_PATH, False, False),  # app1 alone
    "app-headers": Target("BENCH_APP_PORT", WHOAMI_PATH, True, False),  # as behind the proxies
    "app-both": Target("BENCH_APP_PORT", WHOAMI_PATH, False, True),  # app1 + app2
    "web": Target("BENCH_WEB_PORT", WHOAMI_PATH, False, False),  # web1 -> app
    "lb": Target("LB_HTTP_PORT", WHOAMI_PATH, False, False),  # lb1 -> web -> app
    "webstatic": Target("BENCH_WEB_PORT", STATIC_PATH, False, False),  # web1, from its disk
    "lbstatic": Target("LB_HTTP_PORT", STATIC_PATH, False, False),  # lb1 -> web
}
# The tiers of the table: a container's service name without its number (lb1, lb2 -> lb, as
# measure.by_tier sums them), and the column's title.
TIERS = {"app": "app", "web": "nginx", "lb": "HAProxy"}
# The tiers a dynamic request crosses from each entry point; a static file stops at nginx.
CROSSES = {
    "LB_HTTP_PORT": ("lb", "web", "app"),
    "BENCH_WEB_PORT": ("web", "app"),
    "BENCH_APP_PORT": ("app",),
}


def crossed(target: Target) -> tuple[str, ...]:
    tiers = CROSSES[target.port]
    return tuple(t for t in tiers if t != "app") if target.path == STATIC_PATH else tiers


def endpoint(project: str, containers: dict[str, dict], entry: reach.Entry) -> reach.Endpoint:
    """The entry point's address on one of its networks that accepts a connection. No fallback
    to the published port (reach.find has one): docker-proxy would add its own CPU and
    wake-ups to every request, the very thing measured here."""
    container = containers.get(entry.service)
    on = reach.addresses(container, project) if container else {}
    for network in entry.networks:
        if network in on and reach.accepts(on[network], entry.port):
            return reach.Endpoint(entry.service, on[network], entry.port, network)
    raise SystemExit(
        f"{entry.service}: no address on {', '.join(entry.networks)} accepts port {entry.port}"
        " (is it running? can this host reach the containers' networks?)"
    )


def forwarded_headers(project: str, containers: dict[str, dict]) -> dict[str, str]:
    """What a request that came through lb1 and web1 carries to the app beyond wrk's own headers:
    HAProxy's (haproxy.cfg: `option forwardfor`, X-Request-ID, X-LB, X-Forwarded-Proto) and
    nginx's (nginx/snippets/proxy-to-app.conf: X-Forwarded-For appended, X-Web). Neither sets
    X-Real-IP. Host is left as wrk sends it: nginx forwards the client's, of the same length."""
    lb_web = containers["lb1"]["NetworkSettings"]["Networks"][f"{project}_lb_web"]
    # The client is the host, on lb_web's gateway (docker-compose.yml fixes it at .1).
    client, lb = lb_web.get("Gateway") or lb_web["IPAddress"], lb_web["IPAddress"]
    return {
        "X-Forwarded-For": f"{client}, {lb}",  # HAProxy adds the client, nginx adds HAProxy
        "X-Forwarded-Proto": "http",
        "X-Request-ID": str(uuid.uuid4()),  # HAProxy's uuid(), passed on by nginx
        "X-LB": "lb1",
        "X-Web": "web1",
    }


def check_lb_edge(container: dict) -> None:
    """Stop unless lb1 would serve the whole load: its per-client limits lifted (else a 429 for
    every API read past 1,000 in 10 s) and no redirect of pages to HTTPS (else a 301 for the
    static file), as loadtests/compose.bench.yml sets them."""
    env = dict(item.split("=", 1) for item in container["Config"]["Env"] if "=" in item)
    limits = ("LB_LIMIT_CONNECTIONS", "LB_LIMIT_STATIC", "LB_LIMIT_API_READS")
    on = [f"{name}={env.get(name, 'default')}" for name in limits if not lifted(env.get(name))]
    if env.get("LB_HTTPS_REDIRECT", "on") != "off":
        on.append(f"LB_HTTPS_REDIRECT={env.get('LB_HTTPS_REDIRECT', 'on')}")
    if on:
        raise SystemExit(
            f"lb1 runs with its edge on ({', '.join(on)}): it would answer the load with 429s"
            " and the static file with a redirect. Start the stack with the bench overlay's LB"
            ' settings: make up COMPOSE="docker compose -f docker-compose.yml -f'
            ' loadtests/compose.bench.yml" (or measure the bench stack: --project'
            " fourtier-bench), or leave out the lb targets."
        )


def lifted(value: str | None) -> bool:
    return value is not None and value.isdigit() and int(value) >= NO_LIMIT


def status(where: reach.Endpoint, path: str, headers: dict[str, str]) -> int:
    """The status of one GET, redirects not followed: a target must answer 200 before it is
    loaded, so that no row measures error pages."""
    connection = http.client.HTTPConnection(where.host, where.port, timeout=5)
    try:
        connection.request("GET", path, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def thread_ids(cpu_file: Path) -> list[int]:
    """Every thread of every process in the container's cgroup (the directory of its CPU
    counter): cgroup.threads in cgroup v2, `tasks` in v1."""
    listing = cpu_file.parent / "cgroup.threads"
    if not listing.exists():
        listing = cpu_file.parent / "tasks"
    return [int(tid) for tid in listing.read_text().split()]


def thread_switches(tid: int) -> tuple[int, int] | None:
    """(voluntary, involuntary) context switches of one thread since it started; None if it has
    ended since it was listed. /proc/<tid>/status counts that thread alone, not its process."""
    try:
        text = Path(f"/proc/{tid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return int(fields["voluntary_ctxt_switches"]), int(fields["nonvoluntary_ctxt_switches"])


class Counters(NamedTuple):
    cpu: dict[str, float]  # container -> CPU seconds
    threads: dict[str, dict[int, tuple[int, int]]]  # container -> thread -> switches
    machine_switches: int  # /proc/stat ctxt: every switch on the machine since boot
    machine_busy: int  # /proc/stat: clock ticks busy, all cores (for how busy the machine was)
    machine_total: int
    generator: resource.struct_rusage  # this script's finished children: wrk and `timeout`


def read_counters(files: dict[str, Path]) -> Counters:
    cpu, threads = {}, {}
    for name, path in files.items():
        cpu[name] = measure.read_cgroup_seconds(path)
        found = {tid: thread_switches(tid) for tid in thread_ids(path)}
        threads[name] = {tid: counts for tid, counts in found.items() if counts}
    switches = busy = total = 0
    for line in Path("/proc/stat").read_text().splitlines():
        fields = line.split()
        if fields[0] == "ctxt":
            switches = int(fields[1])
        elif fields[0] == "cpu":
            # user nice system idle iowait irq softirq steal, in clock ticks, all cores
            ticks = [int(v) for v in fields[1:9]]
            total, busy = sum(ticks), sum(ticks) - ticks[3] - ticks[4]
    return Counters(
        cpu, threads, switches, busy, total, resource.getrusage(resource.RUSAGE_CHILDREN)
    )


def switches_between(before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]):
    """A container's (voluntary, involuntary) switches between two readings, thread by thread.
    A thread started during the run counts from zero. A thread that ended during the run is
    lost, its switches with it (keepalived's checks in the LB containers, a process Docker
    starts for a healthcheck): a few per second, against thousands of requests."""
    voluntary = involuntary = 0
    for tid, (v, i) in after.items():
        v0, i0 = before.get(tid, (0, 0))
        voluntary, involuntary = voluntary + v - v0, involuntary + i - i0
    return voluntary, involuntary


def wrk_commands(
    target: Target, endpoints: list[reach.Endpoint], headers: dict[str, str]
) -> list[list[str]]:
    """One wrk per endpoint, the threads and connections split between them. `--timeout` as the
    harness sets it: wrk's default (2 s) would count a slow answer as an error."""
    share = len(endpoints)
    commands = []
    for where in endpoints:
        command = ["wrk", "-t", str(WRK_THREADS // share), "-c", str(WRK_CONNECTIONS // share)]
        command += ["--timeout", TIMEOUT, "-s", str(REPORT_LUA)]
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        commands.append([*command, f"http://{where.host}:{where.port}{target.path}"])
    return commands


def load(commands: list[list[str]], seconds: int) -> list[dict]:
    """Run the wrk commands side by side for `seconds`; each stops itself (-d), and `timeout`
    ends any that hangs. Returns report.lua's figures of each."""
    limit = str(seconds + HANG_SECONDS)
    runs = [
        subprocess.Popen(
            ["timeout", "--kill-after=10", limit, *command, "-d", f"{seconds}s"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    figures = []
    for run in runs:
        out, err = run.communicate()
        line = next((x for x in out.splitlines() if x.startswith("WRK_JSON ")), None)
        if line is None:
            raise SystemExit(f"wrk gave no figures (exit {run.returncode}): {(err or out)[-300:]}")
        figures.append(json.loads(line.removeprefix("WRK_JSON ")))
    return figures


def measure_target(name: str, target: Target, setup: dict, warmup: int, seconds: int) -> dict:
    """Warm-up, then the measured run between two readings of the counters; per request."""
    commands = wrk_commands(target, setup["endpoints"][name], setup["headers"][name])
    if warmup:
        load(commands, warmup)
    before = read_counters(setup["files"])
    runs = load(commands, seconds)
    after = read_counters(setup["files"])
    requests = sum(r["requests"] for r in runs)
    errors = sum(r["errors"] for r in runs)
    if not requests:
        raise SystemExit(f"{name}: wrk completed no request")
    containers = {}
    for container in setup["files"]:
        voluntary, involuntary = switches_between(
            before.threads[container], after.threads[container]
        )
        containers[container] = {
            "cpu_ms": 1000 * (after.cpu[container] - before.cpu[container]) / requests,
            "voluntary": voluntary / requests,
            "involuntary": involuntary / requests,
        }
    # Per tier, its nodes summed (lb1 + lb2: lb2 is idle but for the stick table lb1 shares).
    tiers = {tier: {"cpu_ms": 0.0, "voluntary": 0.0, "involuntary": 0.0} for tier in TIERS}
    for container, figures in containers.items():
        tier = container.rstrip("0123456789")
        if tier in tiers:
            tiers[tier] = {key: tiers[tier][key] + figures[key] for key in figures}
    g0, g1 = before.generator, after.generator
    return {
        "entry": [str(e) for e in setup["endpoints"][name]],
        "path": target.path,
        "forwarded_headers": target.forwarded_headers,
        "crosses": list(crossed(target)),
        "requests": requests,
        "errors": errors,
        # Each wrk's own rate, summed: two side by side (app-both) each ran their own -d.
        "rps": sum(r["requests"] / (r["duration_us"] / 1e6) for r in runs),
        "p50_ms": max(r["p50_ms"] for r in runs),
        "p99_ms": max(r["p99_ms"] for r in runs),
        "machine_switches": (after.machine_switches - before.machine_switches) / requests,
        "machine_busy_pct": 100
        * (after.machine_busy - before.machine_busy)
        / max(after.machine_total - before.machine_total, 1),
        "tiers": tiers,
        "containers": containers,
        # wrk (and `timeout` around it), from the kernel's account of this script's children.
        "wrk": {
            "cpu_ms": 1000 * (g1.ru_utime + g1.ru_stime - g0.ru_utime - g0.ru_stime) / requests,
            "voluntary": (g1.ru_nvcsw - g0.ru_nvcsw) / requests,
            "involuntary": (g1.ru_nivcsw - g0.ru_nivcsw) / requests,
        },
    }


def table(results: dict[str, dict]) -> str:
    """Markdown: per target req/s, then per tier CPU ms and voluntary + involuntary switches per
    request ("-" for a tier the request does not cross: its figure is the idle stack's), then
    the machine's switches per request."""
    head = ["target", "req/s"]
    for title in TIERS.values():
        head += [f"{title} CPU ms", f"{title} switches"]
    head.append("machine's switches")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        cells = [name, f"{r['rps']:,.0f}"]
        for tier in TIERS:
            t = r["tiers"][tier]
            if tier in r["crosses"]:
                cells += [f"{t['cpu_ms']:.3f}", f"{t['voluntary']:.2f} + {t['involuntary']:.2f}"]
            else:
                cells += ["-", "-"]
        cells.append(f"{r['machine_switches']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--project", default="fourtier", help="Compose project (default fourtier)")
    parser.add_argument(
        "--targets", nargs="+", choices=list(TARGETS), default=list(TARGETS), help="default: all"
    )
    parser.add_argument("--warmup", type=int, default=3, help="seconds of load before each run")
    parser.add_argument("--duration", type=int, default=10, help="seconds of each measured run")
    parser.add_argument("--json", type=Path, help="also write every figure, per container")
    args = parser.parse_args()

    containers = running_containers(args.project)
    files = measure.container_cpu_files(containers)
    if any(TARGETS[name].port == "LB_HTTP_PORT" for name in args.targets):
        check_lb_edge(containers["lb1"])
    setup: dict = {"files": files, "endpoints": {}, "headers": {}}
    for name in args.targets:
        target = TARGETS[name]
        entry = reach.ENTRIES[target.port]
        entries = [entry]
        if target.both_app_nodes:
            entries.append(dataclasses.replace(entry, service="app2"))
        setup["endpoints"][name] = [endpoint(args.project, containers, e) for e in entries]
        headers = forwarded_headers(args.project, containers) if target.forwarded_headers else {}
        setup["headers"][name] = headers
        for where in setup["endpoints"][name]:
            answer = status(where, target.path, headers)
            if answer != 200:
                raise SystemExit(f"{name}: {where} answers {target.path} with {answer}, not 200")

    started = datetime.now(UTC)
    print(
        f"{args.project}, {started:%Y-%m-%d %H:%M} UTC: wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS},"
        f" {args.warmup} s warm-up then {args.duration} s per target",
        flush=True,
    )
    results = {}
    # The whole run is one long load: it waits for, then holds, the machine's heavy-load lock,
    # so that no other benchmark shares the cores with it (loadtests/harness/measure.py).
    with measure.heavy_lock(len(args.targets) * (args.warmup + args.duration)):
        for name in args.targets:
            r = measure_target(name, TARGETS[name], setup, args.warmup, args.duration)
            results[name] = r
            print(
                f"   {name:12s} {r['rps']:8,.0f} req/s, {r['errors']} errors, machine"
                f" {r['machine_busy_pct']:.0f}% busy  ({', '.join(r['entry'])})",
                flush=True,
            )

    print()
    print("Per request: CPU ms; switches voluntary + involuntary; app = app1 + app2,")
    print("nginx = web1 + web2, HAProxy = lb1 + lb2; machine's switches from /proc/stat.")
    print()
    print(table(results))
    failed = {name: r["errors"] for name, r in results.items() if r["errors"]}
    if failed:
        print(f"\nWARNING: errors (wrk: connection, timeout or status >= 400): {failed}")
    if args.json:
        settings = {"threads": WRK_THREADS, "connections": WRK_CONNECTIONS}
        settings |= {"warmup_s": args.warmup, "duration_s": args.duration}
        report = {"project": args.project, "started": started.isoformat(timespec="seconds")}
        report |= {"wrk": settings, "targets": results}
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
