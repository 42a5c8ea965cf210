"""Per-tier time series over each run: from the stack's own Prometheus (requests/s, errors/s, p95
per node, the recording rules of monitor/rules/fourtier.yml) and, for CPU, from the containers'
cgroups as the harness sampled them (Prometheus has no per-container CPU here: no cAdvisor).
Drawn as one chart per scenario, beside the report's own: tiers-<scenario>.png.

A configuration without Prometheus (no-monitoring) gets the CPU chart alone.
"""

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

# Panel title -> the recording rule it draws (one line per node).
RULES = {
    "requests/s": "node:requests:rate10s",
    "errors/s": "node:errors:rate10s",
    "p95 latency, s (app)": "node:latency_seconds:p95_30s",
}
# Seconds between two scrapes (monitor/prometheus.yml, scrape_interval).
SCRAPE_INTERVAL = 2.0
TIER_COLOURS = {"lb": "#4c72b0", "web": "#55a868", "app": "#c44e52", "db": "#8172b2"}


def base_url(env: dict[str, str]) -> str:
    """Prometheus as the stack publishes it on the loopback (PROMETHEUS_PORT)."""
    return f"http://127.0.0.1:{env.get('PROMETHEUS_PORT', '9090')}"


def query_range(url: str, promql: str, start: float, end: float) -> dict[str, list]:
    """'tier/node' -> [[seconds since start, value], ...], one point a second."""
    params = urllib.parse.urlencode({"query": promql, "start": start, "end": end, "step": 1})
    with urllib.request.urlopen(f"{url}/api/v1/query_range?{params}", timeout=10) as response:
        result = json.load(response)["data"]["result"]
    return {
        f"{r['metric'].get('tier', '?')}/{r['metric'].get('node', '?')}": [
            [round(float(t) - start, 1), float(v)] for t, v in r["values"]
        ]
        for r in result
    }


def over_run(env: dict[str, str], start: float, end: float) -> dict:
    """Every rule's series over [start, end] (wall-clock seconds); {"error": ...} when there is no
    Prometheus to ask (a configuration without monitoring)."""
    url = base_url(env)
    try:
        return {title: query_range(url, rule, start, end) for title, rule in RULES.items()}
    except (OSError, ValueError, KeyError) as error:
        return {"error": f"no figures from Prometheus at {url}: {error}"}


def wait_for_evaluation(env: dict[str, str], after: float, limit: float = 10.0) -> None:
    """Poll until Prometheus' recording rules have a point later than `after` (wall-clock
    seconds) plus one scrape interval, so a run's last seconds are in its figures; at most `limit`
    seconds, and not at all when there is no Prometheus."""
    url, deadline = base_url(env), time.monotonic() + limit
    params = urllib.parse.urlencode({"query": "max(timestamp(node:requests:rate10s))"})
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/v1/query?{params}", timeout=2) as response:
                result = json.load(response)["data"]["result"]
        except (OSError, ValueError, KeyError):
            return
        if result and float(result[0]["value"][1]) > after + SCRAPE_INTERVAL:
            return
        time.sleep(0.5)


def cpu_over_run(readings: list) -> dict[str, list]:
    """'tier/node' -> [[seconds, cores], ...] from the harness's cgroup samples
    ([seconds, {container: cores}] pairs, measure.Sampler)."""
    series: dict[str, list] = {}
    for seconds, cores in readings:
        for name, value in cores.items():
            tier = name.rstrip("0123456789")
            if tier in TIER_COLOURS:
                series.setdefault(f"{tier}/{name}", []).append([seconds, value])
    return series


def chart(figures: dict, cpu: dict[str, list], path: Path, title: str) -> None:
    """One panel per figure, one line per node, coloured by tier."""
    panels = {k: v for k, v in figures.items() if k != "error"}
    panels["CPU, cores (cgroups)"] = cpu
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.2 * len(panels)), sharex=True)
    axes = axes if len(panels) > 1 else [axes]
    for ax, (name, series) in zip(axes, panels.items(), strict=True):
        for key, points in sorted(series.items()):
            if points:
                xs, ys = zip(*points, strict=True)
                tier, node = key.split("/")
                # Same colour for a tier's nodes; the second node of each tier dashed.
                style = "--" if node.endswith(("2", "4")) else "-"
                ax.plot(xs, ys, style, label=node, color=TIER_COLOURS.get(tier))
        ax.set_ylabel(name, fontsize=8)
        ax.grid(alpha=0.3)
        if series:
            ax.legend(fontsize=7, ncol=6, loc="upper right")
    if "error" in figures:
        axes[0].set_title(figures["error"], fontsize=7)
    axes[-1].set_xlabel("seconds into the run")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
