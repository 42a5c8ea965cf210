"""Command line of the harness (the Makefile's loadtest, compare and smoke targets call it).

python -m loadtests.harness loadtest [--config default] [--duration 20] [--scenarios "a b"]
python -m loadtests.harness compare --configs "tutorial-default default" [--repeats 3]
python -m loadtests.harness list

A configuration name may join several overlays with '+': --configs "default default+db-pool-1".
"""

import argparse
import os
import sys
from pathlib import Path

from . import compare, loadtest, scenarios
from .loadtest import Load
from .stack import SMOKE_ENV, Stack, config_description, config_files, config_names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.harness", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the scenarios and the configurations")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--scenarios", default="", help="names, space-separated (default: all)")
    common.add_argument(
        "--duration", type=int, default=20, help="seconds per scenario and per tool"
    )
    common.add_argument(
        "--processes",
        type=int,
        default=int(os.environ.get("LOCUST_PROCESSES", 1)),
        help="Locust processes (1: one process, no master; N>1: --processes N)",
    )
    common.add_argument(
        "--smoke", action="store_true", help="use the smoke test's project and ports"
    )
    common.add_argument(
        "--warmup",
        type=int,
        default=5,
        help="seconds of the same load before each wrk/pgbench run, figures discarded",
    )
    common.add_argument(
        "--quiet-wait",
        type=int,
        default=30,
        help="before each run, wait at most this long for the machine to be quiet",
    )
    common.add_argument(
        "--via-published-ports",
        action="store_true",
        help="load the ports published on 127.0.0.1 (through docker-proxy), not the containers",
    )
    common.add_argument("--keep-up", action="store_true", help="leave the stack running afterwards")
    common.add_argument("--results-dir", help="where to write (default: loadtests/results)")
    one = sub.add_parser(
        "loadtest", parents=[common], help="every scenario, calibrated, one configuration"
    )
    one.add_argument("--config", default="default")
    many = sub.add_parser(
        "compare", parents=[common], help="the same scenarios across configurations"
    )
    many.add_argument("--configs", default="tutorial-default default")
    many.add_argument("--repeats", type=int, default=3)
    many.add_argument(
        "--tool",
        choices=["locust", "c"],
        default="locust",
        help="the load generator: Locust, or the C tools (wrk; pgbench for the database)",
    )
    args = parser.parse_args(argv)

    if args.command == "list":
        for s in scenarios.all_scenarios():
            print(f"scenario  {s.name:<20} {s.tier:<9} {s.description}")
        for name in config_names():
            print(f"config    {name:<20} {config_description(name)}")
        return 0

    stack = Stack(dict(SMOKE_ENV), from_environment=False) if args.smoke else Stack()
    stack.direct = not args.via_published_ports
    if args.results_dir:
        loadtest.RESULTS = Path(args.results_dir).resolve()
    load = Load(args.duration, args.processes, args.warmup, args.quiet_wait)
    chosen = scenarios.select(args.scenarios.split())
    configs = [args.config] if args.command == "loadtest" else args.configs.split()
    for config in configs:
        config_files(config)  # an unknown name stops here, before any stack is started
    if args.command == "loadtest":
        return loadtest.main(stack, args.config, chosen, load, args.keep_up)
    if not args.scenarios:
        chosen = scenarios.select(compare.DEFAULT_SCENARIOS)
    return compare.main(stack, configs, chosen, load, args.repeats, args.tool)


if __name__ == "__main__":
    sys.exit(main())
